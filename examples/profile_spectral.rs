//! Where the time of one 2D spectral layer goes: the covariances and their
//! Hermitian inverses (construction) and the update of all training samples
//! (step), at the sizes of the conv2d benchmark and of translation-01.
//! `cargo run --release --example profile_spectral`; `ITERS=n` repetitions,
//! `ONLY2D=1` the benchmark shape only, `T10=75` the translation-10 shape
//! (10 per digit lifted to 75 channels, with a 2000-sample evaluation step).

use redunet::core::host::{tensor, to_vec};
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use redunet::vision::lift::Lift2d;
use redunet::vision::spectral::{Dft, SpectralStep};
use std::time::Instant;

fn case(classes: Option<&[usize]>, per_class: usize, channels: usize, extra: usize) {
    let data = builtin::mnist().expect("built-in MNIST");
    let split = per_class_split(&data, classes, per_class, 0).expect("split");
    let device = burn::tensor::Device::default();
    let m = split.train.len();
    let k = classes.map_or(10, |c| c.len());
    let images = tensor(split.train.features.clone(), [m, 1, 28, 28], &device);
    let lifted = Lift2d::random(channels, 1, 9, 0, &device).apply(images);
    let signals = lifted.reshape([m, channels, 784]);
    let dft = Dft::new_2d(28, 28, &device).expect("28×28 tables");
    let s = dft.normalize(dft.spectrum(&signals));
    let pi = Memberships::from_labels(&split.train.labels, k, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let ev = redunet::vision::spectral::Spectrum {
        x: Tensor::cat(vec![s.x.clone(); extra.div_ceil(m).max(1)], 2),
    };
    let sync = |t: Tensor<3>| to_vec(t.slice([0..1, 0..1, 0..1])).unwrap();
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for _ in 0..iters {
        let t = Instant::now();
        let (layer, _) = SpectralStep::construct_spectral(&s, &pi, &config, &dft).unwrap();
        let tc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        sync(layer.step(s.clone(), Some(&pi)).x);
        let ts = t.elapsed().as_secs_f64();
        let t = Instant::now();
        if extra > 0 {
            sync(layer.step(ev.clone(), None).x);
        }
        let te = t.elapsed().as_secs_f64();
        println!(
            "m {m} C {channels} k {k}: construct {tc:.3} s, step {ts:.3} s (total {:.3}), eval step of {} samples {te:.3} s",
            tc + ts,
            ev.x.dims()[2]
        );
    }
}

use burn::tensor::Tensor;

fn main() {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    if let Ok(c) = std::env::var("T10") {
        case(None, 10, c.parse().unwrap(), 2000);
        return;
    }
    case(None, 50, 16, 0);
    if std::env::var("ONLY2D").is_err() {
        case(Some(&[0, 1]), 500, 5, 3400);
    }
}
