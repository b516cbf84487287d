//! Lossy coding lengths (Ma, Derksen, Hong, Wright, TPAMI 2007), in bits:
//!
//! ```text
//! L(X)   = (m + D)/2 · log2 det(I + α XᵀX),      α = D / (m ε²),   X: [m, D]
//! L^c(Π) = Σ_j [ L(X_j) + m_j · log2(m / m_j) ]
//! ```
//!
//! `L(X) = (m + D) · R(X) / ln 2` with R the coding rate of [`crate::rates`]
//! (same α, same matrix), so the set's length is computed by the rates.
//! What clustering by compression and MICL need beyond it is the length of
//! a set grown by others, `L(X_C ∪ X_P)` for many partners P at once:
//! [`Grown`] factors the grown set's base once per partner size and
//! gets every partner from a Schur complement of the partner's size (one
//! number for a single sample), never refactoring the union.

use crate::cpu::cholesky::inverse_factor_one;
use crate::cpu::gemm::{Threads, View, matmul, matmul_abt_f64, matmul_abt_f64_on};
use crate::linalg::spd_logdet_f64;
use crate::rates::coding_rate;
use crate::{Error, Result};
use burn::tensor::Tensor;
use rayon::prelude::*;
use std::f64::consts::LN_2;

/// Partner rows per block of [`Grown::logdets`]: a block's products are
/// a few MB (256 × 784 f64 is 1.6 MB).
const PARTNER_ROWS: usize = 256;

/// L(X) in bits for the rows of `x: [m, D]`.
pub fn coding_length(x: &Tensor<2>, eps_sq: f64) -> Result<f64> {
    let [m, d] = x.dims();
    Ok((m + d) as f64 * coding_rate(x, eps_sq)? / LN_2)
}

/// L^c of the partition of the rows of `x` by `labels` (one group per
/// label value present), in bits.
pub fn partition_coding_length(x: &Tensor<2>, labels: &[usize], eps_sq: f64) -> Result<f64> {
    let [m, d] = x.dims();
    if labels.len() != m {
        return Err(Error::LabelCount {
            expected: m,
            got: labels.len(),
        });
    }
    crate::rates::check_features(x, eps_sq)?;
    let rows = crate::host::to_vec(x.clone())?;
    let rows: Vec<f64> = rows.iter().map(|&v| v as f64).collect();
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &l) in labels.iter().enumerate() {
        groups.entry(l).or_default().push(i);
    }
    let mut total = 0.0;
    for members in groups.values() {
        let g = gather(&rows, d, members);
        total += group_bits(&g, members.len(), d, m, eps_sq)?;
    }
    Ok(total)
}

/// The rows `idx` of the row-major `[_, d]` matrix `x`, side by side.
pub(crate) fn gather(x: &[f64], d: usize, idx: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        out.extend_from_slice(&x[i * d..(i + 1) * d]);
    }
    out
}

/// `L(X) + n·log2(m/n)` of a group of `n` rows `x` out of `m` samples: its
/// share of `L^c`.
pub(crate) fn group_bits(x: &[f64], n: usize, d: usize, m: usize, eps_sq: f64) -> Result<f64> {
    gram_bits(&Gram::of(x, n, d), n, d, m, eps_sq)
}

/// [`group_bits`] from the group's [`Gram`].
pub(crate) fn gram_bits(gram: &Gram, n: usize, d: usize, m: usize, eps_sq: f64) -> Result<f64> {
    let alpha = d as f64 / (n as f64 * eps_sq);
    let ld = gram.logdet(alpha)?;
    Ok(length_bits(ld, n, d) + n as f64 * (m as f64 / n as f64).log2())
}

/// L in bits of `n` samples in `d` dimensions from `logdet(I + α Gram)` (nats).
pub(crate) fn length_bits(logdet: f64, n: usize, d: usize) -> f64 {
    (n + d) as f64 / 2.0 * logdet / LN_2
}

/// The Gram matrix of `n` rows on its smaller side, formed once for every
/// α it is wanted at (a set's own length and its unions' differ only in α).
#[derive(Debug, Clone)]
pub(crate) struct Gram {
    side: usize,
    values: Vec<f64>,
}

impl Gram {
    /// Of the `n × d` rows `x` (row-major).
    pub(crate) fn of(x: &[f64], n: usize, d: usize) -> Self {
        if n == 0 {
            return Self {
                side: 0,
                values: Vec::new(),
            };
        }
        let (side, values) = small_gram(x, n, d);
        Self { side, values }
    }

