//! The trainable spectral ReduNet: its forward pass equals the constructed
//! network's, and its gradients reach every layer and the lifting kernels
//! and agree with central finite differences.

use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor};
use redunet_core::{MembershipMode, Memberships, VectorLayerConfig};
use redunet_train::spectral::{LiftInit, SpectralReduNet};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

const SHAPE: (usize, usize, usize) = (4, 5, 1);

fn tiny(device: &Device) -> (SpectralReduNet, Tensor<2>) {
    let m = 9;
    let x = Tensor::<2>::random([m, 20], Distribution::Normal(0.0, 1.0), device);
    let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        lambda: 20.0,
        ..Default::default()
    };
    let lift = LiftInit {
        out_channels: 2,
        kernel_size: 3,
        seed: 1,
    };
    let (net, records) =
        SpectralReduNet::construct(&x, SHAPE, Some(lift), &pi, 2, &config, |_| {}).unwrap();
    assert_eq!(records.len(), 3);
    (net, x)
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

fn largest(g: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..g.len()).collect();
    idx.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
    idx.truncate(n);
    idx
}

#[test]
fn gradients_reach_lifting_and_layers_and_match_finite_differences() {
    let device = Device::default().autodiff();
    let (net, x) = tiny(&device);
    let r = Tensor::<2>::random(
        [9, net.feature_dim()],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let grads = loss(&net, &x, &r).backward();
    let lift = net.lift.as_ref().unwrap();
    let g_lift = values(lift.val().grad(&grads).expect("lift gradient"));
    let g_re = values(net.layers[0].re.val().grad(&grads).expect("layer gradient"));
    let g_im_last = values(net.layers[1].im.val().grad(&grads).expect("layer gradient"));
    for (name, g) in [("lift", &g_lift), ("re[0]", &g_re), ("im[1]", &g_im_last)] {
        let top = g.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(top > 1e-4, "{name}: no gradient ({top})");
    }

    let h = 1e-2f32;
    // Lifting kernels.
    let k0 = values(lift.val());
    let dims = lift.val().dims();
    for i in largest(&g_lift, 3) {
        let eval = |delta: f32| {
            let mut k = k0.clone();
            k[i] += delta;
            let mut moved = net.clone();
            moved.lift = Some(Param::from_tensor(Tensor::from_data(
                burn::tensor::TensorData::new(k, dims),
                &device,
            )));
            values(loss(&moved, &x, &r))[0]
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h);
        let rel = (fd - g_lift[i]).abs() / g_lift[i].abs();
        assert!(rel < 0.05, "lift[{i}]: autodiff {} vs fd {fd}", g_lift[i]);
    }
    // First layer's operators (real part).
    let re0 = values(net.layers[0].re.val());
    let dims = net.layers[0].re.val().dims();
    let scale = re0.iter().fold(0f32, |a, v| a.max(v.abs()));
    let h = 1e-2 * scale;
    for i in largest(&g_re, 3) {
        let eval = |delta: f32| {
            let mut v = re0.clone();
            v[i] += delta;
            let mut moved = net.clone();
            moved.layers[0].re = Param::from_tensor(Tensor::from_data(
                burn::tensor::TensorData::new(v, dims),
                &device,
            ));
            values(loss(&moved, &x, &r))[0]
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h);
        let rel = (fd - g_re[i]).abs() / g_re[i].abs();
        assert!(rel < 0.05, "re[0][{i}]: autodiff {} vs fd {fd}", g_re[i]);
    }
}

#[test]
fn random_start_has_the_same_shape_and_rejects_bad_input() {
    let device = Device::default();
    let (built, x) = tiny(&device);
    let labels: Vec<usize> = (0..9).map(|i| i % 3).collect();
    let pi = Memberships::from_labels(&labels, 3, &device).unwrap();
    let lift = LiftInit {
        out_channels: 2,
        kernel_size: 3,
        seed: 1,
    };
    let net = SpectralReduNet::random(SHAPE, Some(lift), &pi, 2, &built.shape.config, 7, &device)
        .unwrap();
    assert_eq!(
        net.layers[0].re.val().dims(),
        built.layers[0].re.val().dims()
    );
    let f = values(net.features(x));
    assert!(f.iter().all(|v| v.is_finite()));
    let wrong = Tensor::<2>::zeros([3, 21], &device);
    assert!(net.features_eval(&wrong, &device).is_err());
}

/// The kernels are stored at 1/√(fan-in) of the seeded N(0, 1) draws of
/// `redunet run`; that is harmless only because ReLU and the normalisation
/// after the lift are positively homogeneous, which this checks.
#[test]
fn lifting_kernel_scale_does_not_change_features() {
    let device = Device::default();
    let (net, x) = tiny(&device);
    let kernels = net.lift.as_ref().unwrap().val();
    let mut scaled = net.clone();
    scaled.lift = Some(Param::from_tensor(kernels.mul_scalar(7.0)));
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
    let stored = values(net.lift.as_ref().unwrap().val());
    for (s, k) in seeded.iter().zip(&stored) {
        assert!((s / 3.0 - k).abs() < 1e-6, "{s} / 3 vs {k}");
    }
}
