//! Small SPD blocks in f64: the Cholesky factor L, its inverse L⁻¹, the
//! inverse A⁻¹ = L⁻ᵀL⁻¹ and logdet A = 2 Σ log L_ii, for [`WIDTH`]
//! matrices side by side.
//!
//! The recursion of [`crate::linalg`] ends in these blocks, and the spectral
//! layers consist of nothing else: 2D MNIST gives 4,620 inverses of 32×32
//! per layer. One matrix at a time, the inner products are chains of
//! dependent f64 multiply-adds, bound by latency rather than by the
//! arithmetic units. Here element (i, j) of eight matrices is one SIMD
//! value, so every step of the algorithm is one instruction on eight
//! independent lanes (one AVX-512 register, or two AVX2 ones, chosen at run
//! time). The lanes are written with explicit vector operations because
//! the compiler, left to itself, vectorises the wrong loop (across columns,
//! with gathers).
//!
//! Every lane performs exactly the operations of the one-matrix algorithm,
//! in the same order, each rounded on its own (no fused multiply-adds), so a
//! matrix gets bit-identical results whichever batch or instruction set
//! factors it.

/// Matrices handled side by side.
pub const WIDTH: usize = 8;

/// What the algorithm needs of a value: one f64, or [`WIDTH`] lanes.
trait Lane: Copy {
    fn splat(v: f64) -> Self;
    /// `self − x·y`, the product rounded before the difference.
    fn sub_mul(self, x: Self, y: Self) -> Self;
    /// `self + x·y`, the product rounded before the sum.
    fn add_mul(self, x: Self, y: Self) -> Self;
    fn mul(self, x: Self) -> Self;
    fn div(self, x: Self) -> Self;
    fn sqrt(self) -> Self;
    /// [`cholesky_in_place`]; one matrix at a time (`f64`) takes
    /// [`cholesky_by_rows`], which gives the same bits.
    #[inline(always)]
    fn cholesky(l: &mut [Self], n: usize) -> Vec<Self> {
        cholesky_in_place(l, n)
    }
}

impl Lane for f64 {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn sub_mul(self, x: Self, y: Self) -> Self {
        self - x * y
    }
    #[inline(always)]
    fn add_mul(self, x: Self, y: Self) -> Self {
        self + x * y
    }
    #[inline(always)]
    fn mul(self, x: Self) -> Self {
        self * x
    }
    #[inline(always)]
    fn div(self, x: Self) -> Self {
        self / x
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn cholesky(l: &mut [Self], n: usize) -> Vec<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above.
                return unsafe { x86::rows_avx512(l, n) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above.
                return unsafe { x86::rows_avx2(l, n) };
            }
        }
        cholesky_in_place(l, n)
    }
}

/// The factorisation of one matrix or of a group, element (i, j) at
/// `i·n + j`, row-major.
struct Factored<V> {
    /// L in the lower triangle (the input's values above it).
    cholesky: Vec<V>,
    /// A⁻¹ (full, exactly symmetric).
    inverse: Vec<V>,
    /// L⁻¹ (lower triangular, zeros above), when asked for.
    factor: Option<Vec<V>>,
    /// The pivots before their square roots, to find failures.
    pivots: Vec<V>,
}

