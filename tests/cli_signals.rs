//! `redunet run` on signals: polar transform, lifting, the spectral conv1d
//! network and the all-shifts evaluation, end to end on a small problem.

#[allow(dead_code)]
mod common;

/// `redunet args`: (success, stderr).
fn run(args: &[&str]) -> (bool, String) {
    let (ok, _, stderr) = common::run(args);
    (ok, stderr)
}

#[test]
fn conv1d_and_vector_on_polar_signals_report_all_shifts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = env!("CARGO_MANIFEST_DIR").to_string() + "/configs/rotation-01.toml";
    for (kind, lift) in [("conv1d", true), ("vector", false)] {
        let out = dir.path().join(kind);
        let mut args = vec![
            "run",
            &cfg,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "data.train_per_class=15",
            "--set",
            "data.test_per_class=5",
            "--set",
            "model.layers=3",
            "--set",
            "polar.angles=24",
            "--set",
            "eval.shift_stride=6",
        ];
        let kind_set = format!("model.kind={kind}");
        args.extend(["--set", &kind_set]);
        if lift {
            args.extend([
                "--set",
                "lift.out_channels=4",
                "--set",
                "lift.kernel_size=3",
            ]);
        }
        let (ok, err) = run(&args);
        assert!(ok, "{kind}: {err}");
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["layers"].as_array().unwrap().len(), 3);
        let shifts = &s["accuracy"]["test_all_shifts"];
        for key in ["knn", "nearest_subspace", "micl"] {
            let v = shifts[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{kind} {key}: {v}");
        }
        assert!(out.join("heatmap-shifts-output.png").is_file());
        let dim = s["data"]["dim"].as_u64().unwrap();
        assert_eq!(dim, if lift { 4 * 24 } else { 5 * 24 });
    }
    // 2D: lifted images, translation-invariant network, 16 translations.
    let cfg2 = env!("CARGO_MANIFEST_DIR").to_string() + "/configs/translation-01.toml";
    let out = dir.path().join("conv2d");
    let (ok, err) = run(&[
        "run",
        &cfg2,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "data.train_per_class=8",
        "--set",
        "data.test_per_class=3",
        "--set",
        "model.layers=2",
        "--set",
        "lift.out_channels=2",
        "--set",
        "eval.micl=false",
    ]);
    assert!(ok, "conv2d: {err}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["data"]["dim"].as_u64().unwrap(), 2 * 28 * 28);
    assert!(s["accuracy"]["test_all_shifts"]["knn"].as_f64().is_some());
    // MICL left out: no accuracy for it anywhere, the others all there.
    for set in ["train", "test", "test_all_shifts"] {
        let a = &s["accuracy"][set];
        assert!(a["micl"].is_null(), "{set}: {a}");
        assert!(a["nearest_subspace"].as_f64().is_some(), "{set}: {a}");
    }
    // The saved network with its front end (lifting kernels from their
    // seed) reloads in `redunet transform`, and the whole pipeline is
    // translation-equivariant: a translated image gives translated features.
    let (h, w, m) = (28usize, 28usize, 3usize);
    let img: Vec<f32> = (0..m * h * w)
        .map(|i| ((i * 7919) % 251) as f32 / 251.0)
        .collect();
    let (dy, dx) = (2, 5);
    let mut moved = vec![0f32; img.len()];
    for i in 0..m {
        for y in 0..h {
            for x in 0..w {
                moved[(i * h + (y + dy) % h) * w + (x + dx) % w] = img[(i * h + y) * w + x];
            }
        }
    }
    let mut feats = Vec::new();
    for (name, data) in [("a", &img), ("b", &moved)] {
        let input = dir.path().join(format!("{name}.npy"));
        let output = dir.path().join(format!("{name}-features.npy"));
        redunet::data::npy::write_npy_f32(&input, &[m, h, w], data).unwrap();
        let (ok, err) = run(&[
            "transform",
            out.join("model").to_str().unwrap(),
            input.to_str().unwrap(),
            output.to_str().unwrap(),
        ]);
        assert!(ok, "transform: {err}");
        let f = redunet::data::npy::read_npy_f32(&output).unwrap();
        assert_eq!(f.shape, vec![m, 2 * h * w]);
        feats.push(f.data);
    }
    let mut worst = 0f32;
    for i in 0..m * 2 {
        for y in 0..h {
            for x in 0..w {
                let a = feats[0][(i * h + y) * w + x];
                let b = feats[1][(i * h + (y + dy) % h) * w + (x + dx) % w];
                worst = worst.max((a - b).abs());
            }
        }
    }
    assert!(
        worst < 1e-4,
        "features not translated with the image: {worst}"
    );
    // Signals options are validated.
    let (ok, err) = run(&["run", &cfg, "--set", "polar.radius=3"]);
    assert!(!ok && err.contains("radius"), "{err}");
    let (ok, err) = run(&["run", &cfg, "--set", "eval.shift_stride=0"]);
    assert!(!ok && err.contains("shift_stride"), "{err}");
}

