//! LISTA starts as ISTA: K layers initialised from the dictionary compute K
//! ISTA steps; and ISTA decreases the LASSO objective.

use burn::tensor::{Device, Distribution, Tensor};
use redunet_train::lista::{Lista, ista, lipschitz};

fn lasso(a: &Tensor<2>, y: &Tensor<2>, x: &Tensor<2>, lambda: f64) -> f64 {
    let r = (y.clone() - x.clone().matmul(a.clone().transpose()))
        .powi_scalar(2)
        .sum();
    let l1 = x.clone().abs().sum().mul_scalar(lambda as f32);
    (r.mul_scalar(0.5) + l1).into_scalar::<f32>() as f64
}

#[test]
fn lista_initialised_from_ista_is_ista_and_ista_descends() {
    let device = Device::default();
    device.seed(3);
    let a = Tensor::<2>::random([12, 20], Distribution::Normal(0.0, 0.3), &device);
    let y = Tensor::<2>::random([5, 12], Distribution::Normal(0.0, 1.0), &device);
    let lambda = 0.1;
    // The power iteration finds the top eigenvalue of AᵀA.
    let l = lipschitz(&a);
    let gram = a.clone().transpose().matmul(a.clone());
    let v = Tensor::<2>::random([20, 1], Distribution::Normal(0.0, 1.0), &device);
    let rayleigh = (v
        .clone()
        .transpose()
        .matmul(gram.matmul(v.clone()))
        .into_scalar::<f32>()
        / v.powi_scalar(2).sum().into_scalar::<f32>()) as f64;
    assert!(l > 0.0 && rayleigh <= l * (1.0 + 1e-4), "{rayleigh} > {l}");
    for k in [1, 2, 7] {
        let net = Lista::from_ista(&a, lambda, k, &device);
        let a_steps = redunet_core::host::to_vec(net.forward(y.clone())).unwrap();
        let b_steps = redunet_core::host::to_vec(ista(&a, &y, lambda, k)).unwrap();
        let worst = a_steps
            .iter()
            .zip(&b_steps)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "K = {k}: {worst}");
    }
    let objective: Vec<f64> = [1, 5, 25, 125]
        .iter()
        .map(|&t| lasso(&a, &y, &ista(&a, &y, lambda, t), lambda))
        .collect();
    assert!(
        objective.windows(2).all(|w| w[1] <= w[0] + 1e-5),
        "{objective:?}"
    );
}
