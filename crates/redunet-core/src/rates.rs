//! The coding rates of MCR² and the gradient of their difference.
//!
//! ```text
//! R(Z)      = ½ logdet(I + α ZᵀZ),                      α   = d / (m ε²)
//! R_c(Z, Π) = Σ_j γ_j/2 · logdet(I + α_j Zᵀ diag(π_j) Z), α_j = d / (m_j ε²)
//! ΔR        = R − R_c,                                    γ_j = m_j / m
//! ```
//!
//! A class with `m_j = 0` has γ_j = 0 and is left out entirely.

use crate::linalg::spd_logdet;
use crate::{Error, Memberships, Result};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// R, R_c and ΔR of one feature matrix under one set of memberships (nats).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// R: the coding rate of all features.
    pub r: f64,
    /// R_c: the γ-weighted coding rate of the classes.
    pub r_c: f64,
    /// ΔR = R − R_c.
    pub delta_r: f64,
}

impl Rates {
    /// The rates with ΔR = `r` − `r_c`.
    pub fn new(r: f64, r_c: f64) -> Self {
        Self {
            r,
            r_c,
            delta_r: r - r_c,
        }
    }
}

pub(crate) fn check_features(z: &Tensor<2>, eps_sq: f64) -> Result<()> {
    check_shape_and_eps(z, eps_sq)?;
    crate::host::check_finite(z, "features")
}

/// The checks of [`check_features`] that read no values.
pub(crate) fn check_shape_and_eps(z: &Tensor<2>, eps_sq: f64) -> Result<()> {
    let [m, d] = z.dims();
    if m == 0 || d == 0 {
        return Err(Error::Empty(format!("features of shape [{m}, {d}]")));
    }
    if !(eps_sq.is_finite() && eps_sq > 0.0) {
        return Err(Error::Parameter(format!(
            "eps_sq = {eps_sq} must be finite and > 0"
        )));
    }
    Ok(())
}

/// The rows of `z` that carry class `j`, scaled by `sqrt(π_ij)`, so that
/// `XᵀX = Zᵀ diag(π_j) Z`. Hard labels gather just the class's rows.
pub fn weighted_rows(z: &Tensor<2>, pi: &Memberships, j: usize) -> Tensor<2> {
    match pi.members(j) {
        // Data grouped by class (as our splits are) needs no gather.
        Some(rows) if rows.last().is_some_and(|&l| l + 1 - rows[0] == rows.len()) => {
            let d = z.dims()[1];
            z.clone().slice([rows[0]..rows[0] + rows.len(), 0..d])
        }
        Some(rows) => z
            .clone()
            .select(0, crate::host::indices(&rows, &z.device())),
        None => {
            let w = pi
                .pi()
                .clone()
                .slice([0..pi.num_samples(), j..j + 1])
                .sqrt();
            z.clone() * w
        }
    }
}

/// The batch `[b, n, n]` of `I + a XᵀX` for matrices `X` of one shape,
/// formed on the smaller Gram side (`n = min(rows, cols)`: `XXᵀ` and `XᵀX`
/// have the same non-unit spectrum, so the log-determinant is the same).
/// The one place the coding rates' matrices are formed (the loss
/// differentiates through it).
pub fn identity_plus_grams(xs: Vec<Tensor<2>>, scales: &[f64]) -> Tensor<3> {
    let [rows, cols] = xs[0].dims();
    let device = xs[0].device();
    let n = rows.min(cols);
    let grams: Vec<Tensor<3>> = xs
        .into_iter()
        .zip(scales)
        .map(|(x, &a)| {
            let g = if rows < cols {
                x.clone().matmul(x.transpose())
            } else {
                x.clone().transpose().matmul(x)
            };
            (Tensor::<2>::eye(n, &device) + g.mul_scalar(a)).unsqueeze_dim(0)
        })
        .collect();
    Tensor::cat(grams, 0)
}

/// `logdet(I + a XᵀX)` for a batch of matrices of one shape.
fn logdets_same_shape(xs: Vec<Tensor<2>>, scales: &[f64]) -> Result<Vec<f64>> {
    if crate::cpu::on_host(&xs[0].device()) {
        return host_logdets(xs, scales);
    }
    spd_logdet(identity_plus_grams(xs, scales))
}

/// [`logdets_same_shape`] on the host: each `I + a XᵀX` on the smaller
/// Gram side as a symmetric rank-k product, then one batched
/// factorisation.
fn host_logdets(xs: Vec<Tensor<2>>, scales: &[f64]) -> Result<Vec<f64>> {
    use crate::cpu::gemm::{View, gram};
    let [rows, cols] = xs[0].dims();
    let n = rows.min(cols);
    let mut batch = vec![0f32; xs.len() * n * n];
    for ((x, &a), g) in xs.into_iter().zip(scales).zip(batch.chunks_mut(n * n)) {
        let values = crate::host::to_vec(x)?;
        let x = View::new(&values, rows, cols);
        gram(g, if rows < cols { x.t() } else { x });
        let a = a as f32;
        g.iter_mut().for_each(|v| *v *= a);
        (0..n).for_each(|i| g[i * (n + 1)] += 1.0);
    }
    crate::cpu::spd::logdets(&batch, batch.len() / (n * n), n)
}

