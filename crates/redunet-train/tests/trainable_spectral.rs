//! The trainable spectral ReduNet: its forward pass equals the constructed
//! network's, and its gradients reach every layer and the lifting kernels
//! and agree with central finite differences.

mod common;

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use common::{check_directional, gaussian, values};
use redunet_core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet_train::trainer::FeatureNet;
use redunet_vision::front::{FrontEnd, FrontEndConfig, Lifting};
use redunet_vision::lift::{Lift2d, circular_conv2d};
use redunet_vision::network::SpectralReduNet;

const SHAPE: (usize, usize, usize) = (4, 5, 1);

fn tiny(device: &Device) -> (SpectralReduNet, Tensor<2>) {
    let m = 9;
    let x = gaussian(m, 20, 3, device);
    let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        lambda: 20.0,
        ..Default::default()
    };
    let (net, records) =
        SpectralReduNet::construct(&x, front(device), &pi, 2, &config, |_| {}).unwrap();
    assert_eq!(records.len(), 3);
    (net, x)
}

/// 4×5 images lifted to 2 channels by 3×3 kernels, stored at the scale of
/// a CNN's weights (divided by k·√C_in = 3).
fn front(device: &Device) -> FrontEnd {
    let (h, w, _) = SHAPE;
    FrontEnd::new(&FrontEndConfig::images(h, w).lifted(2, 3, 1), device)
        .unwrap()
        .with_lift_scale(1.0 / 3.0)
}

fn kernels(net: &SpectralReduNet) -> Tensor<4> {
    match &net.front.lift {
        Some(Lifting::TwoD(l)) => l.kernels.val(),
        _ => panic!("a 2D lifting stage"),
    }
}

fn with_kernels(net: &SpectralReduNet, k: Tensor<4>) -> SpectralReduNet {
    let mut moved = net.clone();
    moved.front.lift = Some(Lifting::TwoD(Lift2d {
        kernels: Param::from_tensor(k),
    }));
    moved
}

#[test]
fn forward_pass_matches_the_fused_network() {
    let device = Device::default().autodiff();
    let (net, x) = tiny(&device);
    let a = values(net.features(x.clone()));
    let b = values(net.features_eval(&x, &Device::default()).unwrap());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "tensor and fused forward differ by {diff}");
    assert_eq!(a.len(), 9 * net.feature_dim());
}

/// `L = Σ features ⊙ r` for a fixed `r`.
fn loss(net: &SpectralReduNet, x: &Tensor<2>, r: &Tensor<2>) -> Tensor<1> {
    (net.features(x.clone()) * r.clone()).sum()
}

#[test]
fn gradients_reach_lifting_and_layers_and_match_finite_differences() {
    let device = Device::default().autodiff();
    let (net, x) = tiny(&device);
    let r = gaussian(9, net.feature_dim(), 4, &device);
    let grads = loss(&net, &x, &r).backward();
    let g_lift = values(kernels(&net).grad(&grads).expect("lift gradient"));
    let g_re = values(
        net.net.layers[0]
            .re
            .val()
            .grad(&grads)
            .expect("layer gradient"),
    );
    let g_im_last = values(
        net.net.layers[1]
            .im
            .val()
            .grad(&grads)
            .expect("layer gradient"),
    );
    for (name, g) in [("lift", &g_lift), ("re[0]", &g_re), ("im[1]", &g_im_last)] {
        let top = g.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(top > 1e-4, "{name}: no gradient ({top})");
    }

    // Lifting kernels (entries ~0.3). The loss is only piecewise smooth in
    // them (ReLU), and a difference across a kink misses by up to 3% of
    // ‖g‖. The ReLU inputs are linear in the kernels, so each direction's
    // distance to the nearest kink is known: the step is half of it (at most
    // 1e-3), and the seeded data must leave room for a step of at least 5e-5.
    // Of 30 data seeds, 28 do, and on their 112 directions the largest error
    // was 3.5e-4·‖g‖.
    let k0 = kernels(&net);
    let dims = k0.dims();
    let (m, (height, width, in_channels)) = (x.dims()[0], SHAPE);
    let images = x.clone().reshape([m, in_channels, height, width]);
    let pre = values(circular_conv2d(images.clone(), k0.clone()));
    let step = |v: &[f32]| {
        let dv = Tensor::<4>::from_data(TensorData::new(v.to_vec(), dims), &device);
        let rate = values(circular_conv2d(images.clone(), dv));
        let kink = pre
            .iter()
            .zip(&rate)
            .map(|(p, r)| (p / r).abs())
            .fold(f32::INFINITY, f32::min);
        let h = (kink / 2.0).min(1e-3);
        if h < 5e-5 {
            return Err(format!("a ReLU input is {kink:e} from its kink"));
        }
        Ok(h)
    };
    let loss_at = |k: &[f32]| {
        let moved = with_kernels(
            &net,
            Tensor::from_data(TensorData::new(k.to_vec(), dims), &device),
        );
        values(loss(&moved, &x, &r))[0] as f64
    };
    let k0 = values(k0);
    check_directional(loss_at, &k0, &g_lift, step, 2e-3, 3, 21)
        .unwrap_or_else(|e| panic!("lift: {e}"));
    let flipped: Vec<f32> = g_lift.iter().map(|v| -v).collect();
    let rejected = check_directional(loss_at, &k0, &flipped, step, 2e-3, 3, 21).unwrap_err();
    assert!(rejected.contains("finite difference"), "{rejected}");

    // First layer's operators (real part, entries up to ~7): smooth, so a
    // larger step is accurate (below 1e-4·‖g‖ at 1e-2 on 30 seeds).
    let dims = net.net.layers[0].re.val().dims();
    let loss_at = |v: &[f32]| {
        let mut moved = net.clone();
        moved.net.layers[0].re = Param::from_tensor(Tensor::from_data(
            TensorData::new(v.to_vec(), dims),
            &device,
        ));
        values(loss(&moved, &x, &r))[0] as f64
    };
    let re0 = values(net.net.layers[0].re.val());
    check_directional(loss_at, &re0, &g_re, |_| Ok(1e-2), 1e-3, 3, 31)
        .unwrap_or_else(|e| panic!("re[0]: {e}"));
    let halved: Vec<f32> = g_re.iter().map(|v| 0.5 * v).collect();
    let rejected =
        check_directional(loss_at, &re0, &halved, |_| Ok(1e-2), 1e-3, 3, 31).unwrap_err();
    assert!(rejected.contains("finite difference"), "{rejected}");
}

