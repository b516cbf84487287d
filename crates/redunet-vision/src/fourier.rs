//! The dense DFT of [`crate::spectral::Dft`] on host memory, for CPU
//! devices.
//!
//! As tensor operations the transform is a handful of small products
//! (`K = W` or `H`, a few dozen) separated by reshapes and permutations that
//! each copy the whole batch, and the permutation to the frequency-major
//! layout `[P, 2C, m]` is a strided gather over all of it: on flex, lifting
//! aside, the transform cost more than a spectral layer's moments. Here the
//! same products run as direct gemm calls with the same shapes, and each
//! layout change is one cache-blocked pass written straight into its
//! destination, so the spectra are bit for bit the tensor path's.

use rayon::prelude::*;
use redunet_core::cpu::gemm::{self, Threads, View};
use redunet_core::cpu::{Scatter, vectorized};

/// The tables of a dense transform on the host (see `Dft`'s fields).
pub(crate) struct Tables {
    pub height: usize,
    pub width: usize,
    /// `[W, Pw]` each.
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    /// `[Pw, W]` each, multiplicities included.
    pub icos: Vec<f32>,
    pub isin: Vec<f32>,
    /// `[H, H]` each, for images.
    pub rows: Option<(Vec<f32>, Vec<f32>)>,
}

/// `dst = a·b`, or `dst ± a·b` when `acc` is `Some(±1)`, for row-major
/// operands of `[rows, k]` and `[k, n]`, on this thread.
fn product(dst: &mut [f32], a: &[f32], rows: usize, b: &[f32], n: usize, acc: Option<f32>) {
    let k = b.len() / n.max(1);
    gemm::matmul(
        dst,
        n,
        View::new(a, rows, k),
        View::new(b, k, n),
        acc,
        Threads::One,
    );
}

/// `[B, R, S]` to `[B, S, R]` (each of the `B` matrices transposed).
fn swap(x: &[f32], r: usize, s: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    let block = r * s;
    if block == 0 {
        return out;
    }
    for (o, x) in out.chunks_mut(block).zip(x.chunks(block)) {
        for (i, row) in x.chunks(s).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                o[j * r + i] = v;
            }
        }
    }
    out
}

/// Samples per tile: a tile's signals and intermediates stay in L2
/// (about 0.4 MB at the conv2d benchmark's 16 channels of 28×28).
const TILE: usize = 4;

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tables({} × {})", self.height, self.width)
    }
}

impl Tables {
    fn pw(&self) -> usize {
        self.width / 2 + 1
    }

    /// Where frequency `p` (row-major over `[H, Pw]`) sits in one signal's
    /// row of the last products' output: `[Pw, H]` for images, `[Pw]` for
    /// 1D signals.
    fn place(&self, p: usize) -> usize {
        match self.rows {
            Some(_) => (p % self.pw()) * self.height + p / self.pw(),
            None => p,
        }
    }

    /// Signals `[m, C, H·W]` to the half spectrum `[P, 2C, m]` (real parts
    /// in rows `0..C`, imaginary parts in `C..2C`), by exactly the tensor
    /// path's products: along W by the tables `cos`, `−sin`, then for
    /// images along H as `(a_r + i a_i)(cos − i sin)`.
    ///
    /// A few samples at a time, each tile on one core with its
    /// intermediates in cache; a product's entries do not depend on how
    /// many rows it has, so the result is the whole batch's product's.
    pub fn forward(&self, z: &[f32], m: usize, c: usize) -> Vec<f32> {
        let (p, c2, t) = (self.height * self.pw(), 2 * c, self.height * self.width);
        assert_eq!(z.len(), m * c * t, "signals [m, C, H·W]");
        let mut out = vec![0f32; p * c2 * m];
        if out.is_empty() {
            return out;
        }
        let places: Vec<usize> = (0..p).map(|q| self.place(q)).collect();
        let dst = Scatter::new(&mut out);
        z.par_chunks(TILE * c * t)
            .enumerate()
            .for_each(|(tile, z)| {
                let (i0, n) = (tile * TILE, z.len() / (c * t));
                let (re, im) = self.forward_rows(z, n * c);
                // Every row of the destination receives a contiguous run
                // of the tile's samples.
                for (q, &at) in places.iter().enumerate() {
                    for (part, src) in [&re, &im].into_iter().enumerate() {
                        for ch in 0..c {
                            let row = (q * c2 + part * c + ch) * m + i0;
                            for i in 0..n {
                                // SAFETY: `row + i < P·2C·m = out.len()`,
                                // and the tiles write disjoint samples.
                                unsafe { dst.write(row + i, src[(i * c + ch) * p + at]) };
                            }
                        }
                    }
                }
            });
        out
    }

