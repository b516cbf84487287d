//! The MCR² loss: its value is −ΔR, its autodiff gradient is the closed
//! form, and both agree with finite differences — with a checker strict
//! enough to reject a gradient of the wrong sign.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use redunet_core::Memberships;
use redunet_core::layer::vector::normalize_rows;
use redunet_core::rates::{rate_reduction, rate_reduction_gradient};
use redunet_train::loss::mcr2_loss;

const EPS_SQ: f64 = 0.5;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn features(m: usize, d: usize, device: &Device) -> Tensor<2> {
    normalize_rows(Tensor::<2>::random(
        [m, d],
        Distribution::Normal(0.0, 1.0),
        device,
    ))
}

fn memberships(m: usize, soft: bool, device: &Device) -> Memberships {
    let labels: Vec<usize> = (0..m).map(|i| (i * 7) % 3).collect();
    if !soft {
        return Memberships::from_labels(&labels, 3, device).unwrap();
    }
    let mut p = vec![0f32; m * 3];
    for (i, &l) in labels.iter().enumerate() {
        for j in 0..3 {
            p[i * 3 + j] = if j == l { 0.8 } else { 0.1 };
        }
    }
    Memberships::soft(Tensor::from_data(TensorData::new(p, [m, 3]), device)).unwrap()
}

fn loss_value(z: &Tensor<2>, pi: &Memberships) -> f64 {
    values(mcr2_loss(z, pi, EPS_SQ).unwrap())[0] as f64
}

/// Checks `grad` against central differences of the loss along a few random
/// directions: |fd − ⟨grad, v⟩| ≤ 2% of max(|fd|, 1e-3).
fn check_gradient(z: &Tensor<2>, pi: &Memberships, grad: &[f32]) -> Result<(), String> {
    let device = z.device();
    let h = 1e-2f32;
    for trial in 0..3 {
        let v = Tensor::<2>::random(z.dims(), Distribution::Normal(0.0, 1.0), &device);
        let along: f64 = values(v.clone())
            .iter()
            .zip(grad)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        let plus = loss_value(&(z.clone() + v.clone().mul_scalar(h)), pi);
        let minus = loss_value(&(z.clone() - v.mul_scalar(h)), pi);
        let fd = (plus - minus) / (2.0 * h as f64);
        if (fd - along).abs() > 0.02 * fd.abs().max(1e-3) {
            return Err(format!(
                "direction {trial}: finite difference {fd}, gradient {along}"
            ));
        }
    }
    Ok(())
}

fn autodiff_gradient(z: &Tensor<2>, pi: &Memberships) -> Vec<f32> {
    let z = z.clone().require_grad();
    let grads = mcr2_loss(&z, pi, EPS_SQ).unwrap().backward();
    values(z.grad(&grads).unwrap())
}

#[test]
fn loss_value_is_minus_delta_r() {
    let device = Device::default().autodiff();
    for (m, d) in [(30, 8), (6, 10)] {
        for soft in [false, true] {
            let z = features(m, d, &device);
            let pi = memberships(m, soft, &device);
            let want = rate_reduction(&z, &pi, EPS_SQ).unwrap().delta_r;
            let got = -loss_value(&z, &pi);
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "m {m} d {d} soft {soft}: loss {got} vs ΔR {want}"
            );
        }
    }
}

#[test]
fn autodiff_gradient_is_the_closed_form() {
    let device = Device::default().autodiff();
    // Both sides of the Gram trick: m > d and m < d.
    for (m, d) in [(30, 8), (6, 10)] {
        for soft in [false, true] {
            let z = features(m, d, &device);
            let pi = memberships(m, soft, &device);
            let g = autodiff_gradient(&z, &pi);
            // The closed form is ∂ΔR/∂Z; the loss is −ΔR.
            let closed = values(rate_reduction_gradient(&z, &pi, EPS_SQ).unwrap().neg());
            let diff: f64 = g
                .iter()
                .zip(&closed)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let norm: f64 = closed
                .iter()
                .map(|b| (*b as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                diff <= 1e-3 * norm,
                "m {m} d {d} soft {soft}: relative error {}",
                diff / norm
            );
        }
    }
}

#[test]
fn gradient_matches_finite_differences_and_the_check_rejects_a_wrong_one() {
    let device = Device::default().autodiff();
    for soft in [false, true] {
        let z = features(24, 6, &device);
        let pi = memberships(24, soft, &device);
        let g = autodiff_gradient(&z, &pi);
        check_gradient(&z, &pi, &g).unwrap();
        let flipped: Vec<f32> = g.iter().map(|v| -v).collect();
        assert!(
            check_gradient(&z, &pi, &flipped).is_err(),
            "the checker accepted a sign-flipped gradient"
        );
        let halved: Vec<f32> = g.iter().map(|v| 0.5 * v).collect();
        assert!(check_gradient(&z, &pi, &halved).is_err());
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let device = Device::default().autodiff();
    let z = features(6, 4, &device);
    let pi = memberships(5, false, &device);
    assert!(mcr2_loss(&z, &pi, EPS_SQ).is_err());
    let pi = memberships(6, false, &device);
    assert!(mcr2_loss(&z, &pi, 0.0).is_err());
    let nan = z.clone().mask_fill(z.clone().greater_elem(0.3), f32::NAN);
    assert!(mcr2_loss(&nan, &pi, EPS_SQ).is_err());
}
