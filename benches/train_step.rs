//! One optimiser step (Adam) of each network the trainer trains, through the
//! trainer's own step (`redunet::train::trainer::Stepper`, what `redunet
//! train` runs for every batch), on flex's autodiff device:
//!
//! - CRATE, width 96, 4 layers, 4 heads, 7×7 patches of 28×28 digits,
//!   batches of 100, cross-entropy;
//! - the plain transformer of the same shape (MLP of 4 × width);
//! - an MLP 784-512-512-128 with the MCR² loss, batches of 500;
//! - the translation-invariant ReduNet of the back-propagation table
//!   (16 channels lifted by 9×9 kernels, 30 layers, 10 classes), batches of
//!   50, cross-entropy.
//!
//! Each prints its median step time; `STEPS=N` changes the steps timed (5).

use burn::tensor::{Device, Distribution, Tensor};
use redunet::core::burn;
use redunet::core::{Memberships, VectorLayerConfig};
use redunet::train::mlp::Mlp;
use redunet::train::trainer::{FeatureNet, Stepper, TrainConfig, Trainee, head, optimizer};
use redunet::train::transformer::{Mixer, TransformerShape};
use redunet::vision::front::{FrontEnd, FrontEndConfig};
use redunet::vision::network::SpectralReduNet;

mod common;

fn config(batch: usize, objective: &str) -> TrainConfig {
    serde_json::from_value(serde_json::json!({
        "epochs": 1, "lr": 0.001, "batch_size": batch, "objective": objective,
    }))
    .unwrap()
}

/// Median seconds of one step of `net` (with a zero head for
/// cross-entropy) on `batch` random 28×28 images of 10 classes.
fn time_step<M: FeatureNet>(name: &str, net: M, batch: usize, objective: &str, steps: usize) {
    let device = Device::default();
    let cfg = config(batch, objective);
    let dim = net.feature_dim();
    let head = (objective == "cross_entropy").then(|| head(dim, 10, &device));
    let mut model = Trainee { net, head }.train();
    let mut optim = optimizer(&cfg);
    let stepper = Stepper::new(&cfg, 10, &device).unwrap();
    let x = Tensor::<2>::random([batch, 784], Distribution::Default, &device);
    let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let seconds = common::median_seconds(steps, || {
        let loss;
        (model, loss) = stepper
            .step(model.clone(), &mut optim, x.clone(), &labels, 1e-3)
            .unwrap();
        redunet::core::host::to_vec(loss).unwrap();
    });
    println!("train_step {name}: {:.1} ms per step", seconds * 1e3);
}

use burn::module::Module;

fn main() {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let steps: usize = std::env::var("STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let device = Device::default();
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let transformer = |mixer| TransformerShape {
        mixer,
        image: [1, 28, 28],
        patch: 7,
        dim: 96,
        depth: 4,
        heads: 4,
    };
    if run("crate") {
        let net = transformer(Mixer::Crate {
            step: 0.1,
            lambda: 0.1,
        })
        .init(0, &device)
        .unwrap();
        time_step(
            "crate (width 96, 4 layers, batch 100)",
            net,
            100,
            "cross_entropy",
            steps,
        );
    }
    if run("transformer") {
        let net = transformer(Mixer::Softmax { mlp_width: 384 })
            .init(0, &device)
            .unwrap();
        time_step(
            "transformer (width 96, 4 layers, batch 100)",
            net,
            100,
            "cross_entropy",
            steps,
        );
    }
    if run("mlp") {
        let net = Mlp::new(784, 2, 512, 128, 0, &device);
        time_step(
            "mlp 784-512-512-128, MCR² (batch 500)",
            net,
            500,
            "mcr2",
            steps,
        );
    }
    if run("redunet") {
        let front =
            FrontEnd::new(&FrontEndConfig::images(28, 28).lifted(16, 9, 0), &device).unwrap();
        let labels: Vec<usize> = (0..500).map(|i| i % 10).collect();
        let pi = Memberships::from_labels(&labels, 10, &device).unwrap();
        let layer = VectorLayerConfig::new().with_eta(0.1);
        let net = SpectralReduNet::random(front, &pi, 30, &layer, 0, &device).unwrap();
        time_step(
            "translation-invariant ReduNet (16 channels, 30 layers, batch 50)",
            net,
            50,
            "cross_entropy",
            steps,
        );
    }
}
