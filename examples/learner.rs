//! CRATE trained with burn-train's `Learner` and `SupervisedTraining` on the
//! built-in digits: redunet's networks are burn-train models
//! (`redunet::train::learner::Classifier` implements `TrainStep` and
//! `InferenceStep`), fed by burn's data loaders, optimised by burn-optim's
//! Adam under its cosine schedule (from lr 5e-3), with burn-train's loss
//! and accuracy metrics and redunet's ΔR of the features (`DeltaRMetric`). Prints the test accuracy of the trained model
//! (0.930 on 1,000 test digits after 12 epochs, 43 s on this 2-core machine).
//!
//! `cargo run --release --example learner` (`EPOCHS=N` to change the 12
//! epochs, `PER_CLASS=N` the 500 training digits per class, `LR=x` the
//! starting learning rate).

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::Device;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use redunet::core::burn;
use redunet::data::{builtin, split::per_class_split};
use redunet::train::learner::{Classifier, DeltaRMetric, ImageBatcher, ImageItem};
use redunet::train::transformer::{Mixer, TransformerShape};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn items(ds: &redunet::data::Dataset) -> Vec<ImageItem> {
    let n = ds.dim();
    (0..ds.len())
        .map(|i| (ds.features[i * n..(i + 1) * n].to_vec(), ds.labels[i]))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let (epochs, per_class) = (env("EPOCHS", 12), env("PER_CLASS", 500));
    let lr: f64 = std::env::var("LR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5e-3);
    let split = per_class_split(&builtin::mnist()?, None, per_class, 100)?;
    let device = Device::default();
    let batch = 100;
    let train = DataLoaderBuilder::new(ImageBatcher)
        .batch_size(batch)
        .shuffle(0)
        .set_device(device.clone().autodiff())
        .build(InMemDataset::new(items(&split.train)));
    // Shuffled too: the split is grouped by class, and a batch of one class
    // has ΔR = 0.
    let test = DataLoaderBuilder::new(ImageBatcher)
        .batch_size(batch)
        .shuffle(1)
        .set_device(device.clone())
        .build(InMemDataset::new(items(&split.test)));
    // CRATE as in configs/crate-mnist.toml: 7×7 patches, width 96, 4
    // layers, 4 heads (subspaces of dimension 24).
    let crate_net = TransformerShape {
        mixer: Mixer::Crate {
            step: 0.1,
            lambda: 0.1,
        },
        image: [1, 28, 28],
        patch: 7,
        dim: 96,
        depth: 4,
        heads: 4,
    }
    .init(0, &device)?;
    let model = Classifier::new(crate_net, 10, 10.0, &device).train();
    let steps = epochs * split.train.len().div_ceil(batch);
    let learner = Learner::new(
        model,
        AdamConfig::new().init(),
        CosineAnnealingLrSchedulerConfig::new(lr, steps).init()?,
    );
    let dir = std::env::temp_dir().join(format!("redunet-learner-{}", std::process::id()));
    let result = SupervisedTraining::new(&dir, train, test.clone())
        .metrics((
            LossMetric::new(),
            AccuracyMetric::new(),
            DeltaRMetric::new(0.5, 10),
        ))
        .num_epochs(epochs)
        .summary()
        .launch(learner);
    std::fs::remove_dir_all(&dir).ok();
    // The trained model, in validation mode, on the test digits.
    let model = result.model.valid();
    let (mut right, mut total) = (0usize, 0usize);
    for batch in test.iter() {
        let batch = batch?;
        let predicted = model.forward(batch.images).argmax(1).flatten::<1>(0, 1);
        let hits = predicted.equal(batch.targets.clone()).int().sum();
        right += redunet::core::host::to_vec(hits.float())?[0] as usize;
        total += batch.targets.dims()[0];
    }
    println!(
        "CRATE through burn-train's Learner, {epochs} epochs on {} digits: test accuracy {:.4} ({right} of {total})",
        split.train.len(),
        right as f64 / total as f64
    );
    Ok(())
}
