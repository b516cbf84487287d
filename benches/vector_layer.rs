//! One vector ReduNet layer at the size of the paper's MNIST experiment:
//! m = 5000 (500 per digit), d = 784, k = 10, soft membership. Construction
//! (class Gram matrices, the 11 SPD inverses) plus the forward pass of all
//! training samples, on the default CPU backend. Besides criterion's
//! times, each benchmark prints its effective GFLOP/s against this
//! machine's sgemm peak, measured in the same run (see `common`).

use criterion::{Criterion, criterion_group, criterion_main};
use redunet::core::host::{tensor, to_vec};
use redunet::core::linalg::spd_inverse_logdet;
use redunet::core::{MembershipMode, Memberships, VectorLayer, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use std::time::Duration;

mod common;

/// The layer's counted work: the Gram matrices ZᵀZ and Zᵀdiag(π_j)Z as full
/// products, the k+1 SPD inverses at d³ each, and the forward product
/// Z·[E | C_1 … C_k].
fn layer_flops(m: usize, d: usize, k: usize) -> f64 {
    let (m, d, k) = (m as f64, d as f64, k as f64);
    2.0 * 2.0 * m * d * d + (k + 1.0) * d * d * d + 2.0 * m * d * (k + 1.0) * d
}

fn layer(c: &mut Criterion) {
    if std::env::var_os("REDUNET_DEFAULT_MALLOC").is_none() {
        redunet::alloc::keep_large_buffers();
    }
    redunet::alloc::flush_subnormals();
    let data = builtin::mnist().expect("built-in MNIST");
    let split = per_class_split(&data, None, 500, 0).expect("split");
    let device = burn::tensor::Device::default();
    let m = split.train.len();
    let z = tensor(split.train.features.clone(), [m, 784], &device);
    let z = redunet::core::layer::vector::normalize_rows(z);
    let pi = Memberships::from_labels(&split.train.labels, 10, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let mut g = c.benchmark_group("vector_layer");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("construct+forward m5000 d784 k10 soft", |b| {
        b.iter(|| {
            let (layer, _) = VectorLayer::construct(&z, &pi, &config).unwrap();
            let out = layer.forward_train(&z, &pi).unwrap();
            // Reading one value back waits for the device to finish.
            to_vec(out.slice([0..1, 0..1])).unwrap()
        })
    });
    g.finish();
    common::report(
        "vector layer m5000 d784 k10 soft",
        layer_flops(m, 784, 10),
        5,
        || {
            let (layer, _) = VectorLayer::construct(&z, &pi, &config).unwrap();
            let out = layer.forward_train(&z, &pi).unwrap();
            to_vec(out.slice([0..1, 0..1])).unwrap();
        },
    );

    let mut g = c.benchmark_group("spd");
    g.sample_size(10);
    let x = z.clone().slice([0..784, 0..784]);
    let a = (x.clone().transpose().matmul(x).mul_scalar(15.7)
        + burn::tensor::Tensor::<2>::eye(784, &device))
    .unsqueeze_dim::<3>(0)
    .repeat_dim(0, 11);
    g.bench_function("inverse+logdet 11x784x784", |b| {
        b.iter(|| {
            let (inv, ld) = spd_inverse_logdet(a.clone()).unwrap();
            (to_vec(inv.slice([0..1, 0..1, 0..1])).unwrap(), ld)
        })
    });
    g.finish();
    common::report(
        "SPD inverse+logdet 11x784x784",
        11.0 * 784f64.powi(3),
        5,
        || {
            let (inv, ld) = spd_inverse_logdet(a.clone()).unwrap();
            to_vec(inv.slice([0..1, 0..1, 0..1])).unwrap();
            assert!(ld.iter().all(|l| l.is_finite()));
        },
    );
}

criterion_group!(benches, layer);
criterion_main!(benches);
