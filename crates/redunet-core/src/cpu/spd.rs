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
    let mut inverse = values.to_vec();
    let logdet = invert_each(inverse.par_chunks_mut(n * n), n)?;
    Ok((inverse, logdet))
}

/// [`inverse_logdet`] of matrices held apart (each `n × n`, row-major),
/// each inverse written over its matrix: exactly [`inverse_logdet`]'s
/// values, without a batch-sized buffer for them (fresh memory, at every
/// layer that builds one) or a copy into one.
pub fn invert_apart(matrices: &mut [Vec<f32>], n: usize) -> Result<Vec<f64>> {
    assert!(
        matrices.iter().all(|m| m.len() == n * n),
        "matrices {n}×{n}"
    );
    if n <= BASE {
        let (inverse, logdet) = inverse_logdet(&matrices.concat(), matrices.len(), n)?;
        for (m, inv) in matrices.iter_mut().zip(inverse.chunks(n * n)) {
            m.copy_from_slice(inv);
        }
        return Ok(logdet);
    }
    invert_each(matrices.par_iter_mut().map(Vec::as_mut_slice), n)
}

/// [`invert_in_place`] for each matrix (all above the base size). The
/// matrices side by side, one per thread, keep both cores in the products
/// and in the f64 base blocks alike; each product may still spread over
/// idle threads, which keeps the last matrix of an uneven batch from
/// running alone.
fn invert_each<'a>(
    matrices: impl IndexedParallelIterator<Item = &'a mut [f32]>,
    n: usize,
) -> Result<Vec<f64>> {
    matrices
        .enumerate()
        .map(|(index, m)| {
            invert_in_place(m, n, Threads::All).map_err(|(row, pivot)| Error::NotPositiveDefinite {
                index,
                row,
                pivot,
            })
        })
        .collect()
}

/// [`factor`]'s inverse of the `n × n` matrix in `a`, written over it: at
/// the top level `a` is not read again once the halves are known. Returns
/// the logdet.
fn invert_in_place(
    a: &mut [f32],
    n: usize,
    threads: Threads,
) -> std::result::Result<f64, (usize, f64)> {
    if n <= BASE {
        let f = base(View::new(a, n, n), false)?;
        a.copy_from_slice(&f.inverse);
        return Ok(f.logdet);
    }
    let halves = Halves::of(View::new(a, n, n), true, threads)?;
    halves.inverse_into(a, threads);
    Ok(halves.logdet)
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
    let halves = Halves::of(a, true, threads)?;
    let mut inverse = vec![0f32; n * n];
    halves.inverse_into(&mut inverse, threads);
    Ok(Factor {
        inverse,
        factor: need_factor.then(|| halves.whole_factor()),
        logdet: halves.logdet,
    })
}

/// One level of the recursion before A⁻¹ is assembled: the leading
/// block's and the Schur complement's inverse factors, `Q`, and where A⁻¹
/// is wanted the halves' inverses.
struct Halves {
    /// The leading block's size and the rest's.
    h: usize,
    r: usize,
    /// P⁻ᵀP⁻¹ and S⁻¹ (the halves' inverses), when asked for.
    inverses: Option<(Vec<f32>, Vec<f32>)>,
    /// P, R and Q of L⁻¹ = [[P, 0], [Q, R]].
    p_li: Vec<f32>,
    r_li: Vec<f32>,
    q: Vec<f32>,
    logdet: f64,
}

