//! Inverse and log-determinant of SPD matrices on the host: the recursive
//! block Cholesky of [`crate::linalg`] (same split, same products, same f64
//! base blocks), with every product a direct gemm on strided views instead
//! of a chain of tensor slices, copies and concatenations.

use super::cholesky::{self, WIDTH};
use super::gemm::{Threads, View, matmul};
use crate::{Error, Result};
use rayon::prelude::*;

use crate::linalg::BASE;

/// One level's result for an `n × n` block, row-major.
pub(crate) struct Factor {
    /// A⁻¹.
    pub inverse: Vec<f32>,
    /// L⁻¹ (lower triangular), when asked for.
    pub factor: Option<Vec<f32>>,
    /// logdet A.
    pub logdet: f64,
}

/// Inverses and log-determinants of the `b` SPD matrices `n × n` stored
/// row-major one after another in `values` (each read as the mean of
/// itself and its transpose in the base blocks, as the tensor path does).
pub fn inverse_logdet(values: &[f32], b: usize, n: usize) -> Result<(Vec<f32>, Vec<f64>)> {
    assert_eq!(values.len(), b * n * n, "batch of {b} matrices {n}×{n}");
    if n <= BASE {
        let blocks = base_batch(values, b, n, false)?;
        return Ok((blocks.inverse, blocks.logdet));
    }
    // The matrices side by side, one per thread, keep both cores in the
    // products and in the f64 base blocks alike; each product may still
    // spread over idle threads, which keeps the last matrix of an uneven
    // batch from running alone.
    let results: Vec<Factor> = values
        .par_chunks(n * n)
        .enumerate()
        .map(|(index, m)| {
            factor(View::new(m, n, n), false, Threads::All)
                .map_err(|(row, pivot)| Error::NotPositiveDefinite { index, row, pivot })
        })
        .collect::<Result<_>>()?;
    let mut inverse = Vec::with_capacity(b * n * n);
    let mut logdet = Vec::with_capacity(b);
    for f in results {
        inverse.extend_from_slice(&f.inverse);
        logdet.push(f.logdet);
    }
    Ok((inverse, logdet))
}

/// The recursion of [`crate::linalg`]'s `factor`, with A = L Lᵀ and
/// L⁻¹ = [[P, 0], [Q, R]]:
///
/// ```text
/// L₂₁ = B Pᵀ,  S = D − L₂₁ L₂₁ᵀ,  Q = −R L₂₁ P,
/// A⁻¹ = [[PᵀP + QᵀQ, QᵀR], [RᵀQ, RᵀR]].
/// ```
///
/// A failed pivot is reported as (row of `a`, pivot value).
pub(crate) fn factor(
    a: View<'_>,
    need_factor: bool,
    threads: Threads,
) -> std::result::Result<Factor, (usize, f64)> {
    let n = a.rows();
    if n <= BASE {
        return base(a, need_factor);
    }
    let (h, r) = split(n);
    let p = factor(a.block(0..h, 0..h), true, threads)?;
    let p_li_v = p.factor.expect("requested");
    let p_li = View::new(&p_li_v, h, h);
    let (l21, schur) = schur_complement(a, p_li, threads);
    let l21v = View::new(&l21, r, h);
    let s = factor(View::new(&schur, r, r), true, threads).map_err(|(row, v)| (row + h, v))?;
    let r_li_v = s.factor.expect("requested");
    let r_li = View::new(&r_li_v, r, r);
    let mut tmp = vec![0f32; r * h];
    triangular(&mut tmp, h, r_li, l21v, Tri::LeftLower, threads);
    let mut q = vec![0f32; r * h];
    triangular(
        &mut q,
        h,
        View::new(&tmp, r, h),
        p_li,
        Tri::RightLower,
        threads,
    );
    q.iter_mut().for_each(|v| *v = -*v);
    let qv = View::new(&q, r, h);

    let mut inverse = vec![0f32; n * n];
    for i in 0..h {
        inverse[i * n..i * n + h].copy_from_slice(&p.inverse[i * h..(i + 1) * h]);
    }
    matmul(&mut inverse, n, qv.t(), qv, Some(1.0), threads);
    triangular(
        &mut inverse[h * n..],
        n,
        r_li.t(),
        qv,
        Tri::LeftUpper,
        threads,
    );
    for i in 0..r {
        for j in 0..h {
            inverse[j * n + h + i] = inverse[(h + i) * n + j];
        }
        inverse[(h + i) * n + h..(h + i + 1) * n].copy_from_slice(&s.inverse[i * r..(i + 1) * r]);
    }
    let factor = need_factor.then(|| {
        let mut li = vec![0f32; n * n];
        for i in 0..h {
            li[i * n..i * n + h].copy_from_slice(&p_li_v[i * h..(i + 1) * h]);
        }
        for i in 0..r {
            li[(h + i) * n..(h + i) * n + h].copy_from_slice(&q[i * h..(i + 1) * h]);
            li[(h + i) * n + h..(h + i + 1) * n].copy_from_slice(&r_li_v[i * r..(i + 1) * r]);
        }
        li
    });
    Ok(Factor {
        inverse,
        factor,
        logdet: p.logdet + s.logdet,
    })
}