/// R(Z) = ½ logdet(I + d/(m ε²) ZᵀZ).
pub fn coding_rate(z: &Tensor<2>, eps_sq: f64) -> Result<f64> {
    check_features(z, eps_sq)?;
    let [m, d] = z.dims();
    let alpha = d as f64 / (m as f64 * eps_sq);
    Ok(0.5 * logdets_same_shape(vec![z.clone()], &[alpha])?[0])
}

/// R(X_i) = ½ logdet(I + p/(n ε²) X_iᵀX_i) of each matrix of a batch
/// `x: [b, n, p]` (e.g. the tokens of each image projected on one
/// subspace), with the Grams batched on the device of `x`, on the smaller
/// side, and one batched factorisation.
pub fn coding_rates(x: Tensor<3>, eps_sq: f64) -> Result<Vec<f64>> {
    let [b, n, p] = x.dims();
    if b == 0 || n == 0 || p == 0 {
        return Err(Error::Empty(format!(
            "coding rates of a batch {:?}",
            [b, n, p]
        )));
    }
    if !(eps_sq.is_finite() && eps_sq > 0.0) {
        return Err(Error::Parameter(format!(
            "eps_sq must be > 0, got {eps_sq}"
        )));
    }
    let alpha = p as f64 / (n as f64 * eps_sq);
    let side = n.min(p);
    let grams = if n < p {
        x.clone().matmul(x.swap_dims(1, 2))
    } else {
        x.clone().swap_dims(1, 2).matmul(x)
    };
    let eye = Tensor::<2>::eye(side, &grams.device()).unsqueeze_dim::<3>(0);
    let logdets = spd_logdet(grams.mul_scalar(alpha) + eye)?;
    Ok(logdets.into_iter().map(|l| 0.5 * l).collect())
}

/// The classes of `pi` with the same number of weighted rows, which can
/// share one batched factorisation: their weighted rows (see
/// [`weighted_rows`]), α_j = d/(m_j ε²) and γ_j = m_j/m.
pub struct ClassGroup {
    /// Each class's weighted rows.
    pub rows: Vec<Tensor<2>>,
    /// α_j of each class.
    pub alphas: Vec<f64>,
    /// γ_j of each class.
    pub gammas: Vec<f64>,
}

/// The present classes of `pi` in [`ClassGroup`]s, by number of rows.
pub fn class_groups(z: &Tensor<2>, pi: &Memberships, eps_sq: f64) -> Vec<ClassGroup> {
    let d = z.dims()[1];
    let scales = pi.scales(d, eps_sq);
    let mut groups: std::collections::BTreeMap<usize, ClassGroup> = Default::default();
    for (slot, &j) in scales.classes.iter().enumerate() {
        let x = weighted_rows(z, pi, j);
        let g = groups.entry(x.dims()[0]).or_insert_with(|| ClassGroup {
            rows: Vec::new(),
            alphas: Vec::new(),
            gammas: Vec::new(),
        });
        g.rows.push(x);
        g.alphas.push(scales.alphas[slot]);
        g.gammas.push(scales.gammas[slot]);
    }
    groups.into_values().collect()
}

/// R_c(Z, Π) = Σ_j γ_j/2 · logdet(I + α_j Zᵀ diag(π_j) Z).
pub fn compressed_coding_rate(z: &Tensor<2>, pi: &Memberships, eps_sq: f64) -> Result<f64> {
    check_features(z, eps_sq)?;
    let m = z.dims()[0];
    pi.check_samples(m)?;
    let mut r_c = 0.0;
    for ClassGroup {
        rows,
        alphas,
        gammas,
    } in class_groups(z, pi, eps_sq)
    {
        let lds = logdets_same_shape(rows, &alphas)?;
        r_c += lds
            .iter()
            .zip(&gammas)
            .map(|(l, g)| 0.5 * g * l)
            .sum::<f64>();
    }
    Ok(r_c)
}

/// R, R_c and ΔR of `z` under memberships `pi`.
pub fn rate_reduction(z: &Tensor<2>, pi: &Memberships, eps_sq: f64) -> Result<Rates> {
    Ok(Rates::new(
        coding_rate(z, eps_sq)?,
        compressed_coding_rate(z, pi, eps_sq)?,
    ))
}

/// The gradient of ΔR with respect to `z`, in closed form:
///
/// ```text
/// ∂ΔR/∂Z = Z E − Σ_j γ_j diag(π_j) Z C_j,
/// E = α (I + α ZᵀZ)⁻¹,  C_j = α_j (I + α_j Zᵀ diag(π_j) Z)⁻¹.
/// ```
pub fn rate_reduction_gradient(z: &Tensor<2>, pi: &Memberships, eps_sq: f64) -> Result<Tensor<2>> {
    let (layer, _) = crate::VectorLayer::construct(
        z,
        pi,
        &crate::VectorLayerConfig {
            eps_sq,
            ..Default::default()
        },
    )?;
    Ok(layer.expansion(z) - layer.compression(z, &layer.restrict(pi)?, pi.labels()))
}