impl Halves {
    /// The halves of `a`, with their inverses when `inverses` (to assemble
    /// A⁻¹), else by the factorisation alone (for L⁻¹ only): the same
    /// factors and logdets either way.
    fn of(
        a: View<'_>,
        inverses: bool,
        threads: Threads,
    ) -> std::result::Result<Self, (usize, f64)> {
        // L⁻¹, logdet and (when asked) A⁻¹ of one half.
        let half = |m: View<'_>| {
            if inverses {
                let f = factor(m, true, threads)?;
                Ok((f.factor.expect("requested"), f.logdet, Some(f.inverse)))
            } else {
                inverse_factor(m, threads).map(|(li, logdet)| (li, logdet, None))
            }
        };
        let (h, r) = split(a.rows());
        let (p_li, p_logdet, p_inverse) = half(a.block(0..h, 0..h))?;
        let (l21, schur) = schur_complement(a, View::new(&p_li, h, h), threads);
        let (r_li, s_logdet, s_inverse) =
            half(View::new(&schur, r, r)).map_err(|(row, v)| (row + h, v))?;
        let q = lower_left(
            View::new(&r_li, r, r),
            View::new(&l21, r, h),
            View::new(&p_li, h, h),
            threads,
        );
        Ok(Self {
            h,
            r,
            inverses: p_inverse.zip(s_inverse),
            p_li,
            r_li,
            q,
            logdet: p_logdet + s_logdet,
        })
    }

    /// A⁻¹ into the row-major `n × n` `dst`, every element written.
    fn inverse_into(&self, dst: &mut [f32], threads: Threads) {
        let (h, r) = (self.h, self.r);
        let n = h + r;
        let (p_inverse, s_inverse) = self.inverses.as_ref().expect("halves with inverses");
        let qv = View::new(&self.q, r, h);
        for i in 0..h {
            dst[i * n..i * n + h].copy_from_slice(&p_inverse[i * h..(i + 1) * h]);
        }
        matmul(dst, n, qv.t(), qv, Some(1.0), threads);
        triangular(
            &mut dst[h * n..],
            n,
            View::new(&self.r_li, r, r).t(),
            qv,
            Tri::LeftUpper,
            threads,
        );
        for i in 0..r {
            for j in 0..h {
                dst[j * n + h + i] = dst[(h + i) * n + j];
            }
            dst[(h + i) * n + h..(h + i + 1) * n].copy_from_slice(&s_inverse[i * r..(i + 1) * r]);
        }
    }

    /// L⁻¹ = [[P, 0], [Q, R]].
    fn whole_factor(&self) -> Vec<f32> {
        let (h, r) = (self.h, self.r);
        let n = h + r;
        let mut li = vec![0f32; n * n];
        for i in 0..h {
            li[i * n..i * n + h].copy_from_slice(&self.p_li[i * h..(i + 1) * h]);
        }
        for i in 0..r {
            let row = &mut li[(h + i) * n..(h + i + 1) * n];
            row[..h].copy_from_slice(&self.q[i * h..(i + 1) * h]);
            row[h..].copy_from_slice(&self.r_li[i * r..(i + 1) * r]);
        }
        li
    }
}

/// `Q = −R L₂₁ P`, the lower-left block of L⁻¹ = [[P, 0], [Q, R]].
fn lower_left(r_li: View<'_>, l21: View<'_>, p_li: View<'_>, threads: Threads) -> Vec<f32> {
    let (r, h) = (l21.rows(), l21.cols());
    let mut tmp = vec![0f32; r * h];
    triangular(&mut tmp, h, r_li, l21, Tri::LeftLower, threads);
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
    q
}

