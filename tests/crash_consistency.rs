//! What an unlucky operator does to the command: kill it at any moment,
//! run two into one directory, resume into the directory being resumed
//! from, ask for absurd sizes. Each must leave a whole result (the previous
//! one or the new one), a clear error, or both — never a mixture, a panic,
//! an abort or lost training.

use redunet::experiment::apply::AnyModel;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_redunet"))
}

fn run(args: &[&str]) -> (bool, String) {
    let out = bin().args(args).output().expect("runs the binary");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    // 134 = SIGABRT (an allocation abort): never.
    assert_ne!(out.status.code(), None, "killed by a signal: {stderr}");
    (out.status.success(), stderr)
}

fn cfg(name: &str) -> String {
    format!("{}/configs/{name}", env!("CARGO_MANIFEST_DIR"))
}

const MLP: [&str; 8] = [
    "--quiet",
    "--set=data.train_per_class=30",
    "--set=data.test_per_class=5",
    "--set=model.width=32",
    "--set=model.out_dim=16",
    "--set=train.batch_size=60",
    "--set=train.checkpoint_every=1",
    "--set=train.schedule=constant",
];

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A training output is whole: summary, model and checkpoint load, and
/// agree on the epoch.
fn assert_whole_training(dir: &Path) {
    let s = json(&dir.join("summary.json"));
    AnyModel::load(&dir.join("model"), &redunet::core::Device::default()).unwrap();
    let state = redunet::train::trainer::read_checkpoint_state(&dir.join("checkpoint")).unwrap();
    assert_eq!(s["epochs_completed"], state.epoch, "summary and checkpoint");
    assert_eq!(s["history"].as_array().unwrap().len(), state.epoch + 1);
}

/// A construction output is whole: summary, rates, plots and model agree.
fn assert_whole_run(dir: &Path) {
    let s = json(&dir.join("summary.json"));
    let layers = s["layers"].as_array().unwrap().len();
    let rates = std::fs::read_to_string(dir.join("rates.csv")).unwrap();
    assert_eq!(
        rates.lines().count(),
        layers + 2,
        "header, input and layers"
    );
    assert!(dir.join("rates.png").is_file());
    AnyModel::load(&dir.join("model"), &redunet::core::Device::default()).unwrap();
}

fn leftovers(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!(".{name}.")))
        .collect()
}

