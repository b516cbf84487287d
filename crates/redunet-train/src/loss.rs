//! MCR² as a differentiable loss: `−ΔR(Z, Π)` of a feature batch.
//!
//! The log-determinants are evaluated exactly, on detached tensors, by the
//! batched Cholesky routine of `redunet-core` (which works in f64 on small
//! blocks and has no autodiff rule). The gradient comes from a surrogate
//! with the same first derivative: with `M = (I + aG)⁻¹` held constant,
//! `½ tr(M (I + aG))` has derivative `a X M` in `X` for `G = XᵀX` (and
//! `a M X` for `G = XXᵀ`), which is exactly the derivative of
//! `½ logdet(I + aG)`. The loss is `value + (surrogate − detached surrogate)`:
//! its value is ΔR's and its gradient the closed form `Z E − Σ_j γ_j Π_j Z C_j`.
//! Each Gram matrix is formed on the smaller side, `min(m, d)`.

use burn::tensor::{Tensor, TensorData};
use redunet_core::linalg::spd_inverse_logdet;
use redunet_core::rates::{ClassGroup, class_groups};
use redunet_core::{Error, Memberships, Result};

/// `½ logdet(I + a XᵀX)` of each `X` as a loss term: exact value, gradient
/// by the surrogate. All `X` must have the same shape.
fn half_logdets(xs: Vec<Tensor<2>>, scales: &[f64]) -> Result<Vec<Tensor<1>>> {
    let [m, d] = xs[0].dims();
    let device = xs[0].device();
    let gram = |x: Tensor<2>| {
        if m < d {
            x.clone().matmul(x.transpose())
        } else {
            x.clone().transpose().matmul(x)
        }
    };
    let n = m.min(d);
    let eye = Tensor::<2>::eye(n, &device);
    let mats: Vec<Tensor<2>> = xs
        .into_iter()
        .zip(scales)
        .map(|(x, &a)| eye.clone() + gram(x).mul_scalar(a))
        .collect();
    let batch = Tensor::stack::<3>(mats.iter().map(|t| t.clone().detach()).collect(), 0);
    let (inv, logdets) = spd_inverse_logdet(batch)?;
    let b = mats.len();
    Ok(mats
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let m_inv = inv
                .clone()
                .slice([i..i + 1, 0..n, 0..n])
                .reshape([n, n])
                .detach();
            // tr(M A) as Σ M ⊙ A (both symmetric).
            let surrogate = (m_inv * a).sum().mul_scalar(0.5);
            let value = Tensor::<1>::from_data(
                TensorData::new(vec![(0.5 * logdets[i]) as f32], [1]),
                &device,
            );
            value + surrogate.clone() - surrogate.detach()
        })
        .take(b)
        .collect())
}

/// The MCR² loss `−ΔR = R_c − R` of features `z: [m, d]` (rows are
/// samples; normalise them first as the papers do) under memberships `pi`
/// (hard labels or soft), as a one-element tensor on `z`'s device. Its
/// value equals `redunet_core::rate_reduction(z, pi, eps_sq)`'s −ΔR.
pub fn mcr2_loss(z: &Tensor<2>, pi: &Memberships, eps_sq: f64) -> Result<Tensor<1>> {
    let [m, d] = z.dims();
    if m == 0 || d == 0 {
        return Err(Error::Empty(format!("features of shape [{m}, {d}]")));
    }
    if !(eps_sq.is_finite() && eps_sq > 0.0) {
        return Err(Error::Parameter(format!(
            "eps_sq must be positive, got {eps_sq}"
        )));
    }
    if pi.num_samples() != m {
        return Err(Error::LabelCount {
            expected: m,
            got: pi.num_samples(),
        });
    }
    redunet_core::host::check_finite(&z.clone().detach(), "features")?;
    let alpha = d as f64 / (m as f64 * eps_sq);
    let r = half_logdets(vec![z.clone()], &[alpha])?.remove(0);
    let mut loss = r.neg();
    for ClassGroup {
        rows,
        alphas,
        gammas,
    } in class_groups(z, pi, eps_sq)
    {
        for (term, g) in half_logdets(rows, &alphas)?.into_iter().zip(gammas) {
            loss = loss + term.mul_scalar(g);
        }
    }
    Ok(loss)
}
