//! A small CNN built from burn-nn layers, trained with `Mcr2Loss` alone on
//! the built-in MNIST subset; its features are classified by nearest
//! subspace.
//!
//! `cargo run --release --example mcr2_loss`

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use redunet::core::classify::{accuracy, nearest_subspace_predict};
use redunet::core::host::tensor;
use redunet::core::layer::vector::normalize_rows;
use redunet::data::{builtin, split::per_class_split};
use redunet::train::Mcr2LossConfig;

/// conv 3×3 (8) → ReLU → max-pool 2 → conv 3×3 (16) → ReLU → max-pool 2 →
/// linear to 32 features on the unit sphere.
#[derive(Module, Debug)]
struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    relu: Relu,
    out: Linear,
}

impl Cnn {
    fn new(device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Self {
            conv1: conv(1, 8),
            conv2: conv(8, 16),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            relu: Relu::new(),
            out: LinearConfig::new(16 * 7 * 7, 32).init(device),
        }
    }

    /// `[b, 784]` images to `[b, 32]` unit-norm features.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let b = x.dims()[0];
        let h = self.pool.forward(
            self.relu
                .forward(self.conv1.forward(x.reshape([b, 1, 28, 28]))),
        );
        let h = self.pool.forward(self.relu.forward(self.conv2.forward(h)));
        normalize_rows(self.out.forward(h.reshape([b, 16 * 7 * 7])))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let device = Device::default();
    let ad = device.clone().autodiff();
    let split = per_class_split(&builtin::mnist()?, None, 100, 50)?;
    let (train, test) = (&split.train, &split.test);
    let x = tensor(train.features.clone(), [train.len(), 784], &device);
    let xt = tensor(test.features.clone(), [test.len(), 784], &device);

    let loss = Mcr2LossConfig::new().with_eps_sq(0.5).init();
    // Seeded initialisation, so that the run (and its accuracy) repeats.
    ad.seed(0);
    let mut model = Cnn::new(&ad);
    let mut optim = AdamConfig::new().init();
    // Mini-batches of 250, each holding every class (the split is grouped
    // by class, so a stride of 4 through it takes 25 of each).
    let batches: Vec<Vec<usize>> = (0..4)
        .map(|s| (s..train.len()).step_by(4).collect())
        .collect();
    for epoch in 1..=10 {
        let mut total = 0.0;
        for rows in &batches {
            let idx = redunet::core::host::indices(rows, &ad);
            let xb = x.clone().to_device(&ad).select(0, idx);
            let labels: Vec<i64> = rows.iter().map(|&i| train.labels[i] as i64).collect();
            let yb = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows.len()]), &ad);
            let out = loss.forward_rates(model.forward(xb), yb);
            total += out.rates.delta_r;
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
        }
        eprintln!("epoch {epoch}: mean ΔR {:.3}", total / batches.len() as f64);
    }
    let model = model.valid();
    let (f, ft) = (model.forward(x), model.forward(xt));
    let predicted = nearest_subspace_predict(&f, &train.labels, &ft, 5)?;
    println!(
        "CNN trained with MCR² on {} digits: test accuracy (nearest subspace) {:.4}",
        train.len(),
        accuracy(&predicted, &test.labels)
    );
    Ok(())
}