/// L⁻¹ and logdet of one matrix: exactly [`factor`]'s, by the same
/// recursion without the inverses A⁻¹ it assembles at every level (a third
/// of its products), for callers that need only the factor.
fn inverse_factor(
    a: View<'_>,
    threads: Threads,
) -> std::result::Result<(Vec<f32>, f64), (usize, f64)> {
    let n = a.rows();
    if n <= BASE {
        let (li, logdet) = cholesky::inverse_factor_one(symmetrised(a), n)?;
        return Ok((li.into_iter().map(|x| x as f32).collect(), logdet));
    }
    let halves = Halves::of(a, false, threads)?;
    Ok((halves.whole_factor(), halves.logdet))
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
/// forms only the inverse factors of the leading blocks, which the Schur
/// complements need, and assembles no inverse A⁻¹ at any level.
pub fn logdets(values: &[f32], b: usize, n: usize) -> Result<Vec<f64>> {
    assert_eq!(values.len(), b * n * n, "batch of {b} matrices {n}×{n}");
    if n > BASE {
        return recursive_logdets(values.par_chunks(n * n), n);
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

/// [`logdets`] of matrices held apart (each `n × n`, row-major).
pub fn logdets_apart(matrices: &[Vec<f32>], n: usize) -> Result<Vec<f64>> {
    assert!(
        matrices.iter().all(|m| m.len() == n * n),
        "matrices {n}×{n}"
    );
    if n <= BASE {
        return logdets(&matrices.concat(), matrices.len(), n);
    }
    recursive_logdets(matrices.par_iter().map(Vec::as_slice), n)
}

/// [`logdet`] for each matrix (all above the base size), side by side.
fn recursive_logdets<'a>(
    matrices: impl IndexedParallelIterator<Item = &'a [f32]>,
    n: usize,
) -> Result<Vec<f64>> {
    matrices
        .enumerate()
        .map(|(index, m)| {
            logdet(View::new(m, n, n), Threads::All)
                .map_err(|(row, pivot)| Error::NotPositiveDefinite { index, row, pivot })
        })
        .collect()
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
    let (p_li, p_logdet) = inverse_factor(a.block(0..h, 0..h), threads)?;
    let (_, schur) = schur_complement(a, View::new(&p_li, h, h), threads);
    let s = logdet(View::new(&schur, r, r), threads).map_err(|(row, v)| (row + h, v))?;
    Ok(p_logdet + s)
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
    fn the_factor_alone_is_that_of_the_full_recursion_bit_for_bit() {
        // Base blocks, one level and three levels (uneven splits), then an
        // indefinite last row: the same failure.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for n in [7, 65, 300] {
            let mut values = batch(1, n);
            let a = View::new(&values, n, n);
            let full = factor(a, true, Threads::All).unwrap();
            let (li, logdet) = inverse_factor(a, Threads::All).unwrap();
            assert_eq!(bits(&li), bits(&full.factor.unwrap()), "{n}²");
            assert_eq!(logdet.to_bits(), full.logdet.to_bits(), "{n}²");
            values[n * n - 1] = -1.0;
            let a = View::new(&values, n, n);
            let e1 = factor(a, true, Threads::All).err().unwrap();
            let e2 = inverse_factor(a, Threads::All).unwrap_err();
            assert_eq!((e1.0, e1.1.to_bits()), (e2.0, e2.1.to_bits()), "{n}²");
            assert_eq!(e2.0, n - 1);
        }
    }

    #[test]
    fn inverses_written_over_their_matrices_are_the_recursions_bit_for_bit() {
        // Every element of the result is written (none left from the input),
        // at base size, one level and three; apart or in one batch alike.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (b, n) in [(3, 7), (2, 65), (2, 300)] {
            let values = batch(b, n);
            let mut apart: Vec<Vec<f32>> = values.chunks(n * n).map(<[f32]>::to_vec).collect();
            let alone = logdets_apart(&apart, n).unwrap();
            let logdets = invert_apart(&mut apart, n).unwrap();
            let (inverse, batch_logdets) = inverse_logdet(&values, b, n).unwrap();
            let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits64(&alone), bits64(&logdets), "{b} × {n}²");
            assert_eq!(bits(&apart.concat()), bits(&inverse), "{b} × {n}²");
            for (t, m) in values.chunks(n * n).enumerate() {
                let f = factor(View::new(m, n, n), false, Threads::All).unwrap();
                assert_eq!(bits(&apart[t]), bits(&f.inverse), "{n}², matrix {t}");
                assert_eq!(logdets[t].to_bits(), f.logdet.to_bits());
                assert_eq!(batch_logdets[t].to_bits(), f.logdet.to_bits());
            }
            // An indefinite matrix: the batch's error, reported apart too.
            let mut bad = values.clone();
            bad[n * n + n * n - 1] = -1.0;
            let mut apart: Vec<Vec<f32>> = bad.chunks(n * n).map(<[f32]>::to_vec).collect();
            let e = logdets_apart(&apart, n).unwrap_err();
            assert!(
                matches!(e, Error::NotPositiveDefinite { index: 1, row, .. } if row == n - 1),
                "{e:?}"
            );
            let e = invert_apart(&mut apart, n).unwrap_err();
            assert!(
                matches!(e, Error::NotPositiveDefinite { index: 1, row, .. } if row == n - 1),
                "{e:?}"
            );
        }
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
