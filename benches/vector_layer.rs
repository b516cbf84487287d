//! One vector ReduNet layer at the size of the paper's MNIST experiment:
//! m = 5000 (500 per digit), d = 784, k = 10, soft membership. Construction
//! (class Gram matrices, the 11 SPD inverses) plus the forward pass of all
//! training samples, on the default CPU backend.

use criterion::{Criterion, criterion_group, criterion_main};
use redunet::core::host::{tensor, to_vec};
use redunet::core::linalg::spd_inverse_logdet;
use redunet::core::{MembershipMode, Memberships, VectorLayer, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use std::time::Duration;

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
}

criterion_group!(benches, layer);
criterion_main!(benches);
