//! Matrix products on host memory through the `gemm` crate (the kernels
//! burn-flex runs, with their AVX-512 variants), on strided views so that
//! transposes and blocks cost no copies.

use super::Scatter;
use gemm::Parallelism;
use rayon::prelude::*;

/// A read-only `rows × cols` matrix inside a slice: element `(i, j)` at
/// `offset + i·rs + j·cs`. Construction checks that every element lies in
/// the slice, which is what makes the products below sound.
/// f32 unless said otherwise; products take either f32 or f64 ([`Real`]).
#[derive(Clone, Copy, Debug)]
pub struct View<'a, T = f32> {
    data: &'a [T],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T: Copy> View<'a, T> {
    /// The row-major `rows × cols` matrix filling the start of `data`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::strided(data, 0, rows, cols, cols, 1)
    }

    /// A general strided view; panics if it reaches outside `data`.
    pub fn strided(
        data: &'a [T],
        offset: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        if rows > 0 && cols > 0 {
            let last = offset + (rows - 1) * rs + (cols - 1) * cs;
            assert!(last < data.len(), "view reaches past its slice");
        }
        Self {
            data,
            offset,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Rows `r` and columns `c` of the view.
    pub fn block(self, r: std::ops::Range<usize>, c: std::ops::Range<usize>) -> Self {
        assert!(r.start <= r.end && r.end <= self.rows && c.start <= c.end && c.end <= self.cols);
        Self {
            offset: self.offset + r.start * self.rs + c.start * self.cs,
            rows: r.end - r.start,
            cols: c.end - c.start,
            ..self
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> T {
        self.data[self.offset + i * self.rs + j * self.cs]
    }

    /// The view copied out, row-major.
    pub fn to_vec(&self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            out.extend((0..self.cols).map(|j| self.at(i, j)));
        }
        out
    }
}

/// The element types of the products: the `gemm` crate's f32 and f64
/// kernels.
pub trait Real: Copy + 'static {
    /// The multiplicative identity (the destination's factor when a
    /// product accumulates).
    const ONE: Self;
}

impl Real for f32 {
    const ONE: Self = 1.0;
}

impl Real for f64 {
    const ONE: Self = 1.0;
}

/// How a product may use the thread pool: a single call on its own uses
/// every core, calls that already run side by side use one each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// This thread only.
    One,
    /// Every thread of the current rayon pool.
    All,
}

impl Threads {
    fn parallelism(self) -> Parallelism {
        match self {
            Threads::One => Parallelism::None,
            Threads::All => Parallelism::Rayon(rayon::current_num_threads()),
        }
    }
}

/// `dst = a·b` (or `dst = dst + β a·b` when `acc` is `Some(β)`), in f32 or f64, where
/// `dst` is row-major `a.rows × b.cols` with row stride `ld`.
pub fn matmul<T: Real>(
    dst: &mut [T],
    ld: usize,
    a: View<'_, T>,
    b: View<'_, T>,
    acc: Option<T>,
    threads: Threads,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert!(ld >= n, "row stride below the width");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ld + n <= dst.len(), "destination too small");
    // SAFETY: `dst` was checked to hold the m × n result at row stride
    // `ld`, and `&mut dst` cannot alias the shared slices behind `a` and `b`.
    unsafe { matmul_into(dst.as_mut_ptr(), ld, a, b, acc, threads) }
}

/// [`matmul`] into a raw destination.
///
/// # Safety
/// `dst` must be valid for writes (and reads, with `acc`) of the
/// `a.rows × b.cols` result at row stride `ld`, none of which alias `a`,
/// `b` or anything another thread touches meanwhile.
unsafe fn matmul_into<T: Real>(
    dst: *mut T,
    ld: usize,
    a: View<'_, T>,
    b: View<'_, T>,
    acc: Option<T>,
    threads: Threads,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if acc.is_none() {
            for i in 0..m {
                // SAFETY: row i of the result lies in `dst` (the contract);
                // written through the pointer, as `dst` may be uninitialised.
                unsafe { std::ptr::write_bytes(dst.add(i * ld), 0, n) };
            }
        }
        return;
    }
    // SAFETY: the views were checked to lie inside their slices, and the
    // caller guarantees the destination.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            ld as isize,
            acc.is_some(),
            a.data.as_ptr().add(a.offset),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.offset),
            b.cs as isize,
            b.rs as isize,
            T::ONE,
            acc.unwrap_or(T::ONE),
            false,
            false,
            false,
            threads.parallelism(),
        )
    }
}

