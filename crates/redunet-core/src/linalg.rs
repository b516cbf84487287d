//! Batched inverse and log-determinant of symmetric positive-definite
//! matrices, on any device.
//!
//! Burn offers no Cholesky, and `det` overflows to ∞ in f32 on Gram matrices
//! of realistic size, so we never form a determinant. Instead a batch
//! `A: [b, n, n]` is split into blocks and eliminated by Schur complements,
//!
//! ```text
//! A = [[P, Bᵀ], [B, D]] = L Lᵀ,   L₂₁ = B L₁₁⁻ᵀ,   S = D − L₂₁ L₂₁ᵀ,
//! logdet A = logdet P + logdet S,
//! L⁻¹ = [[L₁₁⁻¹, 0], [−L₂₂⁻¹ L₂₁ L₁₁⁻¹, L₂₂⁻¹]],   A⁻¹ = L⁻ᵀ L⁻¹ (blockwise),
//! ```
//!
//! recursively (block Cholesky, stable for SPD input), spending its flops in
//! batched matrix products on the device. Blocks of
//! at most [`BASE`] rows are factored on the host in f64 (Cholesky), the way
//! hybrid GPU libraries factor their panels; the logdet is accumulated in f64.

use crate::cpu::cholesky;
use crate::host::{tensor, to_vec};
use crate::{Error, Result};
use burn::tensor::{Tensor, s};

/// Largest block factored directly on the host.
pub const BASE: usize = 64;

/// Inverse and log-determinant of each matrix of a batch of symmetric
/// positive-definite matrices `a: [b, n, n]`.
///
/// Returns the inverses `[b, n, n]` (symmetric) and the log-determinants
/// (natural log, f64). A matrix that is not numerically positive definite,
/// or holds NaN/Inf, is an error naming its index in the batch.
pub fn spd_inverse_logdet(a: Tensor<3>) -> Result<(Tensor<3>, Vec<f64>)> {
    let [_, n, n2] = a.dims();
    if n != n2 {
        return Err(Error::Shape(format!(
            "SPD batch must be square, got {:?}",
            a.dims()
        )));
    }
    if n == 0 {
        return Err(Error::Empty("0×0 matrices".into()));
    }
    crate::host::check_finite(&a, "SPD input matrix")?;
    recurse(a)
}

/// [`spd_inverse_logdet`] for matrices built here from checked features:
/// skips the NaN/Inf scan (a NaN would still surface as a failed pivot).
pub fn spd_inverse_logdet_trusted(a: Tensor<3>) -> Result<(Tensor<3>, Vec<f64>)> {
    recurse(a)
}

/// Log-determinants of a batch of SPD matrices `[b, n, n]`: those of
/// [`spd_inverse_logdet`], bit for bit; on a CPU device without forming
/// the inverses.
pub fn spd_logdet(a: Tensor<3>) -> Result<Vec<f64>> {
    let [b, n, n2] = a.dims();
    if !crate::cpu::on_host(&a.device()) || n != n2 || n == 0 {
        return spd_inverse_logdet(a).map(|(_, l)| l);
    }
    crate::host::check_finite(&a, "SPD input matrix")?;
    crate::cpu::spd::logdets(&to_vec(a)?, b, n)
}

fn recurse(a: Tensor<3>) -> Result<(Tensor<3>, Vec<f64>)> {
    let device = a.device();
    if crate::cpu::on_host(&device) {
        let [b, n, _] = a.dims();
        let (inverse, logdet) = crate::cpu::spd::inverse_logdet(&to_vec(a)?, b, n)?;
        return Ok((tensor(inverse, [b, n, n], &device), logdet));
    }
    let f = factor(a, false)?;
    Ok((f.inverse, f.logdet))
}

/// What one level of the recursion hands to its parent.
struct Factor {
    /// L⁻¹ (lower triangular), only when the parent asks for it.
    inverse_factor: Option<Tensor<3>>,
    inverse: Tensor<3>,
    logdet: Vec<f64>,
}

