//! `redunet train` with `model.kind = "crate"` and `"transformer"` end to
//! end on a tiny problem: the summary holds CRATE's per-layer compression
//! and sparsity (and nothing of the kind for the plain transformer), the
//! layer plot is drawn, a resumed run equals an uninterrupted one, the
//! saved model evaluates to the run's accuracies, and bad transformer
//! settings are refused with a message.

mod common;
use common::{run, summary};

use std::path::Path;

fn config() -> String {
    format!("{}/configs/crate-mnist.toml", env!("CARGO_MANIFEST_DIR"))
}

const TINY: [&str; 9] = [
    "--quiet",
    "--set=data.train_per_class=6",
    "--set=data.test_per_class=3",
    "--set=model.layers=2",
    "--set=model.width=16",
    "--set=train.batch_size=20",
    "--set=train.eval_every=1",
    "--set=train.schedule=constant",
    "--set=train.lr=0.003",
];

fn train(out: &Path, extra: &[&str]) -> serde_json::Value {
    let cfg = config();
    let mut a = vec!["train", cfg.as_str(), "--out", out.to_str().unwrap()];
    a.extend(TINY);
    a.extend(extra);
    let (ok, _, err) = run(&a);
    assert!(ok, "{a:?}: {err}");
    summary(out)
}

#[test]
fn crate_records_its_layers_resumes_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let two = dir.path().join("two");
    train(&two, &["--set=train.epochs=2"]);
    let ckpt = two.join("checkpoint");
    let resumed = train(
        &dir.path().join("resumed"),
        &["--set=train.epochs=3", "--resume", ckpt.to_str().unwrap()],
    );
    let straight_dir = dir.path().join("straight");
    let s = train(&straight_dir, &["--set=train.epochs=3"]);
    assert_eq!(resumed["loss"], s["loss"]);
    assert_eq!(resumed["accuracy"], s["accuracy"]);
    for key in ["layers", "layers_init"] {
        let layers = s[key].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{key}");
        for l in layers {
            let (cin, c) = (
                l["compression_in"].as_f64().unwrap(),
                l["compression"].as_f64().unwrap(),
            );
            assert!(
                cin.is_finite() && cin > 0.0 && c.is_finite() && c > 0.0,
                "{l}"
            );
            let sp = l["sparsity"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&sp), "{l}");
        }
    }
    // Training moved the network, so the measurements moved.
    assert_ne!(s["layers"], s["layers_init"]);
    assert!(s["parameters"].as_u64().unwrap() > 0);
    assert!(straight_dir.join("layers.png").is_file());
    // The saved model alone gives the run's accuracies.
    let model = straight_dir.join("model");
    let cfg = config();
    let (ok, stdout, err) = run(&[
        "eval",
        model.to_str().unwrap(),
        &cfg,
        "--set=data.train_per_class=6",
        "--set=data.test_per_class=3",
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["accuracy"]["test"], s["accuracy"]["test"]);
    assert_eq!(v["accuracy"]["test_head"], s["accuracy"]["test_head"]);
    // `transform` applies it to images, and refuses rows of another shape.
    let data = redunet::data::builtin::mnist().unwrap();
    let images = dir.path().join("images.npy");
    redunet::data::npy::write_npy_f32(&images, &[5, 28, 28], &data.features[..5 * 784]).unwrap();
    let feats = dir.path().join("f.npy");
    let go = || {
        run(&[
            "transform",
            model.to_str().unwrap(),
            images.to_str().unwrap(),
            feats.to_str().unwrap(),
        ])
    };
    let (ok, _, err) = go();
    assert!(ok, "{err}");
    let f = redunet::data::npy::read_npy_f32(&feats).unwrap();
    assert_eq!(f.shape, vec![5, 16]);
    let n: f32 = f.data[..16].iter().map(|v| v * v).sum();
    assert!((n - 1.0).abs() < 1e-4, "{n}");
    redunet::data::npy::write_npy_f32(&images, &[5, 784], &data.features[..5 * 784]).unwrap();
    let (ok, _, err) = go();
    assert!(!ok && err.contains("shape"), "{err}");
}

#[test]
fn the_plain_transformer_trains_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = train(
        &dir.path().join("plain"),
        &["--set=model.kind=transformer", "--set=train.epochs=1"],
    );
    assert!(s.get("layers").is_none(), "{}", s["layers"]);
    let head = s["accuracy"]["test_head"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&head));
    // Same width, depth and heads; the plain one has its wider MLP.
    let c = train(&dir.path().join("crate"), &["--set=train.epochs=1"]);
    assert!(s["parameters"].as_u64() > c["parameters"].as_u64());
}

#[test]
fn bad_transformer_settings_are_refused() {
    let cfg = config();
    for (set, says) in [
        ("model.heads=5", "multiple of the heads"),
        ("model.patch=5", "patch side 5"),
        ("model.patch=0", "patch side 0"),
        ("model.ista_step=-1", "ISTA step"),
        ("model.ista_lambda=nan", "λ"),
        ("model.mlp_width=64", "mlp_width is not a setting"),
        ("model.out_dim=8", "class token"),
        ("model.layers=0", "model.layers"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("o");
        let (ok, _, err) = run(&[
            "train",
            &cfg,
            "--quiet",
            "--out",
            target.to_str().unwrap(),
            &format!("--set={set}"),
        ]);
        assert!(!ok && err.contains(says), "{set}: {err}");
        assert!(!target.exists(), "{set}: output left behind");
    }
    // Transformer settings on other networks are refused too.
    let (ok, _, err) = run(&["train", &cfg, "--set=model.kind=mlp", "--set=model.heads=4"]);
    assert!(!ok && err.contains("model.heads is not a setting"), "{err}");
    // `run` of a training configuration trains it, as `train` does.
    let (ok, stdout, err) = run(&["run", &cfg, "--dry-run"]);
    assert!(
        ok && stdout.contains("training by back-propagation"),
        "{stdout}{err}"
    );
    // Images are required.
    let (ok, _, err) = run(&[
        "train",
        &cfg,
        "--set=data.source=gaussian2d",
        "--set=data.train_per_class=5",
        "--set=data.test_per_class=5",
        "--quiet",
    ]);
    assert!(!ok && err.contains("takes images"), "{err}");
}
