//! `redunet train` / `redunet eval` end to end on tiny problems: the three
//! model kinds and both objectives run, a resumed run equals an
//! uninterrupted one, `eval` reproduces the summary, bad `[train]` keys are
//! rejected.

mod common;
use common::{run, summary};

use std::path::Path;

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

    // The saved model evaluates to the run's accuracies on the same data,
    // with the configuration's data settings only (no model settings: the
    // model says what it is).
    let mut a: Vec<String> = vec![
        "eval".into(),
        resumed.join("model").to_str().unwrap().into(),
        bp.clone(),
    ];
    a.extend(
        TINY.iter()
            .filter(|s| s.contains("data.") || s.starts_with("data"))
            .map(|s| format!("--set={s}")),
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (ok, stdout, err) = run(&a);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["accuracy"]["test"], r["accuracy"]["test"]);
    assert_eq!(v["accuracy"]["train"], r["accuracy"]["train"]);
    assert_eq!(v["accuracy"]["test_head"], r["accuracy"]["test_head"]);
    assert!(v["accuracy"]["test_head"].as_f64().is_some());
    // Data of other classes than the head's: refused, not scored.
    let model = resumed.join("model");
    let (ok, _, err) = run(&[
        "eval",
        model.to_str().unwrap(),
        &bp,
        "--set=data.classes=[0,1]",
        "--set=data.train_per_class=5",
        "--set=data.test_per_class=4",
    ]);
    assert!(!ok && err.contains("head predicts 10 classes"), "{err}");

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

/// Raw `[m, 28, 28]` images as `.npy`, from the built-in digits.
fn write_images(path: &Path, m: usize) {
    let data = redunet::data::builtin::mnist().unwrap();
    let v = data.features[..m * 784].to_vec();
    redunet::data::npy::write_npy_f32(path, &[m, 28, 28], &v).unwrap();
}

#[test]
fn a_trained_model_stands_alone_and_rejects_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let bp = cfg("bp-translation-10.toml");
    let out = dir.path().join("run");
    let mut a = vec!["train", &bp, "--out", out.to_str().unwrap()];
    a.extend(TINY);
    a.extend(["--set", "train.epochs=1"]);
    let (ok, _, err) = run(&a);
    assert!(ok, "{err}");
    let model = out.join("model");
    let images = dir.path().join("images.npy");
    write_images(&images, 7);
    let feats = dir.path().join("f.npy");
    let go = |model: &Path| {
        run(&[
            "transform",
            model.to_str().unwrap(),
            images.to_str().unwrap(),
            feats.to_str().unwrap(),
        ])
    };
    let (ok, _, err) = go(&model);
    assert!(ok, "{err}");
    let f = redunet::data::npy::read_npy_f32(&feats).unwrap();
    // 3 lifted channels of 28×28, unit norm.
    assert_eq!(f.shape, vec![7, 3 * 784]);
    let n: f32 = f.data[..3 * 784].iter().map(|v| v * v).sum();
    assert!((n - 1.0).abs() < 1e-4, "{n}");

    // Each kind of damage is a typed error naming the model, never a panic.
    let copy = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in std::fs::read_dir(&model).unwrap() {
            let f = f.unwrap().file_name();
            std::fs::copy(model.join(&f), d.join(&f)).unwrap();
        }
        d
    };
    let json = std::fs::read_to_string(model.join("model.json")).unwrap();
    // One parameter file per part: the first layer's is damaged.
    let bpk = std::fs::read(model.join("layer-0001.bpk")).unwrap();
    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "truncated",
            Box::new(|d: &Path| {
                std::fs::write(d.join("layer-0001.bpk"), &bpk[..bpk.len() / 2]).unwrap()
            }),
        ),
        (
            "garbage",
            Box::new(|d: &Path| {
                std::fs::write(d.join("layer-0001.bpk"), vec![7u8; bpk.len()]).unwrap()
            }),
        ),
        (
            "bad-json",
            Box::new(|d: &Path| {
                std::fs::write(d.join("model.json"), &json[..json.len() / 2]).unwrap()
            }),
        ),
        (
            "huge",
            Box::new(|d: &Path| {
                let j = json.replacen("\"out_channels\": 3", "\"out_channels\": 300000", 1);
                std::fs::write(d.join("model.json"), j).unwrap()
            }),
        ),
        (
            "class-out-of-range",
            Box::new(|d: &Path| {
                let j = json.replacen("\"num_classes\": 10", "\"num_classes\": 2", 1);
                std::fs::write(d.join("model.json"), j).unwrap()
            }),
        ),
        (
            "missing-params",
            Box::new(|d: &Path| std::fs::remove_file(d.join("layer-0001.bpk")).unwrap()),
        ),
    ];
    for (name, damage) in cases {
        // As damaged on disk: the checksums name the file.
        let d = copy(name);
        damage(&d);
        let (ok, _, err) = go(&d);
        assert!(!ok, "{name}: accepted");
        assert!(
            (err.contains("model.") || err.contains("layer-0001.bpk")) && err.contains(name),
            "{name}: {err}"
        );
        // Forged with matching checksums: the validation of every field
        // still refuses it.
        if d.join("model.json").exists() && d.join("layer-0001.bpk").exists() {
            redunet::data::output::seal(&d).unwrap();
            let (ok, _, err) = go(&d);
            assert!(!ok, "{name} (resealed): accepted");
            assert!(err.contains(name) && err.contains("model"), "{name}: {err}");
        }
    }
    // Wrong input shape: a typed error.
    write_images(&images, 2);
    let bad = dir.path().join("flat.npy");
    redunet::data::npy::write_npy_f32(&bad, &[2, 100], &[0.5; 200]).unwrap();
    let (ok, _, err) = run(&[
        "transform",
        model.to_str().unwrap(),
        bad.to_str().unwrap(),
        feats.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("[28, 28]") && err.contains("[100]"),
        "{err}"
    );
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