/// Cholesky, L⁻¹ and A⁻¹ = L⁻ᵀL⁻¹ of the lower triangle of `a`:
///
/// ```text
/// L_ij = (A_ij − Σ_{k<j} L_ik L_jk) / L_jj,   L_ii = √(A_ii − Σ_{k<i} L_ik²),
/// row i of L⁻¹ = (e_i − Σ_{k<i} L_ik · row k of L⁻¹) / L_ii,
/// A⁻¹ = Σ_k (row k of L⁻¹)ᵀ (row k of L⁻¹)   (lower triangle, mirrored).
/// ```
///
/// A failed pivot (≤ 0, NaN, ∞) is not stopped at: it poisons what depends
/// on it, and the caller reads the first one from `pivots`.
#[inline(always)]
fn factor_values<V: Lane>(mut l: Vec<V>, n: usize, need_factor: bool) -> Factored<V> {
    let pivots = V::cholesky(&mut l, n);
    let li = inverse_of_factor(&l, n);
    // The lower triangle, then its mirror: each element the same sum in the
    // same order either way, so the result is exactly symmetric.
    let mut inverse = vec![V::splat(0.0); n * n];
    for k in 0..n {
        let row = &li[k * n..k * n + k + 1];
        for (i, &ri) in row.iter().enumerate() {
            for (dst, &rj) in inverse[i * n..i * n + i + 1].iter_mut().zip(row) {
                *dst = dst.add_mul(ri, rj);
            }
        }
    }
    for i in 0..n {
        for j in 0..i {
            inverse[j * n + i] = inverse[i * n + j];
        }
    }
    Factored {
        cholesky: l,
        inverse,
        factor: need_factor.then_some(li),
        pivots,
    }
}

/// L⁻¹ (zeros above the diagonal) from the Cholesky factor in the lower
/// triangle of `l`, row by row:
/// `row i of L⁻¹ = (e_i − Σ_{k<i} L_ik · row k of L⁻¹) / L_ii`.
#[inline(always)]
fn inverse_of_factor<V: Lane>(l: &[V], n: usize) -> Vec<V> {
    let mut li = vec![V::splat(0.0); n * n];
    for i in 0..n {
        let (done, rest) = li.split_at_mut(i * n);
        let row = &mut rest[..n];
        row[i] = V::splat(1.0);
        for k in 0..i {
            let f = l[i * n + k];
            for (r, &v) in row[..=k].iter_mut().zip(&done[k * n..k * n + k + 1]) {
                *r = r.sub_mul(f, v);
            }
        }
        let inv_d = V::splat(1.0).div(l[i * n + i]);
        for r in row[..=i].iter_mut() {
            *r = r.mul(inv_d);
        }
    }
    li
}

/// Overwrites the lower triangle of `l` with its Cholesky factor; returns
/// the pivots before their square roots.
#[inline(always)]
fn cholesky_in_place<V: Lane>(l: &mut [V], n: usize) -> Vec<V> {
    let mut pivots = Vec::with_capacity(n);
    for i in 0..n {
        for j in 0..=i {
            let mut s = l[i * n + j];
            for k in 0..j {
                s = s.sub_mul(l[i * n + k], l[j * n + k]);
            }
            l[i * n + j] = if i == j {
                pivots.push(s);
                s.sqrt()
            } else {
                s.div(l[j * n + j])
            };
        }
    }
    pivots
}

/// Columns factored per panel of [`cholesky_by_rows`]: the panel's
/// columns (rows × 32 × 8 bytes) stay in L2 while the rest of the matrix
/// is updated from them.
const PANEL: usize = 32;

