//! Where the time of one 2D spectral layer goes: the per-frequency moments,
//! the operators (their Hermitian inverses) and the update of all training
//! samples (step), at the sizes of the conv2d benchmark and of translation-01.
//! `cargo run --release --example profile_spectral`; `ITERS=n` repetitions,
//! `ONLY2D=1` the benchmark shape only, `T10=75` the translation-10 shape
//! (10 per digit lifted to 75 channels, with a 2000-sample evaluation step),
//! `FIXED=1` the parts of a conv2d run outside its layers.

use redunet::core::host::{tensor, to_vec};
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use redunet::vision::lift::Lift2d;
use redunet::vision::spectral::{Dft, SpectralMoments, Spectrum};
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
    let ev = Spectrum {
        x: Tensor::cat(vec![s.x.clone(); extra.div_ceil(m).max(1)], 2),
    };
    let sync = |t: Tensor<3>| to_vec(t.slice([0..1, 0..1, 0..1])).unwrap();
    // Each iteration starts from an unshared copy, as `redunet run` holds
    // its spectra, so the host path reads it in place.
    let fresh = |s: &Spectrum| Spectrum {
        x: Tensor::from_data(s.x.to_data(), &device),
    };
    for _ in 0..iters() {
        let (s, ev) = (fresh(&s), fresh(&ev));
        let t = Instant::now();
        let [p, c2, _] = s.x.dims();
        let mut moments = SpectralMoments::new(c2 / 2, p, k);
        let s = moments.add_owned(s, &pi).unwrap();
        let tm = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (layer, _) = moments.layer(&config, &dft).unwrap();
        let to = t.elapsed().as_secs_f64();
        let t = Instant::now();
        sync(layer.step(s, Some(&pi)).x);
        let ts = t.elapsed().as_secs_f64();
        let t = Instant::now();
        if extra > 0 {
            sync(layer.step(ev, None).x);
        }
        let te = t.elapsed().as_secs_f64();
        println!(
            "m {m} C {channels} k {k}: moments {tm:.3} s, operators {to:.3} s, step {ts:.3} s (total {:.3}), eval step of {} samples {te:.3} s",
            tm + to + ts,
            extra.div_ceil(m).max(1) * m
        );
    }
}

use burn::tensor::Tensor;

/// The parts of a conv2d `redunet run` outside its layers, at the bench's
/// size (500 digits lifted to 16 channels): lifting, the 2D DFT and
/// normalisation, the final stage's rates, the inverse DFT.
fn fixed() {
    let data = builtin::mnist().expect("built-in MNIST");
    let split = per_class_split(&data, None, 50, 0).expect("split");
    let device = burn::tensor::Device::default();
    let m = split.train.len();
    let channels = 16;
    let pi = Memberships::from_labels(&split.train.labels, 10, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let dft = Dft::new_2d(28, 28, &device).expect("28×28 tables");
    let lift = Lift2d::random(channels, 1, 9, 0, &device);
    let sync = |t: Tensor<3>| to_vec(t.slice([0..1, 0..1, 0..1])).unwrap();
    for _ in 0..iters() {
        let images = tensor(split.train.features.clone(), [m, 1, 28, 28], &device);
        let t = Instant::now();
        let lifted = lift.apply(images).reshape([m, channels, 784]);
        sync(lifted.clone());
        let tl = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let lifted = redunet::vision::spectral::rescale_extreme_signals(lifted);
        let s = dft.into_spectrum(lifted);
        sync(s.x.clone());
        let td = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let s = dft.normalize(s);
        sync(s.x.clone());
        let tn = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut moments = SpectralMoments::new(channels, dft.frequencies(), 10);
        let s = moments.add_owned(s, &pi).unwrap();
        let tm = t.elapsed().as_secs_f64();
        let rates = moments.rates(&config, &dft).unwrap();
        let tr = t.elapsed().as_secs_f64();
        let t = Instant::now();
        sync(dft.signals(s));
        let ti = t.elapsed().as_secs_f64();
        println!(
            "fixed: lift {tl:.3} s, rescale + DFT {td:.3} s, normalise {tn:.3} s, final rates {tr:.3} s (moments {tm:.3} s, ΔR {:.4}), inverse DFT {ti:.3} s; total {:.3} s",
            rates.delta_r,
            tl + td + tn + tr + ti
        );
    }
}

fn iters() -> usize {
    std::env::var("ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn main() {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    if std::env::var("FIXED").is_ok() {
        fixed();
        return;
    }
    if let Ok(c) = std::env::var("T10") {
        case(None, 10, c.parse().unwrap(), 2000);
        return;
    }
    case(None, 50, 16, 0);
    if std::env::var("ONLY2D").is_err() {
        case(Some(&[0, 1]), 500, 5, 3400);
    }
}