    /// The products of [`Self::forward`] for `signals` rows of `H·W`
    /// values: per signal its `P` frequencies in [`Self::place`] order.
    fn forward_rows(&self, z: &[f32], signals: usize) -> (Vec<f32>, Vec<f32>) {
        let (h, pw) = (self.height, self.pw());
        let rows = signals * h;
        let mut ar = vec![0f32; rows * pw];
        let mut ai = vec![0f32; rows * pw];
        product(&mut ar, z, rows, &self.cos, pw, None);
        product(&mut ai, z, rows, &self.sin, pw, None);
        vectorized(|| ai.iter_mut().for_each(|v| *v = -*v));
        let Some((hc, hs)) = &self.rows else {
            return (ar, ai);
        };
        let (cr, ci) = (swap(&ar, h, pw), swap(&ai, h, pw));
        let n = signals * pw;
        let (mut vr, mut vi) = (ar, ai);
        product(&mut vr, &cr, n, hc, h, None);
        product(&mut vr, &ci, n, hs, h, Some(1.0));
        product(&mut vi, &ci, n, hc, h, None);
        product(&mut vi, &cr, n, hs, h, Some(-1.0));
        (vr, vi)
    }

    /// Half spectra `[P, 2C, m]` back to signals `[m, C, H·W]`, by the
    /// tensor path's products: for images along H as
    /// `(v_r + i v_i)(cos + i sin)`, then along W by the weighted tables.
    /// Tiled as [`Self::forward`].
    pub fn inverse(&self, x: &[f32], m: usize, c: usize) -> Vec<f32> {
        let (h, w) = (self.height, self.width);
        let (p, c2) = (h * self.pw(), 2 * c);
        assert_eq!(x.len(), p * c2 * m, "spectra [P, 2C, m]");
        let places: Vec<usize> = (0..p).map(|q| self.place(q)).collect();
        let mut out = vec![0f32; m * c * h * w];
        if out.is_empty() {
            return out;
        }
        out.par_chunks_mut(TILE * c * h * w)
            .enumerate()
            .for_each(|(tile, out)| {
                let (i0, n) = (tile * TILE, out.len() / (c * h * w));
                let gather = |part: usize| {
                    let mut v = vec![0f32; n * c * p];
                    for (q, &at) in places.iter().enumerate() {
                        for ch in 0..c {
                            let src = &x[(q * c2 + part * c + ch) * m + i0..][..n];
                            for (i, &s) in src.iter().enumerate() {
                                v[(i * c + ch) * p + at] = s;
                            }
                        }
                    }
                    v
                };
                self.inverse_rows(gather(0), gather(1), n * c, out);
            });
        out
    }

    /// The products of [`Self::inverse`] for `signals` rows of spectra in
    /// [`Self::place`] order (real, imaginary), into `out`, `[signals, H·W]`.
    fn inverse_rows(&self, re: Vec<f32>, im: Vec<f32>, signals: usize, out: &mut [f32]) {
        let (h, w, pw) = (self.height, self.width, self.pw());
        let (br, bi) = match &self.rows {
            Some((hc, hs)) => {
                let n = signals * pw;
                let mut br = vec![0f32; n * h];
                product(&mut br, &re, n, hc, h, None);
                product(&mut br, &im, n, hs, h, Some(-1.0));
                let mut bi = vec![0f32; n * h];
                product(&mut bi, &im, n, hc, h, None);
                product(&mut bi, &re, n, hs, h, Some(1.0));
                (swap(&br, pw, h), swap(&bi, pw, h))
            }
            None => (re, im),
        };
        product(out, &br, signals * h, &self.icos, w, None);
        product(out, &bi, signals * h, &self.isin, w, Some(-1.0));
    }
}
