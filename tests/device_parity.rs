//! The same construction on every compiled backend gives the same rates:
//! ΔR within 1e-3 relative of flex at every layer. With the `wgpu` feature
//! this runs on the GPU path (Mesa's software Vulkan in CI); the test fails
//! if the wgpu device cannot be opened, unless REDUNET_SKIP_WGPU=1.

use redunet::core::host::tensor;
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig, VectorReduNet};
use redunet::data::{builtin, split::per_class_split};

/// ΔR of small spectral constructions: 1D polar signals and 2D images.
fn spectral_records(device_name: &str) -> Vec<f64> {
    use redunet::vision::polar::Polar;
    use redunet::vision::spectral::{Dft, SpectralNet1d};
    let device = redunet::devices::by_name(device_name).unwrap_or_else(|e| panic!("{e}"));
    let data = builtin::mnist().unwrap();
    let split = per_class_split(&data, Some(&[0, 1]), 20, 0).unwrap();
    let m = split.train.len();
    let images = tensor(split.train.features.clone(), [m, 784], &device);
    let pi = Memberships::from_labels(&split.train.labels, 2, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let signals = Polar::new(28, 28, 5, 40, &device).apply(images.clone());
    let one = SpectralNet1d::construct(&signals, &pi, 3, &config, |_| {}).unwrap();
    let two = SpectralNet1d::construct_with(
        &images.reshape([m, 1, 784]),
        &Dft::new_2d(28, 28, &device),
        &pi,
        3,
        &config,
        |_| {},
    )
    .unwrap();
    one.records
        .iter()
        .chain(&two.records)
        .map(|r| r.delta_r)
        .collect()
}

fn records(device_name: &str) -> Vec<f64> {
    let device = redunet::devices::by_name(device_name).unwrap_or_else(|e| panic!("{e}"));
    let data = builtin::mnist().unwrap();
    let split = per_class_split(&data, Some(&[0, 1, 2]), 30, 0).unwrap();
    let m = split.train.len();
    let z = tensor(split.train.features.clone(), [m, 784], &device);
    let pi = Memberships::from_labels(&split.train.labels, 3, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    VectorReduNet::construct(&z, &pi, 4, &config, |_| {})
        .unwrap()
        .records
        .iter()
        .map(|r| r.delta_r)
        .collect()
}

#[cfg(any(feature = "wgpu", feature = "ndarray"))]
fn compare(name: &str) {
    let mut reference = records("flex");
    reference.extend(spectral_records("flex"));
    let mut other = records(name);
    other.extend(spectral_records(name));
    for (l, (a, b)) in reference.iter().zip(&other).enumerate() {
        let rel = (a - b).abs() / a.abs();
        eprintln!("layer {l}: flex ΔR {a:.6}, {name} ΔR {b:.6}, rel {rel:.2e}");
        assert!(rel < 1e-3, "layer {l}: flex {a} vs {name} {b}");
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_flex() {
    if std::env::var("REDUNET_SKIP_WGPU").as_deref() == Ok("1") {
        eprintln!("REDUNET_SKIP_WGPU=1: wgpu parity skipped");
        return;
    }
    compare("wgpu");
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_matches_flex() {
    compare("ndarray");
}

#[test]
fn flex_is_deterministic() {
    assert_eq!(records("flex"), records("flex"));
    assert_eq!(spectral_records("flex"), spectral_records("flex"));
}