/// Recursive block Cholesky with A = L Lᵀ, L⁻¹ = [[P, 0], [Q, R]]:
///
/// ```text
/// L₂₁ = B Pᵀ,  S = D − L₂₁ L₂₁ᵀ = R⁻¹R⁻ᵀ,  Q = −R L₂₁ P,
/// A⁻¹ = L⁻ᵀ L⁻¹ = [[PᵀP + QᵀQ, QᵀR], [RᵀQ, RᵀR]],
/// ```
///
/// where PᵀP and RᵀR are the inverses of the two diagonal blocks, returned
/// by the recursion. The Schur complement comes from the triangular factor
/// rather than as D − B P⁻¹ Bᵀ: subtracting a product of well-scaled factors
/// keeps it positive definite in f32 far beyond where the inverse-based form
/// breaks down.
fn factor(a: Tensor<3>, need_factor: bool) -> Result<Factor> {
    let [b, n, _] = a.dims();
    if n <= BASE {
        return host_base(a, need_factor);
    }
    // Split on a multiple of 32 so the products keep friendly sizes.
    let h = (n / 2).div_ceil(32) * 32;
    let top = a.clone().slice(s![.., 0..h, 0..h]);
    let bl = a.clone().slice(s![.., h..n, 0..h]);
    let d = a.slice(s![.., h..n, h..n]);
    let p = factor(top, true)?;
    let p_li = p.inverse_factor.expect("requested");
    let l21 = bl.matmul(p_li.clone().swap_dims(1, 2));
    // Rounding may leave S a hair from symmetric; that is harmless, since
    // the recursion reads only its lower-left and diagonal blocks and the
    // host base case symmetrises what it factors.
    let schur = d - l21.clone().matmul(l21.clone().swap_dims(1, 2));
    let r = factor(schur, true)?;
    let r_li = r.inverse_factor.expect("requested");
    let q = r_li.clone().matmul(l21).matmul(p_li.clone()).neg();
    let top_left = p.inverse + q.clone().swap_dims(1, 2).matmul(q.clone());
    let bottom_left = r_li.clone().swap_dims(1, 2).matmul(q.clone());
    let inverse = Tensor::cat(
        vec![
            Tensor::cat(vec![top_left, bottom_left.clone().swap_dims(1, 2)], 2),
            Tensor::cat(vec![bottom_left, r.inverse], 2),
        ],
        1,
    );
    let inverse_factor = need_factor.then(|| {
        let zeros = Tensor::zeros([b, h, n - h], &q.device());
        Tensor::cat(
            vec![
                Tensor::cat(vec![p_li, zeros], 2),
                Tensor::cat(vec![q, r_li], 2),
            ],
            1,
        )
    });
    Ok(Factor {
        inverse_factor,
        inverse,
        logdet: p.logdet.iter().zip(&r.logdet).map(|(x, y)| x + y).collect(),
    })
}

/// Cholesky in f64 on the host for each matrix of a small batch: the
/// inverse, L⁻¹ when asked, and the logdet.
fn host_base(a: Tensor<3>, need_factor: bool) -> Result<Factor> {
    let device = a.device();
    let [b, n, _] = a.dims();
    let blocks = crate::cpu::spd::base_batch(&to_vec(a)?, b, n, need_factor)?;
    Ok(Factor {
        inverse_factor: blocks.factor.map(|li| tensor(li, [b, n, n], &device)),
        inverse: tensor(blocks.inverse, [b, n, n], &device),
        logdet: blocks.logdet,
    })
}

/// Inverse and logdet of one SPD matrix (row-major, f64) by Cholesky.
/// On failure returns the row and value of the first non-positive pivot.
pub fn spd_inverse_f64(a: &[f64], n: usize) -> std::result::Result<(Vec<f64>, f64), (usize, f64)> {
    cholesky::factor_one(a.to_vec(), n, false).map(|f| (f.inverse, f.logdet))
}

/// Log-determinant of one SPD matrix (row-major, f64) by Cholesky. On
/// failure returns the row and value of the first non-positive pivot.
pub fn spd_logdet_f64(a: &[f64], n: usize) -> std::result::Result<f64, (usize, f64)> {
    cholesky::cholesky_one(a.to_vec(), n).map(|(_, logdet)| logdet)
}

/// Lower Cholesky factor of an SPD matrix (row-major, f64, zeros above the
/// diagonal).
pub fn cholesky_f64(a: &[f64], n: usize) -> std::result::Result<Vec<f64>, (usize, f64)> {
    let (mut l, _) = cholesky::cholesky_one(a.to_vec(), n)?;
    for i in 0..n {
        l[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    Ok(l)
}