/// [`cholesky_in_place`] of one matrix with [`WIDTH`] consecutive rows in
/// the lanes, bit for bit the same factor and pivots.
///
/// One matrix at a time, [`cholesky_in_place`]'s inner loop is a chain of
/// dependent f64 operations, bound by their latency (MICL's fit of ten
/// 500 × 500 classes took 1.94 s with it, 0.42 s with this). Here every
/// element still receives its terms `L_ik·L_jk` one at a time in
/// ascending k, each product rounded before its difference, and then its
/// own square root or division by `L_jj`: only the order in which
/// *elements* are worked on changes. A panel of
/// [`PANEL`] columns is finished column by column; the columns right of
/// it then take the panel's terms in tiles of 16 rows × 4 columns, whose
/// chains run side by side. The lower triangle is read and overwritten
/// with L; the values above it are left as they were.
#[inline(always)]
fn cholesky_by_rows<V: Wide>(l: &mut [f64], n: usize) -> Vec<f64> {
    // Column-major with the rows padded to whole lanes: w[j·np + i] = A_ij
    // for i ≥ j. The lanes also compute entries above the diagonal, which
    // start at zero and are never read as terms of the lower triangle.
    let np = n.div_ceil(WIDTH) * WIDTH;
    let mut w = vec![0f64; np * n];
    for i in 0..n {
        for j in 0..=i {
            w[j * np + i] = l[i * n + j];
        }
    }
    let mut pivots = vec![0f64; n];
    for k0 in (0..n).step_by(PANEL) {
        let k1 = (k0 + PANEL).min(n);
        for j in k0..k1 {
            let first = j / WIDTH * WIDTH;
            for i in (first..np).step_by(WIDTH) {
                let mut acc = V::load(&w[j * np + i..]);
                for k in k0..j {
                    acc = acc.sub_mul(V::load(&w[k * np + i..]), V::splat(w[k * np + j]));
                }
                acc.store(&mut w[j * np + i..]);
            }
            let s = w[j * np + j];
            pivots[j] = s;
            let d = s.sqrt();
            w[j * np + j] = d;
            let column = &mut w[j * np..(j + 1) * np];
            let whole = (j + 1).next_multiple_of(WIDTH).min(np);
            column[j + 1..whole].iter_mut().for_each(|v| *v /= d);
            for i in (whole..np).step_by(WIDTH) {
                V::load(&column[i..])
                    .div(V::splat(d))
                    .store(&mut column[i..]);
            }
        }
        let mut j0 = k1;
        while j0 < n {
            let cols = (n - j0).min(4);
            // Tiles of two lanes of rows while two remain, then one.
            let mut i = j0 / WIDTH * WIDTH;
            while i < np {
                let two = np - i >= 2 * WIDTH;
                match (two, cols == 4) {
                    (true, true) => trailing_tile::<V, 2, 4>(&mut w, np, i, j0, k0..k1),
                    (false, true) => trailing_tile::<V, 1, 4>(&mut w, np, i, j0, k0..k1),
                    (true, false) => (0..cols)
                        .for_each(|c| trailing_tile::<V, 2, 1>(&mut w, np, i, j0 + c, k0..k1)),
                    (false, false) => (0..cols)
                        .for_each(|c| trailing_tile::<V, 1, 1>(&mut w, np, i, j0 + c, k0..k1)),
                }
                i += if two { 2 * WIDTH } else { WIDTH };
            }
            j0 += cols;
        }
    }
    for i in 0..n {
        for j in 0..=i {
            l[i * n + j] = w[j * np + i];
        }
    }
    pivots
}

