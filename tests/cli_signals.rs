//! `redunet run` on signals: polar transform, lifting, the spectral conv1d
//! network and the all-shifts evaluation, end to end on a small problem.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redunet"))
        .args(args)
        .output()
        .expect("runs the binary");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    (out.status.success(), stderr)
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
        for key in ["knn", "nearest_subspace"] {
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
    ]);
    assert!(ok, "conv2d: {err}");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["data"]["dim"].as_u64().unwrap(), 2 * 28 * 28);
    assert!(s["accuracy"]["test_all_shifts"]["knn"].as_f64().is_some());
    // Signals options are validated.
    let (ok, err) = run(&["run", &cfg, "--set", "polar.radius=3"]);
    assert!(!ok && err.contains("radius"), "{err}");
    let (ok, err) = run(&["run", &cfg, "--set", "eval.shift_stride=0"]);
    assert!(!ok && err.contains("shift_stride"), "{err}");
}
