//! Cyclic shifts and translations, for evaluating invariance ("all shifts")
//! and for augmentation. Positive amounts move content towards higher
//! indices, wrapping around.

use burn::tensor::Tensor;

/// Shifts 1D signals `[m, C, T]` cyclically by `s` along time.
pub fn cyclic_shift(x: Tensor<3>, s: i64) -> Tensor<3> {
    let t = x.dims()[2] as i64;
    x.roll_dim(s.rem_euclid(t.max(1)), 2)
}

/// Translates images `[m, C, H, W]` cyclically by `(dy, dx)`.
pub fn translate(x: Tensor<4>, dy: i64, dx: i64) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    x.roll_dim(dy.rem_euclid(h.max(1) as i64), 2)
        .roll_dim(dx.rem_euclid(w.max(1) as i64), 3)
}

/// The shifts `0, stride, 2·stride, …` below `n` ("all shifts" on a grid).
pub fn stride_grid(n: usize, stride: usize) -> Vec<i64> {
    (0..n).step_by(stride.max(1)).map(|s| s as i64).collect()
}