/// Where the recursion splits an `n × n` block: a leading block of a
/// multiple of 32 rows (friendly product sizes) and the rest.
fn split(n: usize) -> (usize, usize) {
    let h = (n / 2).div_ceil(32) * 32;
    (h, n - h)
}

/// `L₂₁ = B Pᵀ` and `S = D − L₂₁ L₂₁ᵀ` for `a = [[·, ·], [B, D]]` split
/// at the size of `P`, the inverse factor of its leading block.
fn schur_complement(a: View<'_>, p_li: View<'_>, threads: Threads) -> (Vec<f32>, Vec<f32>) {
    let (n, h) = (a.rows(), p_li.rows());
    let r = n - h;
    let mut l21 = vec![0f32; r * h];
    triangular(
        &mut l21,
        h,
        a.block(h..n, 0..h),
        p_li.t(),
        Tri::RightUpper,
        threads,
    );
    let l21v = View::new(&l21, r, h);
    let mut schur = a.block(h..n, h..n).to_vec();
    matmul(&mut schur, r, l21v, l21v.t(), Some(-1.0), threads);
    (l21, schur)
}

/// Log-determinants of the `b` SPD matrices `n × n` stored row-major in
/// `values`: exactly [`inverse_logdet`]'s, by the factorisation alone.
/// The base blocks stop at the Cholesky factor; above them the recursion
/// inverts only the leading blocks, whose inverse factors the Schur
/// complements need, and assembles no inverse.
pub fn logdets(values: &[f32], b: usize, n: usize) -> Result<Vec<f64>> {
    assert_eq!(values.len(), b * n * n, "batch of {b} matrices {n}×{n}");
    if n > BASE {
        return values
            .par_chunks(n * n)
            .enumerate()
            .map(|(index, m)| {
                logdet(View::new(m, n, n), Threads::All)
                    .map_err(|(row, pivot)| Error::NotPositiveDefinite { index, row, pivot })
            })
            .collect();
    }
    let nn = n * n;
    let mut out = vec![0f64; b];
    out.par_chunks_mut(WIDTH)
        .enumerate()
        .try_for_each(|(g, out)| {
            let first = g * WIDTH;
            let sym = lanes(&values[first * nn..(first + out.len()) * nn], n);
            let (logdet, failures) = cholesky::logdet_group(&sym, n);
            first_failure(&failures[..out.len()], first)?;
            out.copy_from_slice(&logdet[..out.len()]);
            Ok::<(), Error>(())
        })?;
    Ok(out)
}

/// The error of the first lane that failed, matrix `first` being lane 0.
fn first_failure(failed: &[Option<(usize, f64)>], first: usize) -> Result<()> {
    match failed
        .iter()
        .enumerate()
        .find_map(|(t, e)| e.map(|e| (t, e)))
    {
        Some((t, (row, pivot))) => Err(Error::NotPositiveDefinite {
            index: first + t,
            row,
            pivot,
        }),
        None => Ok(()),
    }
}

/// logdet of one matrix by the recursion of [`factor`] without its
/// inverses: logdet A = logdet P⁻ᵀP⁻¹ + logdet S.
fn logdet(a: View<'_>, threads: Threads) -> std::result::Result<f64, (usize, f64)> {
    let n = a.rows();
    if n <= BASE {
        return cholesky::cholesky_one(symmetrised(a), n).map(|(_, l)| l);
    }
    let (h, r) = split(n);
    let p = factor(a.block(0..h, 0..h), true, threads)?;
    let p_li = p.factor.expect("requested");
    let (_, schur) = schur_complement(a, View::new(&p_li, h, h), threads);
    let s = logdet(View::new(&schur, r, r), threads).map_err(|(row, v)| (row + h, v))?;
    Ok(p.logdet + s)
}

/// The mean of a block and its transpose, in f64: what the base blocks
/// factor.
fn symmetrised(a: View<'_>) -> Vec<f64> {
    let n = a.rows();
    (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            0.5 * (a.at(i, j) as f64 + a.at(j, i) as f64)
        })
        .collect()
}

