//! A conv1d run on signals of length 16,384: the spectral layers work
//! through real FFTs (no T × T/2 tables, which alone would be 2.1 GB), so
//! the run completes in a fraction of that memory.

use std::path::Path;
use std::process::Command;

const T: usize = 1 << 14;

fn write_labels(path: &Path, labels: &[i64]) {
    let header = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}",
        labels.len()
    );
    let pad = 64 - (10 + header.len() + 1) % 64;
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(((header.len() + pad + 1) as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(std::iter::repeat_n(b' ', pad));
    bytes.push(b'\n');
    for l in labels {
        bytes.extend(l.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Class 0: a few random-phase tones in a low band; class 1: in a high
/// band; both with noise. A cyclic shift keeps the class.
fn signals(n: usize, seed: u64, dir: &Path, name: &str) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(n * T);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 2;
        let band = if class == 0 { 20..200 } else { 2000..4000 };
        let tones: Vec<(f32, f32)> = (0..4)
            .map(|_| {
                (
                    rng.random_range(band.clone()) as f32,
                    rng.random_range(0.0..std::f32::consts::TAU),
                )
            })
            .collect();
        for t in 0..T {
            let v: f32 = tones
                .iter()
                .map(|(f, p)| (std::f32::consts::TAU * f * t as f32 / T as f32 + p).sin())
                .sum();
            x.push(v + rng.random_range(-1.0..1.0));
        }
        y.push(class as i64);
    }
    redunet::data::npy::write_npy_f32(&dir.join(format!("{name}_x.npy")), &[n, 1, T], &x).unwrap();
    write_labels(&dir.join(format!("{name}_y.npy")), &y);
}

#[test]
fn conv1d_on_signals_of_16384_samples_runs_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    signals(40, 1, dir.path(), "train");
    signals(20, 2, dir.path(), "test");
    let config = dir.path().join("long.toml");
    std::fs::write(
        &config,
        "[data]\nsource = \"npy\"\ntrain_x = \"train_x.npy\"\ntrain_y = \"train_y.npy\"\n\
         test_x = \"test_x.npy\"\ntest_y = \"test_y.npy\"\n\n\
         [lift]\nout_channels = 2\nkernel_size = 5\nseed = 0\n\n\
         [model]\nkind = \"conv1d\"\nlayers = 3\nmembership = \"soft\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_redunet"))
        .arg("run")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Peak memory of the run (the largest child this test has waited for).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    let peak = usage.ru_maxrss as u64 * 1024;
    let dense_tables = 16 * T as u64 * (T as u64 / 2 + 1);
    assert!(
        peak < dense_tables / 4,
        "peak {peak} bytes; the dense tables alone are {dense_tables}"
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let ns = s["accuracy"]["test"]["nearest_subspace"].as_f64().unwrap();
    assert!(ns >= 0.9, "test nearest subspace {ns}");
    eprintln!("peak {peak} bytes, test accuracy {}", s["accuracy"]["test"]);
}
