//! Construct a vector ReduNet on the built-in MNIST subset, save it, load it
//! back as a standalone model, and classify the test digits by nearest
//! subspace on its features.
//!
//! `cargo run --release --example construct_mnist [-- TRAIN_PER_CLASS LAYERS]`
//! (defaults 200 and 10).

use burn::tensor::Device;
use redunet::core::classify::{accuracy, nearest_subspace_predict};
use redunet::core::host::tensor;
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig, VectorReduNet};
use redunet::data::{builtin, split::per_class_split};
use redunet::train::{Network, SavedModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    redunet::alloc::keep_large_buffers();
    redunet::alloc::flush_subnormals();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let per_class = args.first().copied().unwrap_or(200);
    let layers = args.get(1).copied().unwrap_or(10);
    let device = Device::default();

    // The first `per_class` digits of each class train, the next 50 test.
    let split = per_class_split(&builtin::mnist()?, None, per_class, 50)?;
    let (train, test) = (&split.train, &split.test);
    let x = tensor(train.features.clone(), [train.len(), train.dim()], &device);
    let xt = tensor(test.features.clone(), [test.len(), test.dim()], &device);
    let pi = Memberships::from_labels(&train.labels, split.classes.len(), &device)?;

    // Forward construction: each layer's E and C_j come from the features
    // of the layer before (soft memberships, as the official code).
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let built = VectorReduNet::construct(&x, &pi, layers, &config, |r| {
        eprintln!("layer {:>3}: ΔR {:.3}", r.layer, r.delta_r)
    })?;

    // Save as a standalone model directory, then load it with nothing else.
    let dir = std::env::temp_dir().join(format!("redunet-construct-{}", std::process::id()));
    SavedModel::new(Network::Vector(built.network)).save(&dir)?;
    let model = SavedModel::load(&dir, &device)?;
    std::fs::remove_dir_all(&dir)?;

    let (ftr, fte) = (model.transform(&x)?, model.transform(&xt)?);
    let predicted = nearest_subspace_predict(&ftr, &train.labels, &fte, 10)?;
    println!(
        "{} layers, {} train / {} test digits: test accuracy (nearest subspace) {:.4}",
        layers,
        train.len(),
        test.len(),
        accuracy(&predicted, &test.labels)
    );
    Ok(())
}