/// Up to [`WIDTH`] matrices `n × n` (row-major, one after another) as the
/// lanes of one group, symmetrised in f64 (lower triangles, which is what
/// the factorisation reads); spare lanes hold identities.
fn lanes(values: &[f32], n: usize) -> Vec<f64> {
    let nn = n * n;
    let mut sym = vec![0f64; nn * WIDTH];
    for (t, m) in values.chunks(nn).enumerate() {
        for i in 0..n {
            for j in 0..=i {
                sym[(i * n + j) * WIDTH + t] = 0.5 * (m[i * n + j] as f64 + m[j * n + i] as f64);
            }
        }
    }
    for t in values.len() / nn..WIDTH {
        (0..n).for_each(|i| sym[(i * n + i) * WIDTH + t] = 1.0);
    }
    sym
}

/// Cholesky in f64 of one small block, symmetrised: its inverse, L⁻¹ when
/// asked, and its logdet (see [`super::cholesky`]).
pub(crate) fn base(a: View<'_>, need_factor: bool) -> std::result::Result<Factor, (usize, f64)> {
    let n = a.rows();
    let f = cholesky::factor_one(symmetrised(a), n, need_factor)?;
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    Ok(Factor {
        inverse: to_f32(f.inverse),
        factor: f.factor.map(to_f32),
        logdet: f.logdet,
    })
}

/// The base blocks of a whole batch, [`WIDTH`] matrices side by side.
pub(crate) struct Blocks {
    /// A⁻¹ per matrix, `[b, n, n]`.
    pub inverse: Vec<f32>,
    /// L⁻¹ per matrix, when asked for.
    pub factor: Option<Vec<f32>>,
    pub logdet: Vec<f64>,
}

/// [`base`] for each of the `b` matrices `n × n` stored one after another in
/// `values`, [`WIDTH`] at a time per thread (the last group padded with
/// identities). Each matrix gets exactly the results [`base`] gives it.
pub(crate) fn base_batch(values: &[f32], b: usize, n: usize, need_factor: bool) -> Result<Blocks> {
    let nn = n * n;
    assert_eq!(values.len(), b * nn, "batch of {b} matrices {n}×{n}");
    let mut inverse = vec![0f32; b * nn];
    let mut factor = vec![0f32; if need_factor { b * nn } else { 0 }];
    let mut logdet = vec![0f64; b];
    let group = WIDTH * nn;
    let work = |g: usize, inv: &mut [f32], ld: &mut [f64], fac: Option<&mut [f32]>| {
        let first = g * WIDTH;
        let count = ld.len();
        let sym = lanes(&values[first * nn..(first + count) * nn], n);
        let f = cholesky::factor_group(&sym, n, need_factor);
        first_failure(&f.failed[..count], first)?;
        let scatter = |from: &[f64], to: &mut [f32]| {
            for (t, out) in to.chunks_mut(nn).enumerate() {
                for (e, o) in out.iter_mut().enumerate() {
                    *o = from[e * WIDTH + t] as f32;
                }
            }
        };
        scatter(&f.inverse, inv);
        if let (Some(to), Some(from)) = (fac, &f.factor) {
            scatter(from, to);
        }
        ld.copy_from_slice(&f.logdet[..count]);
        Ok::<(), Error>(())
    };
    let chunks = inverse
        .par_chunks_mut(group)
        .zip(logdet.par_chunks_mut(WIDTH));
    if need_factor {
        chunks
            .zip(factor.par_chunks_mut(group))
            .enumerate()
            .try_for_each(|(g, ((inv, ld), fac))| work(g, inv, ld, Some(fac)))?;
    } else {
        chunks
            .enumerate()
            .try_for_each(|(g, (inv, ld))| work(g, inv, ld, None))?;
    }
    Ok(Blocks {
        inverse,
        factor: need_factor.then_some(factor),
        logdet,
    })
}

/// Which operand of a product is triangular, and which way.
#[derive(Clone, Copy)]
enum Tri {
    LeftLower,
    LeftUpper,
    RightLower,
    RightUpper,
}

/// Below this size a triangular operand is multiplied whole.
const TRIANGULAR_BASE: usize = 128;

/// `dst = a·b` where one operand is square and triangular (`tri`): split
/// in halves, the product skips the zero quarter, recursively — about
/// half the arithmetic of the full product, with the same result (the
/// skipped terms are exact zeros).
fn triangular(dst: &mut [f32], ld: usize, a: View<'_>, b: View<'_>, tri: Tri, threads: Threads) {
    trmm(dst, ld, a, b, tri, None, threads)
}

