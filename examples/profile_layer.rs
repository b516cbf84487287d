//! Where the time of one vector layer goes (m = 5000, d = 784, k = 10):
//! class Gram matrices, the SPD inverses, and the soft forward pass.
//! `cargo run --release --example profile_layer`

use redunet::core::host::{tensor, to_vec};
use redunet::core::linalg::spd_inverse_logdet;
use redunet::core::{MembershipMode, Memberships, VectorLayer, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use std::time::Instant;

fn main() {
    let data = builtin::mnist().expect("built-in MNIST");
    let split = per_class_split(&data, None, 500, 0).expect("split");
    let device = burn::tensor::Device::default();
    let m = split.train.len();
    let z = redunet::core::layer::vector::normalize_rows(tensor(
        split.train.features.clone(),
        [m, 784],
        &device,
    ));
    let pi = Memberships::from_labels(&split.train.labels, 10, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let sync = |t: burn::tensor::Tensor<2>| to_vec(t.slice([0..1, 0..1])).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let (layer, _) = VectorLayer::construct(&z, &pi, &config).unwrap();
        sync(layer.e());
        let tc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = layer.forward_train(&z, &pi).unwrap();
        sync(out);
        let tf = t.elapsed().as_secs_f64();
        let a = layer.c();
        let t = Instant::now();
        let (inv, _) = spd_inverse_logdet(a.clone()).unwrap();
        to_vec(inv.slice([0..1, 0..1, 0..1])).unwrap();
        let ti = t.elapsed().as_secs_f64();
        println!(
            "construct {tc:.3} s (of which ~{ti:.3} s for 10 SPD inverses), forward {tf:.3} s, total {:.3} s",
            tc + tf
        );
    }
}
