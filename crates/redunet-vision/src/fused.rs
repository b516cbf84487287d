//! The spectral layer step fused on the host, for CPU devices.
//!
//! The step is bound by memory traffic, not arithmetic: as tensor operations
//! it materialises `Y = [E; C_1; …; C_k]·v`, `k'+1` times the size of the
//! input (4.4 GB for the translation-10 evaluation set), and then reads it
//! back twice. Here each frequency is handled on its own, its `Y_p` in a
//! buffer that stays in cache: a first pass accumulates the Parseval norms
//! `‖C_j v_i‖²` from `C_j v` (in f32 within a frequency, in f64 across
//! them; the soft memberships need all frequencies before any update), a second forms `Y_p` again and sums it with each
//! sample's coefficients, `v + η E v − Σ_j ηγ_j π̂_ij C_j v`. The products
//! of the first pass are repeated in the second, which is far cheaper than
//! the traffic of keeping them.

use rayon::prelude::*;
use redunet_core::cpu::gemm::{self, Threads, View};
use redunet_core::cpu::vectorized;

/// The operators of one layer on the host: `[P, (k'+1)·2C, 2C]`, row-major,
/// `Y_p = O_p X_p` with E's rows first.
#[derive(Debug)]
pub(crate) struct HostOps {
    pub vertical: Vec<f32>,
    pub p: usize,
    pub c2: usize,
    pub k1: usize,
}

impl HostOps {
    /// From the inverses `[k'+1, P, 2C, 2C]` (E's first), each operator its
    /// inverse times its factor (α, then α_j).
    pub fn from_inverses(inverses: &[f32], p: usize, c2: usize, factors: &[f32]) -> Self {
        let k1 = factors.len();
        let block = c2 * c2;
        assert_eq!(inverses.len(), k1 * p * block, "inverses of the operators");
        let mut vertical = vec![0f32; p * k1 * block];
        vertical
            .par_chunks_mut(k1 * block)
            .enumerate()
            .for_each(|(q, v)| {
                for (j, &a) in factors.iter().enumerate() {
                    let inv = &inverses[(j * p + q) * block..(j * p + q + 1) * block];
                    let out = &mut v[j * block..(j + 1) * block];
                    vectorized(|| out.iter_mut().zip(inv).for_each(|(o, &x)| *o = x * a));
                }
            });
        Self {
            vertical,
            p,
            c2,
            k1,
        }
    }
}

/// `dst[rows × n] = a[rows × k] · b[k × n]` (plus `dst` when `acc`), all
/// row-major and contiguous, on this thread.
fn matmul(dst: &mut [f32], a: &[f32], b: &[f32], rows: usize, k: usize, n: usize, acc: bool) {
    gemm::matmul(
        dst,
        n,
        View::new(a, rows, k),
        View::new(b, k, n),
        acc.then_some(1.0),
        Threads::One,
    );
}

/// The scalars of a layer step: frequency multiplicities, class weights
/// γ_j, step size η and softmax sharpness λ.
#[derive(Clone, Copy)]
pub(crate) struct StepLaw<'a> {
    pub weights: &'a [f64],
    pub gamma: &'a [f64],
    pub eta: f64,
    pub lambda: f64,
}

/// Frequencies handed to one task: enough work per task to amortise it.
fn frequencies_per_task(p: usize) -> usize {
    p.div_ceil(4 * rayon::current_num_threads()).max(1)
}

