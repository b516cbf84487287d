//! `redunet train` / `redunet eval` end to end on tiny problems: the three
//! model kinds and both objectives run, a resumed run equals an
//! uninterrupted one, `eval` reproduces the summary, bad `[train]` keys are
//! rejected.

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redunet"))
        .args(args)
        .output()
        .expect("runs the binary");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

// A constant schedule: under the config's cosine one, the learning rate of
// epoch 1 depends on the epoch count, so 2 epochs resumed to 3 would not be
// 3 straight epochs.
const TINY: [&str; 15] = [
    "--quiet",
    "--set=train.schedule=constant",
    "--set",
    "data.train_per_class=5",
    "--set",
    "data.test_per_class=4",
    "--set",
    "model.layers=2",
    "--set",
    "lift.out_channels=3",
    "--set",
    "train.batch_size=10",
    "--set",
    "train.eval_every=1",
    "--set=train.lr=0.01",
];

fn cfg(name: &str) -> String {
    format!("{}/configs/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn conv2d_training_resumes_exactly_and_evaluates_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let bp = cfg("bp-translation-10.toml");
    let go = |out: &Path, extra: &[&str]| {
        let mut a = vec!["train", &bp, "--out", out.to_str().unwrap()];
        a.extend(TINY);
        a.extend(extra);
        let (ok, _, err) = run(&a);
        assert!(ok, "{err}");
        summary(out)
    };
    let two = dir.path().join("two");
    go(&two, &["--set", "train.epochs=2"]);
    let resumed = dir.path().join("resumed");
    let ckpt = two.join("checkpoint");
    let r = go(
        &resumed,
        &[
            "--set",
            "train.epochs=3",
            "--resume",
            ckpt.to_str().unwrap(),
        ],
    );
    let straight = go(&dir.path().join("straight"), &["--set", "train.epochs=3"]);
    assert_eq!(r["loss"], straight["loss"]);
    assert_eq!(r["accuracy"], straight["accuracy"]);
    assert_eq!(r["loss"].as_array().unwrap().len(), 3);
    // The loss goes down on this tiny training set.
    let loss: Vec<f64> = r["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(loss[2] < loss[0], "{loss:?}");

    let mut a: Vec<String> = vec![
        "eval".into(),
        resumed.join("checkpoint").to_str().unwrap().into(),
        bp.clone(),
    ];
    a.extend(
        TINY.iter()
            .filter(|s| **s != "--quiet")
            .map(|s| s.to_string()),
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (ok, stdout, err) = run(&a);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["accuracy"]["test"], r["accuracy"]["test"]);

    // Unknown keys in [train], and bad values, are configuration errors.
    let (ok, _, err) = run(&["train", &bp, "--set", "train.learning_rate=0.1"]);
    assert!(!ok && err.contains("learning_rate"), "{err}");
    let (ok, _, err) = run(&["train", &bp, "--set", "train.lr=-1"]);
    assert!(!ok && err.contains("lr"), "{err}");
    let (ok, _, err) = run(&["train", &bp, "--set", "train.augment_rotation=-5"]);
    assert!(!ok && err.contains("augment_rotation"), "{err}");
    // A missing checkpoint is an error, not a panic.
    let (ok, _, err) = run(&["eval", "/nonexistent/checkpoint", &bp]);
    assert!(!ok && err.contains("nonexistent"), "{err}");
}

#[test]
fn vector_and_mlp_train_with_both_objectives() {
    let dir = tempfile::tempdir().unwrap();
    let mlp = cfg("mcr2-mnist-mlp.toml");
    for (i, (config, sets)) in [
        (
            mlp.as_str(),
            vec!["model.width=32", "model.out_dim=16", "train.objective=mcr2"],
        ),
        (
            mlp.as_str(),
            vec![
                "model.width=32",
                "model.out_dim=16",
                "train.objective=cross_entropy",
            ],
        ),
        (
            mlp.as_str(),
            vec![
                "model.kind=vector",
                "model.layers=2",
                "train.objective=mcr2",
                "train.init=random",
            ],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("run{i}"));
        let mut a = vec![
            "train".to_string(),
            config.to_string(),
            "--quiet".into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--set=data.train_per_class=8".into(),
            "--set=data.test_per_class=4".into(),
            "--set=train.epochs=2".into(),
            "--set=train.batch_size=20".into(),
        ];
        for s in sets {
            a.push(format!("--set={s}"));
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (ok, _, err) = run(&a);
        assert!(ok, "{a:?}: {err}");
        let s = summary(&out);
        assert_eq!(s["loss"].as_array().unwrap().len(), 2);
        let ns = s["accuracy"]["test"]["nearest_subspace"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ns));
    }
}
