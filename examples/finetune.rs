//! Forward-construct a small translation-invariant ReduNet on MNIST digits,
//! then fine-tune all of it (lifting kernels and every layer's complex
//! operators) by SGD with a linear head and cross-entropy, on the device
//! chosen with `--device` (flex, ndarray or wgpu, as compiled in).
//!
//! `cargo run --release --example finetune [-- --device flex]`

use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::module::Initializer;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::Module;
use burn::tensor::{Int, Tensor, TensorData};
use redunet::core::classify::{accuracy, nearest_subspace_predict};
use redunet::core::host::tensor;
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet::data::{builtin, split::per_class_split};
use redunet::vision::front::{FrontEnd, FrontEndConfig};
use redunet::vision::network::SpectralReduNet;

/// The network and its head: what the optimiser steps.
#[derive(Module, Debug)]
struct Classifier {
    net: SpectralReduNet,
    head: Linear,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let args: Vec<String> = std::env::args().collect();
    let name = match args.iter().position(|a| a == "--device") {
        Some(i) => args.get(i + 1).ok_or("--device needs a name")?.as_str(),
        None => "flex",
    };
    let device = redunet::devices::by_name(name)?;

    let split = per_class_split(&builtin::mnist()?, None, 50, 50)?;
    let (train, test) = (&split.train, &split.test);
    let k = split.classes.len();
    let x = tensor(train.features.clone(), [train.len(), 784], &device);
    let xt = tensor(test.features.clone(), [test.len(), 784], &device);
    let pi = Memberships::from_labels(&train.labels, k, &device)?;

    // 28×28 digits lifted to 4 channels by 5×5 circular convolutions + ReLU,
    // then 4 spectral layers built forward.
    let config = VectorLayerConfig {
        eta: 0.1,
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let front = FrontEnd::new(&FrontEndConfig::images(28, 28).lifted(4, 5, 0), &device)?;
    // Kernels at the scale of a CNN's weights (k·√C_in = 5): the features
    // are the same, and SGD moves the kernels at the layers' relative speed.
    let front = front.with_lift_scale(0.2);
    let (net, records) = SpectralReduNet::construct(&x, front, &pi, 4, &config, |_| {})?;
    eprintln!(
        "constructed: ΔR {:.3} → {:.3}",
        records[0].delta_r,
        records[records.len() - 1].delta_r
    );
    let ns_accuracy = |net: &SpectralReduNet| -> Result<f64, Box<dyn std::error::Error>> {
        let (f, ft) = (net.transform(&x)?, net.transform(&xt)?);
        Ok(accuracy(
            &nearest_subspace_predict(&f, &train.labels, &ft, 5)?,
            &test.labels,
        ))
    };
    let before = ns_accuracy(&net)?;

    // Fine-tuning on the autodiff device: the same module, moved.
    let ad = device.clone().autodiff();
    let head = LinearConfig::new(net.feature_dim(), k)
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(&device);
    let mut model = Classifier { net, head }.to_device(&ad).train();
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
        .init();
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(
            train.labels.iter().map(|&l| l as i64).collect::<Vec<_>>(),
            [train.len()],
        ),
        &ad,
    );
    let xa = x.clone().to_device(&ad);
    // Mini-batches of 50 with every class in each (the split is grouped by
    // class; a stride through it takes samples of each).
    let m = train.len();
    let steps = m / 50;
    let epochs = 15;
    // A cosine schedule from lr 0.05 (burn-optim's), epoch e at its step e,
    // never below 1e-3.
    let mut schedule = CosineAnnealingLrSchedulerConfig::new(0.05, epochs).init()?;
    schedule.step();
    for epoch in 1..=epochs {
        let lr = schedule.step().base().max(1e-3);
        let mut total = 0.0;
        for s in 0..steps {
            let rows: Vec<usize> = ((s + epoch) % steps..m).step_by(steps).collect();
            let idx = redunet::core::host::indices(&rows, &ad);
            let f = model.net.forward(xa.clone().select(0, idx.clone()));
            let logits = model.head.forward(f).mul_scalar(10.0);
            let loss = ce.forward(logits, targets.clone().select(0, idx));
            total += loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        eprintln!("epoch {epoch}: cross-entropy {:.4}", total / steps as f32);
    }
    let after = ns_accuracy(&model.valid().net)?;
    println!(
        "device {name}: test accuracy (nearest subspace) before fine-tuning {before:.4}, after {after:.4}"
    );
    Ok(())
}