fn trmm(
    dst: &mut [f32],
    ld: usize,
    a: View<'_>,
    b: View<'_>,
    tri: Tri,
    acc: Option<f32>,
    threads: Threads,
) {
    let n = match tri {
        Tri::LeftLower | Tri::LeftUpper => a.rows(),
        Tri::RightLower | Tri::RightUpper => b.cols(),
    };
    if n <= TRIANGULAR_BASE {
        return matmul(dst, ld, a, b, acc, threads);
    }
    let s = n / 2;
    let more = Some(acc.unwrap_or(1.0));
    let (rows, cols) = (a.rows(), b.cols());
    match tri {
        // [[A11, 0], [A21, A22]]·[B1; B2] = [A11 B1; A21 B1 + A22 B2]
        Tri::LeftLower => {
            let (top, bottom) = dst.split_at_mut(s * ld);
            trmm(
                top,
                ld,
                a.block(0..s, 0..s),
                b.block(0..s, 0..cols),
                tri,
                acc,
                threads,
            );
            let b1 = b.block(0..s, 0..cols);
            matmul(bottom, ld, a.block(s..n, 0..s), b1, acc, threads);
            let (a22, b2) = (a.block(s..n, s..n), b.block(s..n, 0..cols));
            trmm(bottom, ld, a22, b2, tri, more, threads);
        }
        // [[A11, A12], [0, A22]]·[B1; B2] = [A11 B1 + A12 B2; A22 B2]
        Tri::LeftUpper => {
            let (top, bottom) = dst.split_at_mut(s * ld);
            trmm(
                top,
                ld,
                a.block(0..s, 0..s),
                b.block(0..s, 0..cols),
                tri,
                acc,
                threads,
            );
            let (a12, b2) = (a.block(0..s, s..n), b.block(s..n, 0..cols));
            matmul(top, ld, a12, b2, more, threads);
            trmm(bottom, ld, a.block(s..n, s..n), b2, tri, acc, threads);
        }
        // [A1, A2]·[[B11, 0], [B21, B22]] = [A1 B11 + A2 B21, A2 B22]
        Tri::RightLower => {
            let (a1, a2) = (a.block(0..rows, 0..s), a.block(0..rows, s..n));
            trmm(dst, ld, a1, b.block(0..s, 0..s), tri, acc, threads);
            matmul(dst, ld, a2, b.block(s..n, 0..s), more, threads);
            trmm(
                &mut dst[s..],
                ld,
                a2,
                b.block(s..n, s..n),
                tri,
                acc,
                threads,
            );
        }
        // [A1, A2]·[[B11, B12], [0, B22]] = [A1 B11, A1 B12 + A2 B22]
        Tri::RightUpper => {
            let (a1, a2) = (a.block(0..rows, 0..s), a.block(0..rows, s..n));
            trmm(dst, ld, a1, b.block(0..s, 0..s), tri, acc, threads);
            matmul(&mut dst[s..], ld, a1, b.block(0..s, s..n), acc, threads);
            trmm(
                &mut dst[s..],
                ld,
                a2,
                b.block(s..n, s..n),
                tri,
                more,
                threads,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `b` SPD matrices `G Gᵀ/n + 0.1 I` in f32 from a deterministic stream.
    fn batch(b: usize, n: usize) -> Vec<f32> {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let mut out = Vec::with_capacity(b * n * n);
        for _ in 0..b {
            let g: Vec<f32> = (0..n * n).map(|_| next()).collect();
            let mut a = vec![0f32; n * n];
            matmul(
                &mut a,
                n,
                View::new(&g, n, n),
                View::new(&g, n, n).t(),
                None,
                Threads::One,
            );
            for (k, v) in a.iter_mut().enumerate() {
                *v /= n as f32;
                if k % (n + 1) == 0 {
                    *v += 0.1;
                }
            }
            out.extend(a);
        }
        out
    }

    #[test]
    fn logdets_alone_are_those_of_the_inverses_bit_for_bit() {
        // Base blocks (a partial last group), and the recursion at one and
        // two levels, with uneven splits.
        for (b, n) in [
            (11, 1),
            (11, 7),
            (9, 32),
            (3, 64),
            (3, 65),
            (2, 150),
            (1, 300),
        ] {
            let mut values = batch(b, n);
            let (_, expected) = inverse_logdet(&values, b, n).unwrap();
            let got = logdets(&values, b, n).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&expected), "{b} × {n}²");
            // The last matrix indefinite in its last row: the same error.
            let last = (b * n * n) - 1;
            values[last] = -1.0;
            let (e1, e2) = (
                inverse_logdet(&values, b, n).unwrap_err(),
                logdets(&values, b, n).unwrap_err(),
            );
            assert!(
                matches!(e2, Error::NotPositiveDefinite { index, row, .. } if index == b - 1 && row == n - 1),
                "{e2:?}"
            );
            assert_eq!(format!("{e1:?}"), format!("{e2:?}"));
        }
    }
}