    /// `I + α·G` on the Gram's side.
    fn regularised(&self, alpha: f64) -> Vec<f64> {
        let mut g = self.values.clone();
        add_identity(&mut g, self.side, alpha);
        g
    }

    /// `logdet(I + α·G)` (0 for no rows).
    pub(crate) fn logdet(&self, alpha: f64) -> Result<f64> {
        if self.side == 0 {
            return Ok(0.0);
        }
        logdet_spd(&self.regularised(alpha), self.side)
    }
}

/// `XXᵀ` (`n ≤ d`) or `XᵀX`, with its size.
fn small_gram(x: &[f64], n: usize, d: usize) -> (usize, Vec<f64>) {
    if n <= d {
        (n, matmul_abt_f64(x, x, n, n, d))
    } else {
        let xt = transpose(x, n, d);
        (d, matmul_abt_f64(&xt, &xt, d, d, n))
    }
}

fn transpose(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut t = vec![0f64; n * d];
    for i in 0..n {
        for j in 0..d {
            t[j * n + i] = x[i * d + j];
        }
    }
    t
}

/// `g ← I + α g` for the `n × n` matrix `g`.
fn add_identity(g: &mut [f64], n: usize, alpha: f64) {
    g.iter_mut().for_each(|v| *v *= alpha);
    (0..n).for_each(|i| g[i * (n + 1)] += 1.0);
}

fn logdet_spd(g: &[f64], n: usize) -> Result<f64> {
    if n == 1 {
        return positive_log(g[0], 0);
    }
    spd_logdet_f64(g, n).map_err(|(row, pivot)| Error::NotPositiveDefinite {
        index: 0,
        row,
        pivot,
    })
}

fn positive_log(v: f64, row: usize) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v.ln())
    } else {
        Err(Error::NotPositiveDefinite {
            index: 0,
            row,
            pivot: v,
        })
    }
}

/// A set C prepared to be grown by partners of `s` samples each: F =
/// I + α·Gram(C) = L Lᵀ on C's smaller side, factored once, with
/// `α = d / ((n_C + s) ε²)` (each union's own α, as its coding length
/// takes). Then for a partner P
///
/// ```text
/// d side (n_C > d):  det(I + α(XᵀX + PᵀP)) = det F · det(I + α YYᵀ),
///                      Y = P L⁻ᵀ
/// sample side:       det(I + α[[K_CC, K_CP], [K_PC, K_PP]])
///                      = det F · det(I + α K_PP − α² YYᵀ),
///                      Y = P Xᵀ L⁻ᵀ = P (L⁻¹X)ᵀ
/// ```
///
/// so each partner costs one product with `B` (L⁻¹, or L⁻¹X formed once)
/// and a factorisation of its own size: one number for a single sample
/// (MICL's queries, clustering's singletons). On the d side B is lower
/// triangular and the product skips its zeros.
#[derive(Debug, Clone)]
pub(crate) struct Grown {
    /// C's rows, kept only for partners of `s ≥ d` (the union's own Gram).
    base: Vec<f64>,
    n_c: usize,
    d: usize,
    s: usize,
    alpha: f64,
    /// `B`: L⁻¹ (`d × d`, lower triangular) on the d side, L⁻¹X
    /// (`n_C × d`) on the sample side; empty for an empty C.
    reduced: Vec<f64>,
    nb: usize,
    logdet_f: f64,
}

impl Grown {
    /// C's rows `base: [n_C, d]` and their [`Gram`], to be grown by
    /// partners of `s` samples.
    pub(crate) fn with_gram(
        base: &[f64],
        gram: &Gram,
        d: usize,
        s: usize,
        eps_sq: f64,
    ) -> Result<Self> {
        let n_c = base.len() / d;
        let alpha = d as f64 / ((n_c + s) as f64 * eps_sq);
        let nb = gram.side;
        let (reduced, logdet_f) = if nb == 0 {
            (Vec::new(), 0.0)
        } else {
            let (li, logdet) =
                inverse_factor_one(gram.regularised(alpha), nb).map_err(|(row, pivot)| {
                    Error::NotPositiveDefinite {
                        index: 0,
                        row,
                        pivot,
                    }
                })?;
            match n_c > d {
                true => (li, logdet),
                false => (lower_times(&li, base, nb, d), logdet),
            }
        };
        Ok(Self {
            base: if s >= d { base.to_vec() } else { Vec::new() },
            n_c,
            d,
            s,
            alpha,
            reduced,
            nb,
            logdet_f,
        })
    }