/// Starts `args`, kills it after `after`, and waits for it.
fn kill_after(args: &[String], after: Duration) {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn killed_runs_leave_whole_directories() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("train");
    let mut train: Vec<String> = vec![
        "train".into(),
        cfg("mcr2-mnist-mlp.toml"),
        "--out".into(),
        out.to_str().unwrap().into(),
        "--set=train.epochs=20".into(),
    ];
    train.extend(MLP.iter().map(|s| s.to_string()));
    let start = Instant::now();
    let (ok, err) = run(&train.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    let full = start.elapsed();
    assert_whole_training(&out);
    // Kills spread over the whole run, from start-up to the last commit.
    for i in 0..30u32 {
        kill_after(&train, full.mul_f64(f64::from(i) / 29.0 * 1.1));
        assert_whole_training(&out);
    }

    let built = root.path().join("run");
    let construct: Vec<String> = [
        "run",
        &cfg("gaussian2d.toml"),
        "--quiet",
        "--out",
        built.to_str().unwrap(),
        "--set=model.layers=40",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let start = Instant::now();
    let (ok, err) = run(&construct.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    let full = start.elapsed();
    for i in 0..20u32 {
        kill_after(&construct, full.mul_f64(f64::from(i) / 19.0 * 1.1));
        assert_whole_run(&built);
    }
    // The next run cleans what the killed ones left beside the directory.
    let (ok, err) = run(&construct.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert_whole_run(&built);
    assert_eq!(leftovers(&built), Vec::<String>::new());
}

#[test]
fn a_second_writer_is_refused_and_resume_never_loses_training() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("d");
    let o = out.to_str().unwrap();
    let mlp = cfg("mcr2-mnist-mlp.toml");
    let mut first: Vec<&str> = vec!["train", &mlp, "--out", o, "--set=train.epochs=40"];
    first.extend(MLP);
    let mut a = bin()
        .args(&first)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = root.path().join(".d.lock");
    let t0 = Instant::now();
    while !lock.exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut second: Vec<&str> = vec!["train", &mlp, "--out", o, "--set=train.epochs=1"];
    second.extend(MLP);
    let (ok, err) = run(&second);
    assert!(!ok && err.contains("in use"), "{err}");
    let status = a.wait().unwrap();
    assert!(status.success());
    assert_whole_training(&out);
    assert_eq!(json(&out.join("summary.json"))["epochs_completed"], 40);
    assert!(!lock.exists(), "the lock goes with its holder");

    // Resuming into the directory resumed from: refused when there is
    // nothing to train, and the checkpoint is untouched.
    let ckpt = out.join("checkpoint");
    let c = ckpt.to_str().unwrap();
    let before = std::fs::read(ckpt.join("optimizer.bpk")).unwrap();
    let mut again: Vec<&str> = vec!["train", &mlp, "--out", o, "--resume", c];
    again.extend(MLP);
    let mut zero = again.clone();
    zero.push("--set=train.epochs=0");
    let (ok, err) = run(&zero);
    assert!(!ok && err.contains("already at epoch 40"), "{err}");
    assert_eq!(std::fs::read(ckpt.join("optimizer.bpk")).unwrap(), before);
    // Another setup is named, not silently continued.
    let mut other = again.clone();
    other.extend(["--set=train.epochs=41", "--set=model.width=64"]);
    let (ok, err) = run(&other);
    assert!(!ok && err.contains("model.width"), "{err}");
    let mut other = again.clone();
    other.extend(["--set=train.epochs=41", "--set=train.lr=0.5"]);
    let (ok, err) = run(&other);
    assert!(!ok && err.contains("train.lr"), "{err}");
    // Continuing works in place and keeps the whole history.
    let mut more = again.clone();
    more.push("--set=train.epochs=42");
    let (ok, err) = run(&more);
    assert!(ok, "{err}");
    let epochs: Vec<u64> = json(&out.join("summary.json"))["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, (0..=42).collect::<Vec<_>>());
    // `transform` never writes over its input or into the model, reads no
    // endless device, and `eval` refuses data with other classes than the
    // model's head.
    let model = out.join("model");
    let m = model.to_str().unwrap();
    let images = root.path().join("x.npy");
    let x = images.to_str().unwrap();
    redunet::data::npy::write_npy_f32(&images, &[2, 28, 28], &[0.5; 2 * 784]).unwrap();
    let (ok, err) = run(&["transform", m, x, x]);
    assert!(!ok && err.contains("is the input"), "{err}");
    let inside = model.join("model.json");
    let (ok, err) = run(&["transform", m, x, inside.to_str().unwrap()]);
    assert!(!ok && err.contains("inside the model"), "{err}");
    AnyModel::load(&model, &redunet::core::Device::default()).unwrap();
    let (ok, err) = run(&["transform", m, "/dev/zero", "/tmp/never.npy"]);
    assert!(!ok && err.contains("not a regular file"), "{err}");
    let (ok, err) = run(&[
        "eval",
        m,
        &mlp,
        "--set=data.classes=[0,1,2]",
        "--set=data.train_per_class=5",
    ]);
    assert!(ok, "an MCR² model has no head: any classes evaluate: {err}");
    // A directory that is not a redunet output is never replaced.
    let foreign = root.path().join("home");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.tex"), b"years of work").unwrap();
    let mut f: Vec<&str> = vec![
        "train",
        &mlp,
        "--out",
        foreign.to_str().unwrap(),
        "--set=train.epochs=1",
    ];
    f.extend(MLP);
    let (ok, err) = run(&f);
    assert!(!ok && err.contains("not a redunet output"), "{err}");
    assert!(foreign.join("thesis.tex").exists());
}

#[test]
fn absurd_sizes_fail_fast_with_the_setting_to_change() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("o");
    let o = out.to_str().unwrap();
    let mnist = cfg("mnist-vector.toml");
    let mlp = cfg("mcr2-mnist-mlp.toml");
    let rot = cfg("rotation-10.toml");
    let g2 = cfg("gaussian2d.toml");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", &mnist, "--set=model.layers=1000000000"],
            "model.layers",
        ),
        (vec!["run", &g2, "--set=data.train_per_class=1e12"], ""),
        (
            vec!["run", &g2, "--set=data.train_per_class=1000000000000"],
            "data.train_per_class",
        ),
        (
            vec!["train", &mlp, "--set=model.width=1000000000"],
            "model.width",
        ),
        (
            vec![
                "run",
                &rot,
                "--set=polar.radii=100000",
                "--set=polar.angles=100000",
            ],
            "polar",
        ),
        (
            vec!["run", &rot, "--set=eval.shift_test_per_class=0"],
            "shift_test_per_class",
        ),
    ];
    // Features of 200,000 dimensions (a 160 GB operator per class), and
    // label values far beyond the number of samples.
    let npy = |x: &str, y: &str| {
        let p = root.path().join(format!("{x}.toml"));
        std::fs::write(
            &p,
            format!(
                "[data]\nsource = \"npy\"\ntrain_x = \"{x}.npy\"\ntrain_y = \"{y}.npy\"\n\
                 [model]\nkind = \"vector\"\nlayers = 2\nsave = false\n"
            ),
        )
        .unwrap();
        p.to_str().unwrap().to_string()
    };
    redunet::data::npy::write_npy_f32(
        &root.path().join("wide.npy"),
        &[4, 200_000],
        &vec![0.5; 800_000],
    )
    .unwrap();
    redunet::data::npy::write_npy_f32(
        &root.path().join("narrow.npy"),
        &[4, 3],
        &[1., 0., 0., 0., 1., 0., 0., 0., 1., 1., 1., 0.],
    )
    .unwrap();
    let labels = |name: &str, v: &[i64]| {
        let h = format!(
            "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}\n",
            v.len()
        );
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
        std::fs::write(root.path().join(format!("{name}.npy")), b).unwrap();
    };
    labels("y", &[0, 1, 0, 1]);
    labels("big", &[0, 2_147_483_648, 16_777_216, 0]);
    let wide = npy("wide", "y");
    let (ok, err) = run(&["run", &wide, "--quiet", "--out", o]);
    assert!(!ok && err.contains("dimension of the samples"), "{err}");
    // Sparse label values are classes like any others: no empty-class
    // bookkeeping for the ids in between.
    let sparse = npy("narrow", "big");
    let t = Instant::now();
    let (ok, err) = run(&["run", &sparse, "--quiet", "--out", o]);
    assert!(ok, "{err}");
    assert!(!err.contains("no samples"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(60));
    for (args, hint) in cases {
        let t = Instant::now();
        let (ok, err) = run(&[&args[..], &["--quiet", "--out", o]].concat());
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(hint), "{args:?}: {err}");
        assert!(t.elapsed() < Duration::from_secs(60), "{args:?}: slow");
        // Its dry run refuses it with the same message (the memory
        // available may move between the calls).
        let (ok, dry) = run(&[&args[..], &["--dry-run", "--out", o]].concat());
        assert!(!ok, "{args:?}: the dry run accepted it");
        let stable = |m: &str| m.split("but only").next().unwrap_or(m).to_string();
        assert_eq!(stable(&dry), stable(&err), "{args:?}");
    }
}