/// The vector baseline on polar signals saves its model layer by layer; the
/// model applies the front end and the layers to raw images, as the run
/// applied them to its test set.
#[test]
fn vector_on_signals_saves_a_model_that_transform_and_eval_apply() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = env!("CARGO_MANIFEST_DIR").to_string() + "/configs/rotation-01-vector.toml";
    let out = dir.path().join("run");
    let sets = [
        "data.train_per_class=20",
        "data.test_per_class=10",
        "model.layers=4",
        "polar.angles=24",
        "eval.shift_stride=6",
        "model.save=true",
    ];
    let mut args = vec!["run", &cfg, "--quiet", "--out", out.to_str().unwrap()];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let (ok, err) = run(&args);
    assert!(ok, "{err}");
    let model = out.join("model");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    let arch = &doc["architecture"]["vector"];
    assert_eq!(arch["dim"], 5 * 24);
    assert_eq!(arch["front"]["polar"]["angles"], 24);
    assert_eq!(arch["classes"].as_array().unwrap().len(), 4);
    for l in 1..=4 {
        assert!(model.join(format!("layer-{l:04}.bpk")).is_file());
    }
    // Evaluated on the same data, the saved model gives the run's accuracies.
    let summary = common::summary(&out);
    let mut eval = vec!["eval", model.to_str().unwrap(), &cfg];
    for s in &sets {
        eval.extend(["--set", s]);
    }
    let (ok, stdout, err) = common::run(&eval);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in ["knn", "nearest_subspace"] {
        assert_eq!(
            v["accuracy"]["test"][key], summary["accuracy"]["test"][key],
            "{key}: eval {v} against the run's {}",
            summary["accuracy"]
        );
    }
    // Raw 28×28 images in, unit features of the signals' dimension out.
    let images = dir.path().join("x.npy");
    let x: Vec<f32> = (0..3 * 784)
        .map(|i| ((i * 37) % 101) as f32 / 100.0)
        .collect();
    redunet::data::npy::write_npy_f32(&images, &[3, 28, 28], &x).unwrap();
    let features = dir.path().join("f.npy");
    let (ok, _, err) = common::run(&[
        "transform",
        model.to_str().unwrap(),
        images.to_str().unwrap(),
        features.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let f = redunet::data::npy::read_npy_f32(&features).unwrap();
    assert_eq!(f.shape, vec![3, 5 * 24]);
    for row in f.data.chunks(5 * 24) {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    // Applied layer by layer from its files (as a model over
    // `apply::STREAM_BYTES` is), it gives the whole model's features bit
    // for bit.
    let device = redunet::core::Device::default();
    let whole = redunet::experiment::apply::AnyModel::load(&model, &device).unwrap();
    assert!(whole.whole().is_some());
    let described = redunet::train::SavedModel::describe(&model).unwrap();
    let streamed = redunet::experiment::apply::AnyModel::Streamed(
        redunet::train::model::StreamedVector::open(&model, described, &device).unwrap(),
    );
    let xt = redunet::core::host::tensor(x.clone(), [3, 784], &device);
    let a = redunet::core::host::to_vec(whole.transform(xt.clone(), &[28, 28]).unwrap()).unwrap();
    let b =
        redunet::core::host::to_vec(streamed.transform(xt.clone(), &[28, 28]).unwrap()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, f.data);
    assert!(streamed.transform(xt, &[784]).is_err());
    // Flattened signals are not what the model takes.
    let wrong = dir.path().join("w.npy");
    redunet::data::npy::write_npy_f32(&wrong, &[2, 120], &vec![0.5; 240]).unwrap();
    let (ok, _, err) = common::run(&[
        "transform",
        model.to_str().unwrap(),
        wrong.to_str().unwrap(),
        dir.path().join("g.npy").to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("[28, 28]"), "{err}");
}