#[test]
fn random_start_has_the_same_shape_and_rejects_bad_input() {
    let device = Device::default();
    let (built, x) = tiny(&device);
    let labels: Vec<usize> = (0..9).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, &device).unwrap();
    let config = *built.net.layers[0].config();
    let net = SpectralReduNet::random(front(&device), &pi, 2, &config, 7, &device).unwrap();
    assert_eq!(
        net.net.layers[0].re.val().dims(),
        built.net.layers[0].re.val().dims()
    );
    let f = values(net.features(x));
    assert!(f.iter().all(|v| v.is_finite()));
    let wrong = Tensor::<2>::zeros([3, 21], &device);
    assert!(net.features_eval(&wrong, &device).is_err());
}

/// The trainer stores the kernels at 1/√(fan-in) of the seeded N(0, 1)
/// draws of `redunet run` (`FrontEnd::with_lift_scale`); that is harmless only because ReLU and the normalisation
/// after the lift are positively homogeneous, which this checks.
#[test]
fn lifting_kernel_scale_does_not_change_features() {
    let device = Device::default();
    let (net, x) = tiny(&device);
    let scaled = with_kernels(&net, kernels(&net).mul_scalar(7.0));
    let a = values(net.features_eval(&x, &device).unwrap());
    let b = values(scaled.features_eval(&x, &device).unwrap());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "features moved by {diff} under kernel scaling");
    // And the stored kernels are the seeded draws divided by k·√C_in = 3.
    let seeded = redunet_vision::lift::normals(2 * 9, 1);
    let stored = values(kernels(&net));
    for (s, k) in seeded.iter().zip(&stored) {
        assert!((s / 3.0 - k).abs() < 1e-6, "{s} / 3 vs {k}");
    }
}

/// A 1D network (polar transform, 1D lifting) is the same module: its
/// differentiable forward pass equals the fused transform, and gradients
/// reach the 1D kernels and the layers.
#[test]
fn polar_networks_train_through_their_1d_lifting() {
    let device = Device::default().autodiff();
    let x = gaussian(9, 64, 5, &device).abs();
    let labels: Vec<usize> = (0..9).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let front = FrontEnd::new(&FrontEndConfig::polar(8, 8, 3, 8).lifted(2, 3, 0), &device).unwrap();
    let (net, _) = SpectralReduNet::construct(&x, front, &pi, 2, &config, |_| {}).unwrap();
    assert_eq!(net.feature_dim(), 2 * 8);
    let a = values(net.forward(x.clone()));
    let b = values(net.features_eval(&x, &Device::default()).unwrap());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "tensor and fused forward differ by {diff}");
    let r = gaussian(9, net.feature_dim(), 6, &device);
    let grads = loss(&net, &x, &r).backward();
    let Some(Lifting::OneD(lift)) = &net.front.lift else {
        panic!("a 1D lifting stage")
    };
    for g in [
        values(
            lift.kernels
                .val()
                .grad(&grads)
                .expect("kernel gradient")
                .reshape([-1]),
        ),
        values(
            net.net.layers[1]
                .re
                .val()
                .grad(&grads)
                .expect("layer gradient")
                .reshape([-1]),
        ),
    ] {
        assert!(g.iter().any(|v| v.abs() > 1e-5), "no gradient");
    }
}

/// Construction on an autodiff device: every layer after the first is
/// built from the previous layer's output, which the device tracks; the
/// operators must come out as fresh parameters (this once panicked in
/// Burn's `require_grad`), with the plain device's rates.
#[test]
fn networks_construct_on_autodiff_devices() {
    use burn::tensor::{Distribution, Tensor};
    use redunet_core::layer::vector::normalize_rows;
    use redunet_core::{Memberships, VectorLayerConfig};
    use redunet_vision::spectral::{Dft, SpectralNet};
    let plain = Device::default();
    let (m, c, t) = (12, 2, 9);
    let z = normalize_rows(Tensor::<2>::random(
        [m, c * t],
        Distribution::Normal(0.0, 1.0),
        &plain,
    ))
    .reshape([m, c, t]);
    let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
    let run = |device: &Device| {
        let z = Tensor::<3>::from_data(z.clone().into_data(), device);
        let pi = Memberships::from_labels(&labels, 3, device).unwrap();
        let dft = Dft::new(t, device).unwrap();
        SpectralNet::construct_with(&z, &dft, &pi, 3, &VectorLayerConfig::default(), |_| {})
            .unwrap()
            .records
    };
    let (a, b) = (run(&plain), run(&plain.autodiff()));
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert!((x.delta_r - y.delta_r).abs() < 1e-4, "{x:?} vs {y:?}");
    }
}
