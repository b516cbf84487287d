//! The vector layer's soft-membership step, fused on the host:
//!
//! ```text
//! [Z E | Z C_1 | … | Z C_k]           one product per block of rows,
//! π̂_ij = softmax_j(−λ ‖C_j z_i‖),    per row, from the block just made,
//! z_i ← normalize(z_i + η E z_i − η Σ_j γ_j π̂_ij C_j z_i).
//! ```
//!
//! The product is nearly all the arithmetic of a layer; as tensor
//! operations its `[m, (k+1)·d]` result is written out, then read back by
//! separate passes for the norms, the softmax, the weighted sum and the
//! normalisation, each its own thread hand-off. Here each block of rows is
//! multiplied on all threads into a buffer that stays in the last-level
//! cache, and one pass per row, the rows spread over the threads, consumes
//! it.

use super::gemm::{Threads, View, matmul};
use rayon::prelude::*;

/// Rows per block: a product of 512 rows already runs at the kernel's full
/// rate on all threads, and the block's `[rows, (k+1)·d]` result (17.7 MB
/// at d = 784, k = 10) is read back from the last-level cache. (Blocks
/// per thread, each multiplied on one thread, measured no faster: every
/// call packs the operators anew.)
pub const BLOCK: usize = 512;

/// Rows per task of the per-row pass.
const ROWS_PER_TASK: usize = 16;

/// The operators and scalars of one vector layer, on the host.
#[derive(Clone, Copy, Debug)]
pub struct SoftStep<'a> {
    /// E, `d × d` row-major.
    pub e: &'a [f32],
    /// `[C_1 | … | C_k]`, `d × k·d` row-major.
    pub c_cat: &'a [f32],
    /// γ_j of each stored class.
    pub gamma: &'a [f64],
    /// Step size η.
    pub eta: f64,
    /// Softmax sharpness λ.
    pub lambda: f64,
}

impl SoftStep<'_> {
    /// Applies the step to the rows of `z: [m, d]` (row-major) in place,
    /// leaving the normalised output: a row's output depends on that row
    /// alone, and its block's product is formed before the row pass, so no
    /// second `[m, d]` buffer (fresh memory at every layer) is needed.
    /// `y` holds a block's product; a caller that keeps it from layer to
    /// layer spares the allocator 17.7 MB of fresh pages per layer (at
    /// d = 784, k = 10). Its contents on entry do not matter.
    pub fn apply_in_place(&self, z: &mut [f32], m: usize, d: usize, y: &mut Vec<f32>) {
        let k = self.gamma.len();
        assert_eq!(z.len(), m * d, "input [{m}, {d}]");
        assert_eq!(self.e.len(), d * d, "E is d × d");
        assert_eq!(self.c_cat.len(), d * k * d, "one C_j per γ_j");
        let width = (k + 1) * d;
        let e = View::new(self.e, d, d);
        let c = View::new(self.c_cat, d, k * d);
        y.resize(BLOCK.min(m) * width, 0.0);
        for start in (0..m).step_by(BLOCK) {
            let rows = BLOCK.min(m - start);
            let zb = &mut z[start * d..(start + rows) * d];
            let zv = View::new(zb, rows, d);
            matmul(y, width, zv, e, None, Threads::All);
            matmul(&mut y[d..], width, zv, c, None, Threads::All);
            zb.par_chunks_mut(ROWS_PER_TASK * d)
                .zip(y.par_chunks(ROWS_PER_TASK * width))
                .for_each(|(zs, ys)| {
                    for (zi, yi) in zs.chunks_mut(d).zip(ys.chunks(width)) {
                        self.row(zi, yi, d);
                    }
                });
        }
    }

    /// One row `o = z`: memberships from `yi = [E z | C_1 z | …]`, then
    /// the normalised update in place.
    fn row(&self, o: &mut [f32], yi: &[f32], d: usize) {
        let mut logits = vec![0f64; self.gamma.len()];
        for (j, l) in logits.iter_mut().enumerate() {
            let seg = &yi[(j + 1) * d..(j + 2) * d];
            let sq = sum_of_squares(seg);
            *l = -self.lambda * sq.sqrt().max(1e-8);
        }
        let top = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = logits.iter().map(|l| (l - top).exp()).sum();
        for (o, &ye) in o.iter_mut().zip(&yi[..d]) {
            *o += self.eta as f32 * ye;
        }
        for (j, &l) in logits.iter().enumerate() {
            let coef = -self.eta * self.gamma[j] * (l - top).exp() / total;
            // A sharp softmax leaves memberships like e^-200: below 1e-20 a
            // term cannot move an f32 output, and its products would be
            // subnormal (about 100× slower where they are not flushed).
            if coef.abs() < 1e-20 {
                continue;
            }
            let coef = coef as f32;
            for (o, &v) in o.iter_mut().zip(&yi[(j + 1) * d..(j + 2) * d]) {
                *o += coef * v;
            }
        }
        let sq = sum_of_squares(o);
        let norm = sq.sqrt().max(1e-8) as f32;
        o.iter_mut().for_each(|v| *v /= norm);
    }
}

/// `Σ x_i²`, in 16 independent f32 lanes (a single running sum would wait
/// on each addition's latency, which made these sums a tenth of a layer),
/// with the lanes added in f64.
pub fn sum_of_squares(x: &[f32]) -> f64 {
    let mut lanes = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v * v;
        }
    }
    let tail: f64 = tail.iter().map(|&v| (v as f64) * (v as f64)).sum();
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail
}