/// Splits `0..n` into nearly equal blocks of about `target` (at least one).
fn blocks(n: usize, target: usize) -> Vec<std::ops::Range<usize>> {
    let count = n.div_ceil(target).max(1);
    (0..count)
        .map(|b| b * n / count..(b + 1) * n / count)
        .collect()
}

/// `XᵀX` of `x: [rows, d]` into the row-major `d × d` `dst`, as a symmetric
/// rank-k product: only the blocks on and below the diagonal are
/// multiplied (about half the work of the full product), side by side on
/// all threads, and the upper triangle is mirrored from the lower.
pub fn gram(dst: &mut [f32], x: View<'_>) {
    let d = x.cols;
    assert!(dst.len() >= d * d, "destination too small");
    // SAFETY: `dst` holds d × d values and is borrowed mutably here.
    unsafe { grams_into(&[Scatter::new(dst)], &[x]) }
}

/// [`gram`] of several matrices with as many columns, e.g. the classes
/// of a batch: the tiles of all of them side by side in one pass, each
/// Gram in a new vector.
pub fn grams(xs: &[View<'_>]) -> Vec<Vec<f32>> {
    let Some(d) = xs.first().map(View::cols) else {
        return Vec::new();
    };
    assert!(xs.iter().all(|x| x.cols == d), "Grams of one size");
    let mut out: Vec<Vec<f32>> = xs.iter().map(|_| Vec::with_capacity(d * d)).collect();
    // Written before being read, so not zeroed first (a pass over
    // 2.5 MB per class at d = 784).
    let dsts: Vec<Scatter> = out
        .iter_mut()
        .map(|v| Scatter::spare(v.spare_capacity_mut()))
        .collect();
    // SAFETY: each destination has room for d × d values and is not
    // otherwise touched until the call returns.
    unsafe { grams_into(&dsts, xs) };
    for v in &mut out {
        // SAFETY: `grams_into` wrote every one of the d × d values (the
        // tiles on and below the diagonal and their mirrors cover them).
        unsafe { v.set_len(d * d) };
    }
    out
}

/// `XᵀX` of every `xs[g]` into `dsts[g]`, row-major `d × d`: the tiles on
/// and below the diagonal of all of them side by side, each mirrored by
/// its own task while in cache. Every value is written, none read before.
///
/// # Safety
/// Each destination must be valid for writes of d × d values, which
/// nothing else touches until this returns.
unsafe fn grams_into(dsts: &[Scatter], xs: &[View<'_>]) {
    let d = xs[0].cols;
    let parts = blocks(d, 128);
    let tiles: Vec<(usize, usize, usize)> = (0..xs.len())
        .flat_map(|g| (0..parts.len()).flat_map(move |i| (0..=i).map(move |j| (g, i, j))))
        .collect();
    tiles.par_iter().for_each(|&(g, i, j)| {
        let (x, out) = (xs[g], dsts[g]);
        let (ri, rj) = (parts[i].clone(), parts[j].clone());
        // SAFETY: the task of tile (i, j), j ≤ i, alone writes the blocks
        // rows ri × columns rj (the product) and rows rj × columns ri (its
        // mirror): distinct pairs give disjoint blocks, all inside d × d.
        unsafe {
            matmul_into(
                out.at(ri.start * d + rj.start),
                d,
                x.t().block(ri.clone(), 0..x.rows),
                x.block(0..x.rows, rj.clone()),
                None,
                Threads::One,
            );
            // On a diagonal tile only its lower triangle is read, so the
            // result is exactly symmetric.
            for c in rj.clone() {
                let start = if i == j { c + 1 } else { ri.start };
                for r in start..ri.end {
                    out.write(c * d + r, out.read(r * d + c));
                }
            }
        }
    });
}

/// `a·bᵀ` in f64 for row-major `a: [m, k]` and `b: [n, k]`, on all
/// threads: the cross products of sample rows that coding lengths need in
/// double precision (their Schur complements subtract nearly equal terms).
pub fn matmul_abt_f64(a: &[f64], b: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
    matmul_abt_f64_on(a, b, m, n, k, Threads::All)
}

/// [`matmul_abt_f64`] on `threads`.
pub fn matmul_abt_f64_on(
    a: &[f64],
    b: &[f64],
    m: usize,
    n: usize,
    k: usize,
    threads: Threads,
) -> Vec<f64> {
    assert_eq!(a.len(), m * k, "a is [{m}, {k}]");
    assert_eq!(b.len(), n * k, "b is [{n}, {k}]");
    let mut dst = vec![0f64; m * n];
    let (a, b) = (View::new(a, m, k), View::new(b, n, k));
    matmul(&mut dst, n, a, b.t(), None, threads);
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &View<'_>, b: &View<'_>) -> Vec<f64> {
        let mut out = vec![0f64; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols)
                    .map(|l| a.at(i, l) as f64 * b.at(l, j) as f64)
                    .sum();
            }
        }
        out
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104729) % 997) as f32 / 997.0) - 0.5)
            .collect()
    }

    #[test]
    fn strided_products_match_the_definition() {
        let a = values(37 * 29, 1);
        let b = values(41 * 37, 2);
        // a: 29 × 37 read as the transpose of a 37 × 29 row-major matrix.
        let av = View::new(&a, 37, 29).t();
        let bv = View::new(&b, 41, 37).t().block(0..37, 3..40);
        let mut dst = vec![1f32; 29 * 40];
        matmul(&mut dst, 40, av, bv, None, Threads::All);
        let want = naive(&av, &bv);
        for i in 0..29 {
            for j in 0..37 {
                assert!((dst[i * 40 + j] as f64 - want[i * 37 + j]).abs() < 1e-4);
            }
            // The padding past the product's width is left alone.
            assert!(dst[i * 40 + 37..i * 40 + 40].iter().all(|&v| v == 1.0));
        }
        // Accumulating with β = −1 subtracts the product.
        let mut acc = vec![2f32; 29 * 37];
        matmul(&mut acc, 37, av, bv, Some(-1.0), Threads::One);
        for (v, w) in acc.iter().zip(&want) {
            assert!((*v as f64 - (2.0 - w)).abs() < 1e-4);
        }
    }

    #[test]
    fn symmetric_gram_is_the_full_product() {
        for (rows, d) in [(300, 301), (5, 130), (64, 1)] {
            let x = values(rows * d, d);
            let xv = View::new(&x, rows, d);
            let mut g = vec![f32::NAN; d * d];
            gram(&mut g, xv);
            let want = naive(&xv.t(), &xv);
            for (v, w) in g.iter().zip(&want) {
                assert!((*v as f64 - w).abs() < 1e-3 * (1.0 + w.abs()), "{v} vs {w}");
            }
            for i in 0..d {
                for j in 0..d {
                    assert_eq!(g[i * d + j], g[j * d + i]);
                }
            }
        }
    }

    #[test]
    fn grams_side_by_side_are_each_gram_bit_for_bit() {
        // Sizes below, at and across the tile width; row counts that
        // differ, one of them zero (its Gram is zero).
        for d in [1, 130, 300] {
            let rows = [7, 0, 260, 129];
            let data = values(rows.iter().sum::<usize>() * d, d);
            let mut start = 0;
            let xs: Vec<View<'_>> = rows
                .iter()
                .map(|&r| {
                    let x = View::strided(&data, start * d, r, d, d, 1);
                    start += r;
                    x
                })
                .collect();
            let together = grams(&xs);
            assert_eq!(together.len(), xs.len());
            for (g, x) in together.iter().zip(&xs) {
                let mut alone = vec![f32::NAN; d * d];
                gram(&mut alone, *x);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(g), bits(&alone), "d {d}, {} rows", x.rows());
            }
            assert!(together[1].iter().all(|&v| v == 0.0));
        }
        assert!(grams(&[]).is_empty());
    }

    #[test]
    #[should_panic(expected = "view reaches past its slice")]
    fn views_outside_their_slice_are_refused() {
        let a = vec![0f32; 10];
        View::new(&a, 3, 4);
    }
}