/// Rows `i0 .. i0 + R·WIDTH` of columns `j0 .. j0 + C` (column-major `w`,
/// `np` rows) take the terms of columns `ks`, one k after another.
#[inline(always)]
fn trailing_tile<V: Wide, const R: usize, const C: usize>(
    w: &mut [f64],
    np: usize,
    i0: usize,
    j0: usize,
    ks: std::ops::Range<usize>,
) {
    let mut acc = [[V::splat(0.0); C]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        for (c, a) in row.iter_mut().enumerate() {
            *a = V::load(&w[(j0 + c) * np + i0 + r * WIDTH..]);
        }
    }
    for k in ks {
        let column = &w[k * np..(k + 1) * np];
        let x: [V; R] = std::array::from_fn(|r| V::load(&column[i0 + r * WIDTH..]));
        for c in 0..C {
            let y = V::splat(column[j0 + c]);
            for r in 0..R {
                acc[r][c] = acc[r][c].sub_mul(x[r], y);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, a) in row.iter().enumerate() {
            a.store(&mut w[(j0 + c) * np + i0 + r * WIDTH..]);
        }
    }
}

/// The first failed pivot (row, value) among `pivots`.
fn first_failure(pivots: impl IntoIterator<Item = f64>) -> Option<(usize, f64)> {
    pivots
        .into_iter()
        .enumerate()
        .find(|(_, s)| s.is_nan() || *s <= 0.0 || s.is_infinite())
}

/// logdet A = 2 Σ log L_ii, from the diagonal of L in order.
fn logdet(diagonal: impl Iterator<Item = f64>) -> f64 {
    2.0 * diagonal.map(f64::ln).sum::<f64>()
}

/// The Cholesky factor of one SPD matrix `a` (row-major; L in the lower
/// triangle, the input's values above it) and its logdet, or the first
/// failed pivot (row, value).
pub(crate) fn cholesky_one(mut a: Vec<f64>, n: usize) -> Result<(Vec<f64>, f64), (usize, f64)> {
    if let Some(failure) = first_failure(f64::cholesky(&mut a, n)) {
        return Err(failure);
    }
    let logdet = logdet((0..n).map(|i| a[i * n + i]));
    Ok((a, logdet))
}

/// L⁻¹ and logdet of one SPD matrix `a` (its lower triangle, row-major):
/// [`factor_one`]'s factor and logdet bit for bit, without forming A⁻¹.
pub(crate) fn inverse_factor_one(
    mut a: Vec<f64>,
    n: usize,
) -> Result<(Vec<f64>, f64), (usize, f64)> {
    if let Some(failure) = first_failure(f64::cholesky(&mut a, n)) {
        return Err(failure);
    }
    let logdet = logdet((0..n).map(|i| a[i * n + i]));
    Ok((inverse_of_factor(&a, n), logdet))
}

/// One matrix's results.
pub(crate) struct Single {
    pub inverse: Vec<f64>,
    pub factor: Option<Vec<f64>>,
    pub logdet: f64,
}

/// Factors one SPD matrix `a` (its lower triangle, row-major). On failure
/// returns the row and value of the first non-positive pivot.
pub(crate) fn factor_one(a: Vec<f64>, n: usize, need_factor: bool) -> Result<Single, (usize, f64)> {
    let f = factor_values(a, n, need_factor);
    if let Some(failure) = first_failure(f.pivots) {
        return Err(failure);
    }
    let logdet = logdet((0..n).map(|i| f.cholesky[i * n + i]));
    Ok(Single {
        inverse: f.inverse,
        factor: f.factor,
        logdet,
    })
}

/// [`WIDTH`] matrices' results, element e of lane t at `e·WIDTH + t`.
pub(crate) struct Group {
    pub inverse: Vec<f64>,
    pub factor: Option<Vec<f64>>,
    pub logdet: [f64; WIDTH],
    /// Per lane, the first failed pivot (row, value); the lane's other
    /// results are then meaningless.
    pub failed: [Option<(usize, f64)>; WIDTH],
}

/// Factors [`WIDTH`] matrices at once, element e of lane t at
/// `a[e·WIDTH + t]` (lower triangles read); each lane's results equal
/// [`factor_one`]'s bit for bit.
pub(crate) fn factor_group(a: &[f64], n: usize, need_factor: bool) -> Group {
    assert_eq!(a.len(), n * n * WIDTH, "{WIDTH} matrices {n}×{n}");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { x86::group_avx512(a, n, need_factor) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { x86::group_avx2(a, n, need_factor) };
        }
    }
    group_by_lane(a, n, need_factor)
}

/// The portable path: one lane after another.
fn group_by_lane(a: &[f64], n: usize, need_factor: bool) -> Group {
    let nn = n * n;
    let mut group = Group {
        inverse: vec![0.0; nn * WIDTH],
        factor: need_factor.then(|| vec![0.0; nn * WIDTH]),
        logdet: [0.0; WIDTH],
        failed: [None; WIDTH],
    };
    for t in 0..WIDTH {
        let lane = (0..nn).map(|e| a[e * WIDTH + t]).collect();
        let f = factor_values(lane, n, need_factor);
        group.failed[t] = first_failure(f.pivots);
        group.logdet[t] = logdet((0..n).map(|i| f.cholesky[i * n + i]));
        for (e, v) in f.inverse.iter().enumerate() {
            group.inverse[e * WIDTH + t] = *v;
        }
        if let (Some(to), Some(from)) = (&mut group.factor, &f.factor) {
            for (e, v) in from.iter().enumerate() {
                to[e * WIDTH + t] = *v;
            }
        }
    }
    group
}