/// One layer step on a host spectrum `x: [P, 2C, m]`; see
/// `SpectralLayer::step`. `hard` holds the memberships `[k', m]` when the
/// true labels are used, otherwise the soft estimate `softmax(−λ‖C_j v‖)` is
/// formed. Returns the normalised `[P, 2C, m]` output.
pub(crate) fn step(
    ops: &HostOps,
    x: &[f32],
    m: usize,
    law: &StepLaw<'_>,
    hard: Option<&[f32]>,
) -> Vec<f32> {
    let StepLaw {
        weights,
        gamma,
        eta,
        lambda,
    } = *law;
    let (p, c2, k1) = (ops.p, ops.c2, ops.k1);
    let k = k1 - 1;
    let rows = k1 * c2;
    let slab = c2 * m;
    let per = frequencies_per_task(p);

    let memberships: Vec<f64> = match hard {
        Some(h) => h.iter().map(|&v| v as f64).collect(),
        None => {
            let sq = (0..p)
                .into_par_iter()
                .step_by(per)
                .map_init(
                    || (vec![0f32; k * c2 * m], vec![0f32; m]),
                    |(y, part), q0| {
                        let mut acc = vec![0f64; k * m];
                        for q in q0..(q0 + per).min(p) {
                            // The class operators only: E v plays no part
                            // in the memberships.
                            let o = &ops.vertical[(q * rows + c2) * c2..(q + 1) * rows * c2];
                            matmul(y, o, &x[q * slab..(q + 1) * slab], k * c2, c2, m, false);
                            let w = weights[q];
                            // ‖C_j v_i(p)‖² in f32 over the 2C rows of one
                            // frequency (as the tensor path forms it), then
                            // summed over frequencies in f64.
                            vectorized(|| {
                                for j in 0..k {
                                    part.fill(0.0);
                                    for r in 0..c2 {
                                        let row = &y[(j * c2 + r) * m..(j * c2 + r + 1) * m];
                                        for (s, &v) in part.iter_mut().zip(row) {
                                            *s += v * v;
                                        }
                                    }
                                    let a = &mut acc[j * m..(j + 1) * m];
                                    for (s, &v) in a.iter_mut().zip(part.iter()) {
                                        *s += w * v as f64;
                                    }
                                }
                            });
                        }
                        acc
                    },
                )
                .reduce(
                    || vec![0f64; k * m],
                    |mut a, b| {
                        a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                        a
                    },
                );
            // softmax over classes of −λ‖C_j v_i‖, per sample.
            let mut pi = vec![0f64; k * m];
            for i in 0..m {
                let logits: Vec<f64> = (0..k)
                    .map(|j| -lambda * sq[j * m + i].sqrt().max(1e-8))
                    .collect();
                let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = logits.iter().map(|l| (l - top).exp()).sum();
                for j in 0..k {
                    pi[j * m + i] = (logits[j] - top).exp() / z;
                }
            }
            pi
        }
    };
    // Coefficients of [E v, C_1 v, …] per sample: η, −η γ_j π̂_ij.
    let mut coef = vec![eta as f32; k1 * m];
    for j in 0..k {
        for i in 0..m {
            // A sharp softmax leaves memberships like e^-200; in f32 their
            // products are subnormal, which the CPU handles ~100x slower,
            // and below 1e-20 a term cannot move an f32 output anyway.
            let c = -eta * gamma[j] * memberships[j * m + i];
            coef[(j + 1) * m + i] = if c.abs() < 1e-20 { 0.0 } else { c as f32 };
        }
    }

    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(per * slab).enumerate().for_each_init(
        || vec![0f32; rows * m],
        |y, (t, chunk)| {
            for (dq, o_slab) in chunk.chunks_mut(slab).enumerate() {
                let q = t * per + dq;
                let xq = &x[q * slab..(q + 1) * slab];
                let o = &ops.vertical[q * rows * c2..(q + 1) * rows * c2];
                matmul(y, o, xq, rows, c2, m, false);
                vectorized(|| {
                    for (r, (dst, src)) in o_slab.chunks_mut(m).zip(xq.chunks(m)).enumerate() {
                        dst.copy_from_slice(src);
                        for j in 0..k1 {
                            let cj = &coef[j * m..(j + 1) * m];
                            let yr = &y[(j * c2 + r) * m..(j * c2 + r + 1) * m];
                            for ((d, &v), &c) in dst.iter_mut().zip(yr).zip(cj) {
                                *d += c * v;
                            }
                        }
                    }
                });
            }
        },
    );

    // Normalise each sample by its Parseval norm.
    let sq = out
        .par_chunks(per * slab)
        .enumerate()
        .map(|(t, chunk)| {
            let mut acc = vec![0f64; m];
            vectorized(|| {
                for (dq, o_slab) in chunk.chunks(slab).enumerate() {
                    let w = weights[t * per + dq];
                    for row in o_slab.chunks(m) {
                        for (a, &v) in acc.iter_mut().zip(row) {
                            *a += w * (v as f64) * (v as f64);
                        }
                    }
                }
            });
            acc
        })
        .reduce(
            || vec![0f64; m],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let inv: Vec<f32> = sq
        .iter()
        .map(|s| (1.0 / s.sqrt().max(1e-8)) as f32)
        .collect();
    out.par_chunks_mut(m).for_each(|row| {
        vectorized(|| row.iter_mut().zip(&inv).for_each(|(v, s)| *v *= s));
    });
    out
}
