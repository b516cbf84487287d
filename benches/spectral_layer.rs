//! One shift-invariant (spectral) ReduNet layer, construction (per frequency
//! Hermitian inverses) plus the update of all training samples, soft
//! membership:
//! - conv1d at the size of the rotation experiment: m = 2000 polar signals
//!   of digits 0 and 1 (C = 5 radii, T = 200 angles), k = 2;
//! - conv2d: m = 500 digits (50 per class), 28×28, lifted to C = 16 by
//!   random 9×9 circular convolutions, k = 10.
//!
//! Each layer is timed as `redunet run` makes it, from a spectrum nothing
//! else holds (copied afresh outside the timing), which the host path reads
//! in place.

use burn::tensor::Tensor;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use redunet::core::host::{tensor, to_vec};
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use redunet::vision::lift::Lift2d;
use redunet::vision::polar::Polar;
use redunet::vision::spectral::{Dft, SpectralMoments, Spectrum};
use std::time::Duration;

mod common;

/// A spectral layer's counted work at P frequencies: the total and class
/// moments (a complex C×C product per sample, 8C² real flops), the k+1
/// complex C×C inverses per frequency (8C³ each), and the k+1 operators
/// applied to every sample.
fn spectral_flops(p: usize, m: usize, c: usize, k: usize) -> f64 {
    let (p, m, c, k1) = (p as f64, m as f64, c as f64, k as f64 + 1.0);
    p * (2.0 * 8.0 * m * c * c + k1 * 8.0 * c * c * c + k1 * 8.0 * m * c * c)
}

/// An unshared copy of `s`, as a construction holds its spectra from layer
/// to layer (made outside the timing).
fn fresh(s: &Spectrum) -> Spectrum {
    Spectrum {
        x: Tensor::from_data(s.x.to_data(), &s.x.device()),
    }
}

/// One layer as `redunet run` makes it: the moments of the spectrum it
/// holds, the operators, and the step of every sample.
fn layer_step(s: Spectrum, pi: &Memberships, config: &VectorLayerConfig, dft: &Dft) {
    let [p, c2, _] = s.x.dims();
    let mut moments = SpectralMoments::new(c2 / 2, p, pi.num_classes());
    let s = moments.add_owned(s, pi).unwrap();
    let (layer, _) = moments.layer(config, dft).unwrap();
    to_vec(layer.step(s, Some(pi)).x.slice([0..1, 0..1, 0..1])).unwrap();
}

fn layer(c: &mut Criterion) {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let data = builtin::mnist().expect("built-in MNIST");
    let split = per_class_split(&data, Some(&[0, 1]), 1000, 0).expect("split");
    let device = burn::tensor::Device::default();
    let m = split.train.len();
    let images = tensor(split.train.features.clone(), [m, 784], &device);
    let signals = Polar::new(28, 28, 5, 200, &device).apply(images);
    let dft = Dft::new(200, &device).expect("tables");
    let s = dft.normalize(dft.spectrum(&signals));
    let pi = Memberships::from_labels(&split.train.labels, 2, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let mut g = c.benchmark_group("spectral_layer");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("conv1d construct+step m2000 C5 T200 k2 soft", |b| {
        b.iter_batched(
            || fresh(&s),
            |input| layer_step(input, &pi, &config, &dft),
            BatchSize::LargeInput,
        )
    });

    common::report_prepared(
        "conv1d layer m2000 C5 T200 k2 soft",
        spectral_flops(101, m, 5, 2),
        9,
        || fresh(&s),
        |input| layer_step(input, &pi, &config, &dft),
    );

    let split = per_class_split(&data, None, 50, 0).expect("split");
    let m = split.train.len();
    let images = tensor(split.train.features.clone(), [m, 1, 28, 28], &device);
    let lifted = Lift2d::random(16, 1, 9, 0, &device).apply(images);
    let dft = Dft::new_2d(28, 28, &device).expect("tables");
    let s = dft.normalize(dft.spectrum(&lifted.reshape([m, 16, 784])));
    let pi = Memberships::from_labels(&split.train.labels, 10, &device).unwrap();
    g.bench_function("conv2d construct+step m500 28x28 C16 k10 soft", |b| {
        b.iter_batched(
            || fresh(&s),
            |input| layer_step(input, &pi, &config, &dft),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    common::report_prepared(
        "conv2d layer m500 28x28 C16 k10 soft",
        spectral_flops(28 * 15, m, 16, 10),
        5,
        || fresh(&s),
        |input| layer_step(input, &pi, &config, &dft),
    );
}

/// The transform of 1D signals both ways (spectrum and back), by dense
/// tables and by FFT, at lengths around `FFT_MIN_LEN`: where the FFT starts
/// to win is the threshold.
fn transforms(c: &mut Criterion) {
    use burn::tensor::{Distribution, Tensor};
    let device = burn::tensor::Device::default();
    let mut g = c.benchmark_group("dft");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for t in [256, 512, 1024, 2048] {
        let z = Tensor::<3>::random([200, 4, t], Distribution::Normal(0.0, 1.0), &device);
        for (name, dft) in [
            ("dense", Dft::dense_2d(1, t, &device).unwrap()),
            ("fft", Dft::fft(t, &device).unwrap()),
        ] {
            g.bench_function(format!("{name} m200 C4 T{t}"), |b| {
                b.iter(|| {
                    let (re, im) = dft.forward(&z);
                    to_vec(dft.inverse(re, im).slice([0..1, 0..1, 0..1])).unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, layer, transforms);
criterion_main!(benches);
