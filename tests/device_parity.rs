//! The same construction on every compiled backend gives the same rates:
//! ΔR within 1e-3 relative of flex at every layer; the MCR² loss and its
//! gradients through a trainable spectral network agree as well. With the `wgpu` feature
//! this runs on the GPU path (Mesa's software Vulkan in CI); the test fails
//! if the wgpu device cannot be opened, unless REDUNET_SKIP_WGPU=1.

use redunet::core::host::tensor;
use redunet::core::{MembershipMode, Memberships, VectorLayerConfig, VectorReduNet};
use redunet::data::{builtin, split::per_class_split};

/// ΔR of small spectral constructions: 1D polar signals and 2D images.
fn spectral_records(device_name: &str) -> Vec<f64> {
    use redunet::vision::polar::Polar;
    use redunet::vision::spectral::{Dft, SpectralNet};
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
    let one = SpectralNet::construct(&signals, &pi, 3, &config, |_| {}).unwrap();
    let two = SpectralNet::construct_with(
        &images.reshape([m, 1, 784]),
        &Dft::new_2d(28, 28, &device).unwrap(),
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

/// Training numbers on `device.autodiff()`: the MCR² loss of real features
/// and the norm of its gradient, and the same for the features of a small
/// trainable 2D spectral network (gradient with respect to its first
/// layer's operators).
fn training_records(device_name: &str) -> Vec<f64> {
    use redunet::core::layer::vector::normalize_rows;
    use redunet::train::Mcr2LossConfig;
    use redunet::vision::front::{FrontEnd, FrontEndConfig};
    use redunet::vision::network::SpectralReduNet;
    let device = redunet::devices::by_name(device_name)
        .unwrap_or_else(|e| panic!("{e}"))
        .autodiff();
    let data = builtin::mnist().unwrap();
    let split = per_class_split(&data, Some(&[0, 1, 2]), 10, 0).unwrap();
    let m = split.train.len();
    let pi = Memberships::from_labels(&split.train.labels, 3, &device).unwrap();
    let norm = |t: burn::tensor::Tensor<2>| -> f64 {
        let v = redunet::core::host::to_vec(t.powi_scalar(2).sum().reshape([1, 1])).unwrap()[0];
        (v as f64).sqrt()
    };
    let value = |t: burn::tensor::Tensor<1>| redunet::core::host::to_vec(t).unwrap()[0] as f64;
    let x = tensor(split.train.features.clone(), [m, 784], &device);
    let z = normalize_rows(x.clone()).require_grad();
    let mcr2 = Mcr2LossConfig::new().init();
    let loss = mcr2.try_forward(&z, &pi).unwrap().loss;
    let g = z.grad(&loss.backward()).unwrap();
    let mut out = vec![value(loss), norm(g)];
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let front = FrontEnd::new(&FrontEndConfig::images(28, 28).lifted(2, 3, 0), &device).unwrap();
    let (net, _) = SpectralReduNet::construct(&x, front, &pi, 2, &config, |_| {}).unwrap();
    let f = net.forward(x);
    let loss = mcr2.try_forward(&f, &pi).unwrap().loss;
    let g = net.net.layers[0].re.val().grad(&loss.backward()).unwrap();
    let [p, k1, c, _] = g.dims();
    out.extend([value(loss), norm(g.reshape([p * k1, c * c]))]);
    out
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
    reference.extend(training_records("flex"));
    let mut other = records(name);
    other.extend(spectral_records(name));
    other.extend(training_records(name));
    for (l, (a, b)) in reference.iter().zip(&other).enumerate() {
        let rel = (a - b).abs() / a.abs();
        eprintln!("value {l}: flex {a:.6}, {name} {b:.6}, rel {rel:.2e}");
        assert!(rel < 1e-3, "value {l}: flex {a} vs {name} {b}");
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
    let t = training_records("flex");
    assert!(t.iter().all(|v| v.is_finite() && *v != 0.0), "{t:?}");
}
