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
//! L⁻¹ = [[L₁₁⁻¹, 0], [−L₂₂⁻¹ L₂₁ L₁₁⁻¹, L₂₂⁻¹]],   A⁻¹ = L⁻ᵀ L⁻¹,
//! ```
//!
//! recursively (block Cholesky, stable for SPD input), spending its flops in
//! batched matrix products on the device. Blocks of
//! at most [`BASE`] rows are factored on the host in f64 (Cholesky), the way
//! hybrid GPU libraries factor their panels; the logdet is accumulated in f64.

use crate::host::{tensor, to_vec};
use crate::{Error, Result};
use burn::tensor::{Tensor, s};
use rayon::prelude::*;

/// Largest block factored directly on the host.
pub const BASE: usize = 128;

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

/// Log-determinants of a batch of SPD matrices `[b, n, n]`.
pub fn spd_logdet(a: Tensor<3>) -> Result<Vec<f64>> {
    spd_inverse_logdet(a).map(|(_, l)| l)
}

fn recurse(a: Tensor<3>) -> Result<(Tensor<3>, Vec<f64>)> {
    let (li, logdets) = inverse_factor(a)?;
    Ok((li.clone().swap_dims(1, 2).matmul(li), logdets))
}

/// L⁻¹ (lower triangular) with A = L Lᵀ, and logdet A, by recursive block
/// Cholesky. The Schur complement is formed as D − L₂₁L₂₁ᵀ from the
/// triangular factor rather than D − B P⁻¹ Bᵀ: subtracting a product of
/// well-scaled factors keeps it positive definite in f32 far beyond where
/// the inverse-based form breaks down.
fn inverse_factor(a: Tensor<3>) -> Result<(Tensor<3>, Vec<f64>)> {
    let [b, n, _] = a.dims();
    if n <= BASE {
        return host_base(a);
    }
    // Split on a multiple of 32 so the products keep friendly sizes.
    let h = (n / 2).div_ceil(32) * 32;
    let p = a.clone().slice(s![.., 0..h, 0..h]);
    let bl = a.clone().slice(s![.., h..n, 0..h]);
    let d = a.slice(s![.., h..n, h..n]);
    let (l11i, ld_p) = inverse_factor(p)?;
    let l21 = bl.matmul(l11i.clone().swap_dims(1, 2));
    let schur = d - l21.clone().matmul(l21.clone().swap_dims(1, 2));
    // Rounding breaks the symmetry of the Schur complement; restore it.
    let schur = (schur.clone() + schur.swap_dims(1, 2)).mul_scalar(0.5);
    let (l22i, ld_s) = inverse_factor(schur)?;
    let off = l22i.clone().matmul(l21).matmul(l11i.clone()).neg();
    let device = off.device();
    let top = Tensor::cat(vec![l11i, Tensor::zeros([b, h, n - h], &device)], 2);
    let bottom = Tensor::cat(vec![off, l22i], 2);
    let li = Tensor::cat(vec![top, bottom], 1);
    Ok((li, ld_p.iter().zip(&ld_s).map(|(x, y)| x + y).collect()))
}

/// Cholesky in f64 on the host for each matrix of a small batch: L⁻¹ and
/// the logdet.
fn host_base(a: Tensor<3>) -> Result<(Tensor<3>, Vec<f64>)> {
    let device = a.device();
    let [b, n, _] = a.dims();
    let values = to_vec(a)?;
    let mut out = vec![0f32; b * n * n];
    let logdets =
        values
            .par_chunks(n * n)
            .zip(out.par_chunks_mut(n * n))
            .enumerate()
            .map(|(index, (m, o))| {
                let sym: Vec<f64> = (0..n * n)
                    .map(|k| 0.5 * (m[k] as f64 + m[(k % n) * n + k / n] as f64))
                    .collect();
                let l = cholesky_f64(&sym, n)
                    .map_err(|(row, pivot)| Error::NotPositiveDefinite { index, row, pivot })?;
                let li = lower_inverse_f64(&l, n);
                for (dst, src) in o.iter_mut().zip(&li) {
                    *dst = *src as f32;
                }
                Ok(2.0 * (0..n).map(|i| l[i * n + i].ln()).sum::<f64>())
            })
            .collect::<Result<Vec<f64>>>()?;
    Ok((tensor(out, [b, n, n], &device), logdets))
}

/// Inverse of a lower-triangular matrix (row-major, f64), row by row:
/// row i = (e_i − Σ_{k<i} L_ik · row k) / L_ii, with contiguous updates.
pub fn lower_inverse_f64(l: &[f64], n: usize) -> Vec<f64> {
    let mut li = vec![0f64; n * n];
    for i in 0..n {
        let (done, rest) = li.split_at_mut(i * n);
        let row = &mut rest[..n];
        row[i] = 1.0;
        for k in 0..i {
            let f = l[i * n + k];
            if f != 0.0 {
                for (r, v) in row[..=k].iter_mut().zip(&done[k * n..k * n + k + 1]) {
                    *r -= f * v;
                }
            }
        }
        let inv_d = 1.0 / l[i * n + i];
        for r in row[..=i].iter_mut() {
            *r *= inv_d;
        }
    }
    li
}

/// Inverse and logdet of one SPD matrix (row-major, f64) by Cholesky.
/// On failure returns the row and value of the first non-positive pivot.
pub fn spd_inverse_f64(a: &[f64], n: usize) -> std::result::Result<(Vec<f64>, f64), (usize, f64)> {
    let l = cholesky_f64(a, n)?;
    let logdet = 2.0 * (0..n).map(|i| l[i * n + i].ln()).sum::<f64>();
    let li = lower_inverse_f64(&l, n);
    // A⁻¹ = L⁻ᵀ L⁻¹: (A⁻¹)_ij = Σ_{k ≥ max(i,j)} (L⁻¹)_ki (L⁻¹)_kj, summed as
    // rank-one updates with the rows of L⁻¹.
    let mut inv = vec![0f64; n * n];
    for k in 0..n {
        let row = &li[k * n..k * n + k + 1];
        for (i, &ri) in row.iter().enumerate() {
            if ri != 0.0 {
                for (dst, &rj) in inv[i * n..i * n + k + 1].iter_mut().zip(row) {
                    *dst += ri * rj;
                }
            }
        }
    }
    Ok((inv, logdet))
}

/// Lower Cholesky factor of an SPD matrix (row-major, f64).
pub fn cholesky_f64(a: &[f64], n: usize) -> std::result::Result<Vec<f64>, (usize, f64)> {
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(s > 0.0) || !s.is_finite() {
                    return Err((i, s));
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Ok(l)
}

/// `logdet(I + a · ZᵀZ)` for `z: [m, d]`, through whichever of the d×d or
/// m×m Gram matrices is smaller (they have the same non-unit spectrum).
pub fn logdet_identity_plus_gram(z: Tensor<2>, a: f64) -> Result<f64> {
    let [m, d] = z.dims();
    let device = z.device();
    let gram = if m < d {
        z.clone().matmul(z.transpose())
    } else {
        z.clone().transpose().matmul(z)
    };
    let n = m.min(d);
    let mat = Tensor::<2>::eye(n, &device) + gram.mul_scalar(a);
    Ok(spd_logdet(mat.unsqueeze_dim(0))?[0])
}
