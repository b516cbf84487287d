//! The MCR² loss, forward and backward, at m = 1000, d = 128, k = 10 on
//! flex's autodiff device: one 128×128 and ten 100×100 (Gram-side) SPD
//! factorisations for the values, the surrogate's products for the
//! gradient.

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use redunet::core::Memberships;
use redunet::core::burn;
use redunet::core::host::to_vec;
use redunet::core::layer::vector::normalize_rows;
use redunet::train::Mcr2LossConfig;
use std::time::Duration;

mod common;

fn loss(c: &mut Criterion) {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let device = Device::default().autodiff();
    let (m, d, k) = (1000, 128, 10);
    let z = normalize_rows(Tensor::<2>::random(
        [m, d],
        Distribution::Normal(0.0, 1.0),
        &device,
    ));
    let labels: Vec<usize> = (0..m).map(|i| i % k).collect();
    let pi = Memberships::from_labels(&labels, k, &device).unwrap();
    let loss = Mcr2LossConfig::new().with_num_classes(Some(k)).init();
    let mut g = c.benchmark_group("mcr2_loss");
    g.sample_size(30).measurement_time(Duration::from_secs(10));
    g.bench_function("forward+backward m1000 d128 k10", |b| {
        b.iter(|| {
            let z = z.clone().require_grad();
            let l = loss.try_forward(&z, &pi).unwrap().loss;
            let grad = z.grad(&l.backward()).unwrap();
            to_vec(grad.slice([0..1, 0..1])).unwrap()
        })
    });
    g.finish();
    // Counted work: ZᵀZ and the ten class Grams (on their 100×100 side) and
    // their factorisations forward, the Gram products twice again backward.
    let grams = 2.0 * (m * d * d) as f64 + 2.0 * (100 * 100 * d * k) as f64;
    let factors = (d * d * d) as f64 + (k * 100 * 100 * 100) as f64;
    common::report(
        "MCR² loss forward+backward m1000 d128 k10",
        3.0 * grams + factors,
        15,
        || {
            let z = z.clone().require_grad();
            let l = loss.try_forward(&z, &pi).unwrap().loss;
            to_vec(z.grad(&l.backward()).unwrap().slice([0..1, 0..1])).unwrap();
        },
    );
}

criterion_group!(benches, loss);
criterion_main!(benches);
