//! `redunet cluster` end to end on small problems: clustering by
//! compression recovers subspaces with outliers and writes its outputs;
//! self-supervised MCR² runs and leaves a model that stands alone; bad
//! configurations are refused with a message.

mod common;
use common::{run, summary};

use std::path::Path;

fn cfg(name: &str) -> String {
    format!("{}/configs/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn clusters(dir: &Path) -> Vec<i64> {
    let a = redunet::data::npy::read_npy_i64(&dir.join("clusters.npy")).unwrap();
    assert_eq!(a.shape.len(), 1);
    a.data
}

#[test]
fn clustering_by_compression_recovers_subspaces_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let (ok, stdout, err) = run(&[
        "cluster",
        &cfg("cluster-subspaces.toml"),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        // Another draw than the config's, and fewer points.
        "--set=seed=5",
        "--set=data.train_per_class=80",
        "--set=data.outliers=16",
        "--set=cluster.sweep=[0.001, 0.1, 100.0]",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("groups"), "{stdout}");
    let s = summary(&out);
    let c = &s["clustering"];
    assert!(c["inliers"]["ari"].as_f64().unwrap() >= 0.95, "{c}");
    let ids = clusters(&out);
    assert_eq!(ids.len(), 3 * 80 + 16);
    assert_eq!(
        ids.iter().max().map(|&g| g + 1),
        c["clusters"].as_i64(),
        "clusters.npy numbers the groups 0.."
    );
    let sweep = s["sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 3);
    // Fewer groups as the distortion grows: one group at a huge ε².
    let groups: Vec<i64> = sweep
        .iter()
        .map(|p| p["clusters"].as_i64().unwrap())
        .collect();
    assert!(
        groups[0] >= groups[1] && groups[1] >= groups[2],
        "{groups:?}"
    );
    assert_eq!(groups[2], 1);
    for png in ["phase-transition.png", "heatmap-clusters.png"] {
        assert!(out.join(png).is_file(), "{png}");
    }
}

#[test]
fn self_supervised_mcr2_clusters_images_and_saves_its_features() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let (ok, stdout, err) = run(&[
        "cluster",
        &cfg("cluster-mnist.toml"),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--set=data.train_per_class=12",
        "--set=data.classes=[0, 1, 7]",
        "--set=cluster.k=3",
        "--set=model.width=32",
        "--set=model.out_dim=8",
        "--set=selfsup.epochs=2",
        "--set=selfsup.images=6",
        "--set=selfsup.views=4",
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("k-means on the learned features"),
        "{stdout}"
    );
    let s = summary(&out);
    assert_eq!(s["mcr2"]["loss"].as_array().unwrap().len(), 2);
    assert!(s["clustering"]["acc"].as_f64().unwrap() > 0.0);
    assert_eq!(clusters(&out).len(), 36);
    // The feature extractor stands alone.
    let x = dir.path().join("x.npy");
    redunet::data::npy::write_npy_f32(&x, &[2, 28, 28], &vec![0.5; 2 * 784]).unwrap();
    let f = dir.path().join("f.npy");
    let (ok, _, err) = run(&[
        "transform",
        out.join("model").to_str().unwrap(),
        x.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        redunet::data::npy::read_npy_f32(&f).unwrap().shape,
        vec![2, 8]
    );
}

#[test]
fn bad_clustering_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = out.to_str().unwrap();
    for (config, set, want) in [
        (
            "cluster-subspaces.toml",
            "cluster.eps_sq=0",
            "cluster.eps_sq",
        ),
        (
            "cluster-subspaces.toml",
            "cluster.sweep=[]",
            "cluster.sweep",
        ),
        (
            "cluster-subspaces.toml",
            "cluster.sweep=[-1.0]",
            "cluster.sweep",
        ),
        ("cluster-subspaces.toml", "cluster.k=0", "cluster.k"),
        ("cluster-subspaces.toml", "cluster.bogus=1", "bogus"),
        (
            "cluster-subspaces.toml",
            "data.subspace_dims=[30]",
            "subspace_dims",
        ),
        (
            "cluster-subspaces.toml",
            "data.test_per_class=5",
            "training split",
        ),
        ("cluster-subspaces.toml", "selfsup.epochs=1", "mcr2"),
        ("cluster-mnist.toml", "cluster.k=-1", "invalid"),
        ("cluster-mnist.toml", "selfsup.views=1", "selfsup.views"),
        ("cluster-mnist.toml", "selfsup.shift=-2.0", "selfsup.shift"),
        ("cluster-mnist.toml", "model.kind=vector", "MLP"),
        ("cluster-mnist.toml", "cluster.method=kmeans", "invalid"),
        ("cluster-mnist.toml", "data.subspace_dims=[1]", "subspaces"),
    ] {
        let (ok, _, err) = run(&["cluster", &cfg(config), "--out", o, "--set", set]);
        assert!(!ok, "{set} was accepted");
        assert!(err.contains(want), "{set}: {err}");
        assert!(!out.exists(), "{set}: an output was left");
    }
    // k larger than the samples: a typed error, not a panic.
    let (ok, _, err) = run(&[
        "cluster",
        &cfg("cluster-mnist.toml"),
        "--out",
        o,
        "--set=data.train_per_class=2",
        "--set=data.classes=[3]",
        "--set=cluster.k=10",
        "--set=selfsup.epochs=1",
    ]);
    assert!(!ok, "10 groups of 2 samples were accepted");
    assert!(err.contains("cluster.k = 10 groups of 2 samples"), "{err}");
    assert!(!out.exists());
}

#[test]
fn data_without_labels_are_clustered_and_not_scored() {
    let dir = tempfile::tempdir().unwrap();
    let data = redunet::data::subspaces::union_of_subspaces(&[1, 2], 10, 40, 0, 0.0, 3).unwrap();
    let x = dir.path().join("x.npy");
    redunet::data::npy::write_npy_f32(&x, &[80, 10], &data.features).unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[data]\nsource = \"npy\"\ntrain_x = \"x.npy\"\n\n[cluster]\nmethod = \"coding-length\"\neps_sq = 0.05\n",
    )
    .unwrap();
    let out = dir.path().join("o");
    let (ok, stdout, err) = run(&[
        "cluster",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("no labels"), "{stdout}");
    let s = summary(&out);
    assert!(s["clustering"].get("acc").is_none(), "{s}");
    assert!(s.get("baseline_kmeans").is_none(), "{s}");
    let ids = clusters(&out);
    assert_eq!(ids.len(), 80);
    // The two subspaces come apart without labels.
    let got: Vec<usize> = ids.iter().map(|&g| g as usize).collect();
    let s = redunet::core::cluster::scores(&got, &data.labels).unwrap();
    assert!(s.ari >= 0.95, "ARI {}", s.ari);
    // A test file without labels is still refused.
    let (ok, _, err) = run(&[
        "cluster",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set=data.test_x=x.npy",
    ]);
    assert!(!ok);
    assert!(err.contains("test"), "{err}");
}
