//! Sharded construction: `redunet run --workers` splits the training
//! samples over several devices — local ones, or two `redunet worker`
//! processes on this machine serving theirs over Burn's remote backend
//! (`--features remote`, which CI builds) — and the result equals the
//! single-device run.

#[cfg(feature = "remote")]
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
#[cfg(feature = "remote")]
use std::process::{Child, ChildStdout, Stdio};

/// A worker process, killed when dropped; its stdout stays open.
#[cfg(feature = "remote")]
struct Worker {
    child: Child,
    _out: BufReader<ChildStdout>,
    url: String,
}

#[cfg(feature = "remote")]
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "remote")]
fn worker(token: &str) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_redunet"))
        .args(["worker", "--listen", "127.0.0.1:0", "--token", token])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("worker said {line:?}"))
        .to_string();
    Worker {
        child,
        _out: out,
        url,
    }
}

fn run(out: &Path, extra: &[&str]) -> (bool, String, serde_json::Value) {
    run_config("mnist-vector.toml", out, extra)
}

fn run_config(config: &str, out: &Path, extra: &[&str]) -> (bool, String, serde_json::Value) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(config);
    let o = Command::new(env!("CARGO_BIN_EXE_redunet"))
        .arg("run")
        .arg(&config)
        .arg("--out")
        .arg(out)
        .args([
            "--quiet",
            "--set",
            "data.train_per_class=60",
            "--set",
            "data.test_per_class=20",
            "--set",
            "model.layers=6",
        ])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let summary = std::fs::read(out.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    (o.status.success(), err, summary)
}

fn delta(s: &serde_json::Value) -> Vec<f64> {
    s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["delta_r"].as_f64().unwrap())
        .collect()
}

fn same_run(sharded: &serde_json::Value, single: &serde_json::Value) {
    let (x, y) = (delta(sharded), delta(single));
    assert_eq!(x.len(), 6);
    for (l, (p, q)) in x.iter().zip(&y).enumerate() {
        let rel = (p - q).abs() / q.abs();
        assert!(rel < 1e-4, "layer {}: ΔR {p} sharded vs {q}", l + 1);
    }
    assert_eq!(sharded["accuracy"], single["accuracy"]);
}

#[test]
fn sharding_over_local_devices_equals_the_single_device_run() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err, sharded) = run(
        &dir.path().join("sharded"),
        &["--workers", "flex,flex,flex"],
    );
    assert!(ok, "{err}");
    let (ok, err, single) = run(&dir.path().join("single"), &[]);
    assert!(ok, "{err}");
    same_run(&sharded, &single);
    // An invariant network (rotation: polar signals, conv1d) likewise.
    let fast = [
        "--set",
        "eval.shift_stride=50",
        "--set",
        "lift.out_channels=4",
    ];
    let (ok, err, sharded) = run_config(
        "rotation-10.toml",
        &dir.path().join("conv-sharded"),
        &[&["--workers", "flex,flex"][..], &fast].concat(),
    );
    assert!(ok, "{err}");
    let (ok, err, single) = run_config("rotation-10.toml", &dir.path().join("conv"), &fast);
    assert!(ok, "{err}");
    same_run(&sharded, &single);
    // Sharding with streamed batches is refused, not ignored.
    let (ok, err, _) = run(
        &dir.path().join("batched"),
        &["--workers", "flex", "--set", "model.batch_size=100"],
    );
    assert!(!ok && err.contains("--workers"), "{err}");
}

#[cfg(feature = "remote")]
#[test]
fn sharded_construction_equals_the_single_device_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (worker("s3cret"), worker("s3cret"));
    let workers = format!("{},{}", a.url, b.url);
    let (ok, err, sharded) = run(
        &dir.path().join("sharded"),
        &["--workers", &workers, "--token", "s3cret"],
    );
    assert!(ok, "{err}");
    let (ok, err, single) = run(&dir.path().join("single"), &[]);
    assert!(ok, "{err}");
    same_run(&sharded, &single);

    // A wrong token, or none, is refused with an error, not a hang or a
    // panic.
    for token in [&["--token", "wrong"][..], &[]] {
        let (ok, err, _) = run(
            &dir.path().join("refused"),
            &[&["--workers", &a.url][..], token].concat(),
        );
        assert!(!ok && err.contains("error"), "{err}");
    }
}