/// A value of [`WIDTH`] lanes, moved to and from memory.
trait Wide: Lane {
    fn load(v: &[f64]) -> Self;
    fn store(self, out: &mut [f64]);
}

/// The vector path, inlined into each instruction-set variant.
#[inline(always)]
fn group_wide<V: Wide>(a: &[f64], n: usize, need_factor: bool) -> Group {
    let values = a.chunks_exact(WIDTH).map(V::load).collect();
    let f = factor_values::<V>(values, n, need_factor);
    let flat = |v: &[V]| flat(v.iter().copied());
    let (logdet, failed) = lane_logdets(&f.cholesky, &f.pivots, n);
    Group {
        inverse: flat(&f.inverse),
        factor: f.factor.as_deref().map(flat),
        logdet,
        failed,
    }
}

/// Lane values to plain f64s, element e of lane t at `e·WIDTH + t`.
#[inline(always)]
fn flat<V: Wide>(v: impl ExactSizeIterator<Item = V>) -> Vec<f64> {
    let mut out = vec![0.0; v.len() * WIDTH];
    for (x, o) in v.zip(out.chunks_exact_mut(WIDTH)) {
        x.store(o);
    }
    out
}

/// Each lane's logdet and first failed pivot, from L and the pivots.
#[inline(always)]
fn lane_logdets<V: Wide>(cholesky: &[V], pivots: &[V], n: usize) -> Logdets {
    let diagonal = flat((0..n).map(|i| cholesky[i * n + i]));
    let pivots = flat(pivots.iter().copied());
    let mut logdets = [0.0; WIDTH];
    let mut failed = [None; WIDTH];
    for t in 0..WIDTH {
        failed[t] = first_failure((0..n).map(|i| pivots[i * WIDTH + t]));
        logdets[t] = logdet((0..n).map(|i| diagonal[i * WIDTH + t]));
    }
    (logdets, failed)
}

/// [`WIDTH`] log-determinants and first failed pivots (row, value).
pub(crate) type Logdets = ([f64; WIDTH], [Option<(usize, f64)>; WIDTH]);

#[inline(always)]
fn logdet_wide<V: Wide>(a: &[f64], n: usize) -> Logdets {
    let mut values: Vec<V> = a.chunks_exact(WIDTH).map(V::load).collect();
    let pivots = cholesky_in_place(&mut values, n);
    lane_logdets(&values, &pivots, n)
}

/// The log-determinants of [`WIDTH`] matrices laid out as for
/// [`factor_group`], by the Cholesky factorisation alone (no inverse):
/// each lane's equals [`cholesky_one`]'s, and so [`factor_one`]'s, bit for
/// bit.
pub(crate) fn logdet_group(a: &[f64], n: usize) -> Logdets {
    assert_eq!(a.len(), n * n * WIDTH, "{WIDTH} matrices {n}×{n}");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { x86::logdet_avx512(a, n) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { x86::logdet_avx2(a, n) };
        }
    }
    logdet_by_lane(a, n)
}

