//! The MCR² loss: its value is −ΔR, its autodiff gradient is the closed
//! form, and both agree with finite differences — with a checker strict
//! enough to reject a gradient of the wrong sign.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{check_directional, gaussian, values};
use redunet_core::Memberships;
use redunet_core::layer::vector::normalize_rows;
use redunet_core::rates::{rate_reduction, rate_reduction_gradient};
use redunet_train::loss::mcr2_loss;

const EPS_SQ: f64 = 0.5;

fn features(m: usize, d: usize, device: &Device) -> Tensor<2> {
    normalize_rows(gaussian(m, d, (m * 100 + d) as u64, device))
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

/// Central differences of the loss along the gradient's direction and three
/// random unit directions, with steps of 0.03 (the rows of Z have unit
/// norm): within 1e-3·‖g‖. On 60 data seeds of this shape, hard and soft,
/// the largest error was 1.8e-4·‖g‖; along a random direction the
/// derivative itself is ~‖g‖/12.
fn check_gradient(z: &Tensor<2>, pi: &Memberships, grad: &[f32]) -> Result<(), String> {
    let device = z.device();
    let dims = z.dims();
    let loss_at = |x: &[f32]| {
        let z = Tensor::<2>::from_data(TensorData::new(x.to_vec(), dims), &device);
        loss_value(&z, pi)
    };
    check_directional(loss_at, &values(z.clone()), grad, |_| Ok(3e-2), 1e-3, 3, 17)
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