    /// `logdet(I + α Gram(C ∪ P))` for partners of `s` rows each, their
    /// rows `[p·s, d]` one partner after another.
    pub(crate) fn logdets(&self, partners: &[f64]) -> Result<Vec<f64>> {
        let (d, s, alpha) = (self.d, self.s, self.alpha);
        let rows = partners.len() / d;
        assert_eq!(rows * d, partners.len(), "partner rows");
        assert_eq!(rows % s, 0, "partners of {s} rows");
        if s >= d {
            // A Schur complement as large as the space: the union's own d × d
            // Gram, C's part formed once, is cheaper.
            let xt = transpose(&self.base, self.n_c, d);
            let g_c = matmul_abt_f64(&xt, &xt, d, d, self.n_c);
            return partners
                .chunks(s * d)
                .map(|p| {
                    let pt = transpose(p, s, d);
                    let mut g = matmul_abt_f64(&pt, &pt, d, d, s);
                    g.iter_mut().zip(&g_c).for_each(|(a, b)| *a += b);
                    add_identity(&mut g, d, alpha);
                    logdet_spd(&g, d)
                })
                .collect();
        }
        // Blocks of partners side by side, each product on one core: the
        // products and their results stay a block in size, however many
        // partners there are (MICL's queries are all a set's samples).
        let per = PARTNER_ROWS.div_ceil(s) * s;
        let blocks = partners
            .par_chunks(per * d)
            .map(|block| self.logdets_of_block(block))
            .collect::<Result<Vec<_>>>()?;
        Ok(blocks.concat())
    }

    /// [`Self::logdets`] of partners of fewer than `d` rows each, on this
    /// thread.
    fn logdets_of_block(&self, partners: &[f64]) -> Result<Vec<f64>> {
        let (d, s, nb, alpha) = (self.d, self.s, self.nb, self.alpha);
        let rows = partners.len() / d;
        let d_side = self.n_c > d;
        let y = match (nb, d_side) {
            (0, _) => Vec::new(),
            (_, true) => times_lower_t(partners, &self.reduced, rows, d),
            (_, false) => matmul_abt_f64_on(partners, &self.reduced, rows, nb, d, Threads::One),
        };
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(u, v)| u * v).sum::<f64>();
        (0..rows / s)
            .map(|p| {
                let r0 = p * s;
                let mut schur = vec![0f64; s * s];
                for a in 0..s {
                    for b in 0..s {
                        let q = if nb == 0 {
                            0.0
                        } else {
                            dot(
                                &y[(r0 + a) * nb..(r0 + a + 1) * nb],
                                &y[(r0 + b) * nb..(r0 + b + 1) * nb],
                            )
                        };
                        schur[a * s + b] = if d_side {
                            alpha * q
                        } else {
                            let row = |i: usize| &partners[(r0 + i) * d..(r0 + i + 1) * d];
                            alpha * dot(row(a), row(b)) - alpha * alpha * q
                        };
                    }
                    schur[a * s + a] += 1.0;
                }
                Ok(self.logdet_f + logdet_spd(&schur, s)?)
            })
            .collect()
    }
}

/// Columns (rows) per product in [`times_lower_t`] ([`lower_times`]):
/// narrower skips more of the zeros, wider runs the gemm kernels better.
const LOWER_BLOCK: usize = 64;

/// `P Lᵀ` for `p: [rows, n]` and a lower-triangular `l: [n, n]` (both
/// row-major), on this thread: column j of the result needs P's first
/// j + 1 columns only, so each block of columns is one product over the
/// columns it needs, about half the work of the full product.
fn times_lower_t(p: &[f64], l: &[f64], rows: usize, n: usize) -> Vec<f64> {
    let mut y = vec![0f64; rows * n];
    for c0 in (0..n).step_by(LOWER_BLOCK) {
        let c1 = (c0 + LOWER_BLOCK).min(n);
        // Y[:, c0..c1] = P[:, ..c1] · L[c0..c1, ..c1]ᵀ.
        matmul(
            &mut y[c0..],
            n,
            View::new(p, rows, n).block(0..rows, 0..c1),
            View::new(l, n, n).block(c0..c1, 0..c1).t(),
            None,
            Threads::One,
        );
    }
    y
}

