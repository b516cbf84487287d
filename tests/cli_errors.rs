//! Bad input through the `redunet` command: a clear message and a non-zero
//! exit, never a panic.

use redunet::data::npy::write_npy_f32;
use std::path::Path;

#[allow(dead_code)]
mod common;

/// `redunet args`: (success, stderr).
fn redunet(args: &[&str]) -> (bool, String) {
    let (ok, _, stderr) = common::run(args);
    (ok, stderr)
}

fn npy_config(dir: &Path, x: &str, y: &str) -> String {
    let p = dir.join(format!(
        "{}-{}.toml",
        x.replace('.', "_"),
        y.replace('.', "_")
    ));
    std::fs::write(
        &p,
        format!(
            "[data]\nsource = \"npy\"\ntrain_x = \"{x}\"\ntrain_y = \"{y}\"\n[model]\nkind = \"vector\"\nlayers = 2\n"
        ),
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

/// Labels `[m]` as little-endian i64 `.npy`.
fn write_labels(path: &Path, labels: &[i64]) {
    let h = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}\n",
        labels.len()
    );
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    for l in labels {
        b.extend_from_slice(&l.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn npy_run_and_transform_work() {
    let dir = tempfile::tempdir().unwrap();
    let x: Vec<f32> = (0..40).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
    write_npy_f32(&dir.path().join("x.npy"), &[10, 4], &x).unwrap();
    write_labels(&dir.path().join("y.npy"), &[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    let cfg = npy_config(dir.path(), "x.npy", "y.npy");
    let out = dir.path().join("out");
    let (ok, err) = redunet(&["run", &cfg, "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(ok, "{err}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["layers"].as_array().unwrap().len(), 2);
    assert!(summary["accuracy"]["train"]["knn"].as_f64().is_some());
    let feats = dir.path().join("f.npy");
    let (ok, err) = redunet(&[
        "transform",
        out.join("model").to_str().unwrap(),
        dir.path().join("x.npy").to_str().unwrap(),
        feats.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let f = redunet::data::npy::read_npy_f32(&feats).unwrap();
    assert_eq!(f.shape, vec![10, 4]);
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x: Vec<f32> = (0..40).map(|i| i as f32).collect();
    write_npy_f32(&d.join("x.npy"), &[10, 4], &x).unwrap();
    write_labels(&d.join("y.npy"), &[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    write_labels(&d.join("y_short.npy"), &[0, 1, 0]);
    write_labels(&d.join("y_neg.npy"), &[0, 1, 0, 1, 0, 1, 0, 1, 0, -3]);
    let mut nan = x.clone();
    nan[17] = f32::NAN;
    write_npy_f32(&d.join("x_nan.npy"), &[10, 4], &nan).unwrap();
    std::fs::write(d.join("corrupt.npy"), b"\x93NUMPY\x01\x00garbage").unwrap();

    let cases: Vec<(String, &str)> = vec![
        (npy_config(d, "x.npy", "y_short.npy"), "labels"),
        (npy_config(d, "x.npy", "y_neg.npy"), "out of range"),
        (npy_config(d, "x_nan.npy", "y.npy"), "NaN"),
        (npy_config(d, "missing.npy", "y.npy"), "cannot read"),
        (npy_config(d, "corrupt.npy", "y.npy"), "corrupt"),
    ];
    for (cfg, expect) in cases {
        let (ok, err) = redunet(&[
            "run",
            &cfg,
            "--quiet",
            "--out",
            d.join("o").to_str().unwrap(),
        ]);
        assert!(!ok, "{cfg} should fail");
        assert!(err.contains(expect), "expected '{expect}' in: {err}");
    }

    let good = npy_config(d, "x.npy", "y.npy");
    let (ok, err) = redunet(&["run", &good, "--set", "model.typo=3"]);
    assert!(!ok && err.contains("typo"), "{err}");
    std::fs::write(d.join("bad.toml"), "[model\nkind=").unwrap();
    let (ok, err) = redunet(&["run", d.join("bad.toml").to_str().unwrap()]);
    assert!(!ok && err.contains("TOML"), "{err}");
    let (ok, err) = redunet(&["run", &good, "--device", "tpu"]);
    assert!(!ok && err.contains("unknown device"), "{err}");
    #[cfg(not(feature = "wgpu"))]
    {
        let (ok, err) = redunet(&["run", &good, "--device", "wgpu"]);
        assert!(!ok && err.contains("not available"), "{err}");
    }
    let (ok, err) = redunet(&["transform", d.to_str().unwrap(), "x.npy", "o.npy"]);
    assert!(!ok && err.contains("model"), "{err}");
    // A corrupt IDX file.
    let bytes = [0u8, 0, 8, 3, 0, 0, 0, 9];
    assert!(redunet::data::idx::parse_idx(&bytes).is_err());
}