/// The portable path of [`logdet_group`]: one lane after another.
fn logdet_by_lane(a: &[f64], n: usize) -> Logdets {
    let mut out = ([0.0; WIDTH], [None; WIDTH]);
    for t in 0..WIDTH {
        match cholesky_one((0..n * n).map(|e| a[e * WIDTH + t]).collect(), n) {
            Ok((_, l)) => out.0[t] = l,
            Err(e) => out.1[t] = Some(e),
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The lanes as AVX-512 and AVX2 registers. These types exist only
    //! inside the functions below, which run only where the CPU has the
    //! instructions.

    use super::{Group, Lane, Logdets, WIDTH, Wide, cholesky_by_rows, group_wide, logdet_wide};
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    struct Avx512(__m512d);

    #[derive(Clone, Copy)]
    struct Avx2(__m256d, __m256d);

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn group_avx512(a: &[f64], n: usize, need_factor: bool) -> Group {
        group_wide::<Avx512>(a, n, need_factor)
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn group_avx2(a: &[f64], n: usize, need_factor: bool) -> Group {
        group_wide::<Avx2>(a, n, need_factor)
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_avx512(l: &mut [f64], n: usize) -> Vec<f64> {
        cholesky_by_rows::<Avx512>(l, n)
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn rows_avx2(l: &mut [f64], n: usize) -> Vec<f64> {
        cholesky_by_rows::<Avx2>(l, n)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn logdet_avx512(a: &[f64], n: usize) -> Logdets {
        logdet_wide::<Avx512>(a, n)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn logdet_avx2(a: &[f64], n: usize) -> Logdets {
        logdet_wide::<Avx2>(a, n)
    }

    // SAFETY (all blocks below): these values are created only inside
    // `group_avx512` / `group_avx2`, which run on CPUs with the features;
    // loads and stores read and write exactly WIDTH elements of slices
    // checked to hold them.
    impl Lane for Avx512 {
        #[inline(always)]
        fn splat(v: f64) -> Self {
            unsafe { Self(_mm512_set1_pd(v)) }
        }
        #[inline(always)]
        fn sub_mul(self, x: Self, y: Self) -> Self {
            unsafe { Self(_mm512_sub_pd(self.0, _mm512_mul_pd(x.0, y.0))) }
        }
        #[inline(always)]
        fn add_mul(self, x: Self, y: Self) -> Self {
            unsafe { Self(_mm512_add_pd(self.0, _mm512_mul_pd(x.0, y.0))) }
        }
        #[inline(always)]
        fn mul(self, x: Self) -> Self {
            unsafe { Self(_mm512_mul_pd(self.0, x.0)) }
        }
        #[inline(always)]
        fn div(self, x: Self) -> Self {
            unsafe { Self(_mm512_div_pd(self.0, x.0)) }
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            unsafe { Self(_mm512_sqrt_pd(self.0)) }
        }
    }

    impl Wide for Avx512 {
        #[inline(always)]
        fn load(v: &[f64]) -> Self {
            assert!(v.len() >= WIDTH);
            unsafe { Self(_mm512_loadu_pd(v.as_ptr())) }
        }
        #[inline(always)]
        fn store(self, out: &mut [f64]) {
            assert!(out.len() >= WIDTH);
            unsafe { _mm512_storeu_pd(out.as_mut_ptr(), self.0) }
        }
    }

    impl Lane for Avx2 {
        #[inline(always)]
        fn splat(v: f64) -> Self {
            unsafe { Self(_mm256_set1_pd(v), _mm256_set1_pd(v)) }
        }
        #[inline(always)]
        fn sub_mul(self, x: Self, y: Self) -> Self {
            unsafe {
                Self(
                    _mm256_sub_pd(self.0, _mm256_mul_pd(x.0, y.0)),
                    _mm256_sub_pd(self.1, _mm256_mul_pd(x.1, y.1)),
                )
            }
        }
        #[inline(always)]
        fn add_mul(self, x: Self, y: Self) -> Self {
            unsafe {
                Self(
                    _mm256_add_pd(self.0, _mm256_mul_pd(x.0, y.0)),
                    _mm256_add_pd(self.1, _mm256_mul_pd(x.1, y.1)),
                )
            }
        }
        #[inline(always)]
        fn mul(self, x: Self) -> Self {
            unsafe { Self(_mm256_mul_pd(self.0, x.0), _mm256_mul_pd(self.1, x.1)) }
        }
        #[inline(always)]
        fn div(self, x: Self) -> Self {
            unsafe { Self(_mm256_div_pd(self.0, x.0), _mm256_div_pd(self.1, x.1)) }
        }
        #[inline(always)]
        fn sqrt(self) -> Self {
            unsafe { Self(_mm256_sqrt_pd(self.0), _mm256_sqrt_pd(self.1)) }
        }
    }

    impl Wide for Avx2 {
        #[inline(always)]
        fn load(v: &[f64]) -> Self {
            assert!(v.len() >= WIDTH);
            unsafe {
                Self(
                    _mm256_loadu_pd(v.as_ptr()),
                    _mm256_loadu_pd(v.as_ptr().add(4)),
                )
            }
        }
        #[inline(always)]
        fn store(self, out: &mut [f64]) {
            assert!(out.len() >= WIDTH);
            unsafe {
                _mm256_storeu_pd(out.as_mut_ptr(), self.0);
                _mm256_storeu_pd(out.as_mut_ptr().add(4), self.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n × n` SPD matrices `G Gᵀ/n + shift·I` from a simple deterministic
    /// stream, row-major.
    fn spd(n: usize, seed: u64, shift: f64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let g: Vec<f64> = (0..n * n).map(|_| next()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| g[i * n + k] * g[j * n + k]).sum::<f64>() / n as f64;
            }
            a[i * n + i] += shift;
        }
        a
    }

    fn interleave(mats: &[Vec<f64>], n: usize) -> Vec<f64> {
        let mut a = vec![0.0; n * n * WIDTH];
        for (t, m) in mats.iter().enumerate() {
            for (e, &v) in m.iter().enumerate() {
                a[e * WIDTH + t] = v;
            }
        }
        a
    }

    fn lane(v: &[f64], t: usize) -> Vec<u64> {
        v.iter()
            .skip(t)
            .step_by(WIDTH)
            .map(|x| x.to_bits())
            .collect()
    }

    #[test]
    fn lanes_equal_one_matrix_bit_for_bit_on_every_path() {
        for n in [1, 7, 33] {
            let mut mats: Vec<Vec<f64>> = (0..WIDTH as u64).map(|s| spd(n, s, 0.01)).collect();
            // Lane 3 is indefinite: its failure must be the one-matrix one.
            mats[3][n * n - 1] = -1.0;
            let a = interleave(&mats, n);
            for group in [factor_group(&a, n, true), group_by_lane(&a, n, true)] {
                for (t, m) in mats.iter().enumerate() {
                    match factor_one(m.clone(), n, true) {
                        Ok(one) => {
                            assert_eq!(group.failed[t], None, "n {n} lane {t}");
                            let bits =
                                |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                            assert_eq!(
                                lane(&group.inverse, t),
                                bits(&one.inverse),
                                "n {n} lane {t}"
                            );
                            let factor = group.factor.as_ref().expect("asked for");
                            let one_factor = one.factor.expect("asked for");
                            assert_eq!(lane(factor, t), bits(&one_factor), "n {n} lane {t}");
                            assert_eq!(group.logdet[t].to_bits(), one.logdet.to_bits());
                            // The factor alone, without the inverse.
                            let (li, logdet) = inverse_factor_one(m.clone(), n).expect("SPD");
                            assert_eq!(bits(&li), bits(&one_factor), "n {n} lane {t}");
                            assert_eq!(logdet.to_bits(), one.logdet.to_bits());
                        }
                        Err((row, pivot)) => {
                            let (r, p) = group.failed[t].expect("the failure is reported");
                            assert_eq!((r, p.to_bits()), (row, pivot.to_bits()), "n {n} lane {t}");
                            let (r, p) = inverse_factor_one(m.clone(), n).expect_err("indefinite");
                            assert_eq!((r, p.to_bits()), (row, pivot.to_bits()), "n {n} lane {t}");
                        }
                    }
                }
                assert!(
                    group.failed[3].is_some(),
                    "n {n}: the indefinite lane fails"
                );
            }
            // Cholesky alone: the same logdets and failures.
            for (logdets, failed) in [logdet_group(&a, n), logdet_by_lane(&a, n)] {
                for (t, m) in mats.iter().enumerate() {
                    match factor_one(m.clone(), n, false) {
                        Ok(one) => assert_eq!(logdets[t].to_bits(), one.logdet.to_bits()),
                        Err((row, pivot)) => {
                            let (r, p) = failed[t].expect("the failure is reported");
                            assert_eq!((r, p.to_bits()), (row, pivot.to_bits()), "n {n} lane {t}");
                        }
                    }
                }
                assert!(failed[3].is_some() && failed.iter().filter(|f| f.is_some()).count() == 1);
            }
        }
    }

    #[test]
    fn rows_in_lanes_factor_one_matrix_bit_for_bit() {
        // Sizes around the lane width, the panel and the 16-row tiles.
        for n in [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257] {
            let spd_matrix = spd(n, n as u64, 0.01);
            let mut indefinite = spd_matrix.clone();
            indefinite[(n / 2) * (n + 1)] = -5.0;
            for a in [spd_matrix, indefinite] {
                let mut expected = a.clone();
                let pivots = cholesky_in_place(&mut expected, n);
                let bits = |v: &[f64]| {
                    v.iter()
                        .map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() })
                        .collect::<Vec<_>>()
                };
                let mut paths: Vec<(&str, Vec<f64>, Vec<f64>)> = Vec::new();
                let mut l = a.clone();
                let p = f64::cholesky(&mut l, n);
                paths.push(("dispatch", l, p));
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        let mut l = a.clone();
                        // SAFETY: the CPU has AVX-512F, checked just above.
                        let p = unsafe { x86::rows_avx512(&mut l, n) };
                        paths.push(("avx512", l, p));
                    }
                    if std::arch::is_x86_feature_detected!("avx2") {
                        let mut l = a.clone();
                        // SAFETY: the CPU has AVX2, checked just above.
                        let p = unsafe { x86::rows_avx2(&mut l, n) };
                        paths.push(("avx2", l, p));
                    }
                }
                for (path, l, p) in paths {
                    assert_eq!(bits(&l), bits(&expected), "{path} n {n}: factor");
                    assert_eq!(bits(&p), bits(&pivots), "{path} n {n}: pivots");
                }
                assert_eq!(
                    first_failure(pivots).is_some(),
                    a[(n / 2) * (n + 1)] == -5.0,
                    "n {n}"
                );
            }
        }
    }

    #[test]
    fn inverse_and_logdet_are_right() {
        let n = 9;
        let a = spd(n, 42, 0.5);
        let f = factor_one(a.clone(), n, false).expect("SPD");
        for i in 0..n {
            for j in 0..n {
                let v: f64 = (0..n).map(|k| a[i * n + k] * f.inverse[k * n + j]).sum();
                assert!(
                    (v - f64::from(u8::from(i == j))).abs() < 1e-10,
                    "A·A⁻¹ at ({i}, {j})"
                );
                assert_eq!(
                    f.inverse[i * n + j].to_bits(),
                    f.inverse[j * n + i].to_bits()
                );
            }
        }
        let (_, logdet) = cholesky_one(a.clone(), n).expect("SPD");
        assert_eq!(logdet.to_bits(), f.logdet.to_bits());
        // logdet of a diagonal matrix.
        let mut d = vec![0.0; 9];
        (0..3).for_each(|i| d[i * 4] = (i + 2) as f64);
        let (_, ld) = cholesky_one(d, 3).expect("SPD");
        assert!((ld - (2.0f64 * 3.0 * 4.0).ln()).abs() < 1e-14);
    }
}