/// `L X` for a lower-triangular `l: [n, n]` and `x: [n, d]` (row-major),
/// on every core: row i of the result needs X's first i + 1 rows only.
fn lower_times(l: &[f64], x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut y = vec![0f64; n * d];
    for r0 in (0..n).step_by(LOWER_BLOCK) {
        let r1 = (r0 + LOWER_BLOCK).min(n);
        // Y[r0..r1, :] = L[r0..r1, ..r1] · X[..r1, :].
        matmul(
            &mut y[r0 * d..],
            d,
            View::new(l, n, n).block(r0..r1, 0..r1),
            View::new(x, n, d).block(0..r1, 0..d),
            None,
            Threads::All,
        );
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logdet_gram(x: &[f64], n: usize, d: usize, alpha: f64) -> Result<f64> {
        Gram::of(x, n, d).logdet(alpha)
    }

    fn grown(base: &[f64], d: usize, s: usize, eps_sq: f64) -> Result<Grown> {
        Grown::with_gram(base, &Gram::of(base, base.len() / d, d), d, s, eps_sq)
    }

    fn rows(n: usize, d: usize, seed: u64) -> Vec<f64> {
        crate::host::normals(n * d, seed)
            .iter()
            .map(|&v| v as f64)
            .collect()
    }

    #[test]
    fn unions_match_direct_log_determinants_on_both_sides() {
        let (d, eps_sq) = (6, 0.3);
        // Base smaller and larger than d; partners of sizes 1, 2, 1 and 8
        // (above d: the union's own Gram).
        for n_c in [0, 3, 11] {
            let base = rows(n_c, d, 1 + n_c as u64);
            let sizes = [1, 2, 1, 8];
            let partners = rows(12, d, 99);
            let mut at = 0;
            for (p, &s) in sizes.iter().enumerate() {
                let rows = &partners[at * d..(at + s) * d];
                at += s;
                let got = grown(&base, d, s, eps_sq).unwrap().logdets(rows).unwrap()[0];
                let mut union = base.clone();
                union.extend_from_slice(rows);
                let n = n_c + s;
                let want = logdet_gram(&union, n, d, d as f64 / (n as f64 * eps_sq)).unwrap();
                assert!(
                    (got - want).abs() < 1e-9 * want.abs().max(1.0),
                    "n_c {n_c}, partner {p}: {got} vs {want}"
                );
            }
            // Two partners of one size at once give each its own value.
            let two = grown(&base, d, 1, eps_sq)
                .unwrap()
                .logdets(&partners[..2 * d])
                .unwrap();
            let first = grown(&base, d, 1, eps_sq)
                .unwrap()
                .logdets(&partners[..d])
                .unwrap();
            assert!((two[0] - first[0]).abs() < 1e-12);
            // Many partners at once (several blocks side by side) give each
            // the value it gets alone, in order.
            let many = rows(2 * 300, d, 7);
            let pairs = grown(&base, d, 2, eps_sq).unwrap();
            let all = pairs.logdets(&many).unwrap();
            assert_eq!(all.len(), 300);
            for (p, got) in all.iter().enumerate() {
                let alone = pairs.logdets(&many[p * 2 * d..(p + 1) * 2 * d]).unwrap()[0];
                assert!((got - alone).abs() < 1e-12, "pair {p}: {got} vs {alone}");
            }
        }
    }

    #[test]
    fn unions_in_more_dimensions_than_a_product_block() {
        // d = 150 spans three column blocks of the triangular product.
        let (d, eps_sq) = (150, 0.5);
        for n_c in [40, 150, 151, 400] {
            let base = rows(n_c, d, 5 + n_c as u64);
            for s in [1, 3] {
                let partners = rows(4 * s, d, 17);
                let got = grown(&base, d, s, eps_sq)
                    .unwrap()
                    .logdets(&partners)
                    .unwrap();
                for (p, got) in got.iter().enumerate() {
                    let mut union = base.clone();
                    union.extend_from_slice(&partners[p * s * d..(p + 1) * s * d]);
                    let n = n_c + s;
                    let want = logdet_gram(&union, n, d, d as f64 / (n as f64 * eps_sq)).unwrap();
                    assert!(
                        (got - want).abs() < 1e-9 * want.abs(),
                        "n_c {n_c}, s {s}, partner {p}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn both_gram_sides_give_one_log_determinant() {
        let (n, d) = (5, 9);
        let x = rows(n, d, 3);
        let wide = logdet_gram(&x, n, d, 0.7).unwrap();
        let xt = transpose(&x, n, d);
        let tall = logdet_gram(&xt, d, n, 0.7).unwrap();
        assert!((wide - tall).abs() < 1e-10);
    }
}
