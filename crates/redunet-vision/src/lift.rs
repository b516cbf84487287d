//! Lifting: fixed random multi-channel circular convolutions followed by
//! ReLU, the sparse-coding front end of the invariant ReduNets.
//!
//! Kernels have entries N(0, 1) drawn from a seed. Each input is padded
//! circularly by `k − 1` on the trailing side and cross-correlated (as a
//! deep-learning "conv" computes it), so the output keeps the input's length
//! and a cyclic shift of the input shifts the output by the same amount.

use burn::module::{Module, Param};
use burn::tensor::module::{conv1d, conv2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData, activation::relu};
use rayon::prelude::*;
use redunet_core::cpu::on_host;
use redunet_core::host::to_vec;

pub use redunet_core::host::normals;

/// Lifting of 1D signals `[m, in, T]` to `[m, out, T]`: a Burn module whose
/// parameters are the kernels, so a trained network can move them.
#[derive(Module, Debug)]
pub struct Lift1d {
    /// `[out, in, k]`.
    pub kernels: Param<Tensor<3>>,
}

impl Lift1d {
    /// `out_channels` kernels of `kernel` taps over `in_channels` channels, N(0, 1) from `seed`.
    pub fn random(
        out_channels: usize,
        in_channels: usize,
        kernel: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let v = normals(out_channels * in_channels * kernel, seed);
        Self {
            kernels: Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [out_channels, in_channels, kernel]),
                device,
            )),
        }
    }

    /// Circular convolution with the kernels, then ReLU: `[m, C_in, T]` to `[m, C_out, T]`.
    pub fn apply(&self, x: Tensor<3>) -> Tensor<3> {
        let kernels = self.kernels.val();
        let k = kernels.dims()[2];
        let [m, c, t] = x.dims();
        // Circular padding of k − 1 on the trailing side; k − 1 may exceed T.
        let reps = (k - 1).div_ceil(t.max(1)) + 1;
        let padded = x.repeat_dim(2, reps).slice([0..m, 0..c, 0..t + k - 1]);
        relu(conv1d(
            padded,
            kernels,
            None,
            ConvOptions::new([1], [0], [1], 1),
        ))
    }
}

/// Lifting of images `[m, in, H, W]` to `[m, out, H, W]` (a module, as
/// [`Lift1d`]).
#[derive(Module, Debug)]
pub struct Lift2d {
    /// `[out, in, k, k]`.
    pub kernels: Param<Tensor<4>>,
}

impl Lift2d {
    /// `out_channels` kernels of `kernel × kernel` taps over `in_channels` channels, N(0, 1) from `seed`.
    pub fn random(
        out_channels: usize,
        in_channels: usize,
        kernel: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let v = normals(out_channels * in_channels * kernel * kernel, seed);
        Self {
            kernels: Param::from_tensor(Tensor::from_data(
                TensorData::new(v, [out_channels, in_channels, kernel, kernel]),
                device,
            )),
        }
    }

    /// Circular 2D convolution with the kernels, then ReLU: `[m, C_in, H, W]` to `[m, C_out, H, W]`.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let kernels = self.kernels.val();
        let [out, inp, k, _] = kernels.dims();
        let [m, c, h, w] = x.dims();
        let device = x.device();
        // The host kernel does flex's arithmetic for few channels (its
        // direct path: products and sums in the same order, no fused
        // multiply-adds), so it takes over exactly there; with more
        // channels flex multiplies by gemm, which stays. The kernels' own
        // device decides too: a plain input batch meets tracked kernels in
        // training (`to_device` keeps a tensor's autodiff association), and
        // the host kernel would cut them out of the graph.
        if on_host(&device)
            && on_host(&kernels.device())
            && inp == c
            && (1..=4).contains(&inp)
            && (1..=16).contains(&out)
            && k > 0
            && m * h * w > 0
        {
            let read = "host tensors read back";
            let (xs, ks) = (to_vec(x).expect(read), to_vec(kernels).expect(read));
            let y = lift_host(&xs, [m, c, h, w], &ks, out, k);
            return Tensor::from_data(TensorData::new(y, [m, out, h, w]), &device);
        }
        relu(circular_conv2d(x, kernels))
    }
}

/// Output columns per vector of the host kernel, and output channels per
/// block (a block's accumulators fill eight AVX-512 registers).
const LANES: usize = 16;
const BLOCK: usize = 8;

/// [`Lift2d::apply`] on host memory: each output value is
/// `Σ_{ci, kh, kw} x·κ` summed in that order from 0, each product rounded
/// before its sum, as flex's direct convolution computes it, then ReLU
/// (NaN kept). One sample per task: its circularly padded channels stay in
/// cache while a block of output channels × 16 columns of a row
/// accumulates in registers over all taps.
fn lift_host(
    x: &[f32],
    [m, c, h, w]: [usize; 4],
    kernels: &[f32],
    out: usize,
    k: usize,
) -> Vec<f32> {
    let taps = k * k;
    let wide = w.div_ceil(LANES) * LANES;
    let (hp, wp) = (h + k - 1, wide + k - 1);
    // Weights per block of output channels: [block][ci][tap][BLOCK], the
    // spare channels of the last block zero (their sums are dropped).
    let blocks = out.div_ceil(BLOCK);
    let mut wt = vec![0f32; blocks * c * taps * BLOCK];
    for o in 0..out {
        for ci in 0..c {
            for t in 0..taps {
                wt[((o / BLOCK * c + ci) * taps + t) * BLOCK + o % BLOCK] =
                    kernels[(o * c + ci) * taps + t];
            }
        }
    }
    let mut y = vec![0f32; m * out * h * w];
    y.par_chunks_mut(out * h * w)
        .zip(x.par_chunks(c * h * w))
        .for_each(|(y, x)| {
            // Padded by wrapping around (as `circular_conv2d`), then with
            // zeros up to the vector width (read only by dropped columns).
            let mut pad = vec![0f32; c * hp * wp];
            for ci in 0..c {
                for r in 0..hp {
                    let src = &x[(ci * h + r % h) * w..][..w];
                    let dst = &mut pad[(ci * hp + r) * wp..][..wp];
                    for (col, d) in dst[..w + k - 1].iter_mut().enumerate() {
                        *d = src[col % w];
                    }
                }
            }
            for oh in 0..h {
                for col in (0..wide).step_by(LANES) {
                    for b in 0..blocks {
                        // Row `kh` of input channel `ci` from this column on,
                        // and the weights of tap (kh, 0) of the block.
                        let rows = |ci: usize, kh: usize| &pad[(ci * hp + oh + kh) * wp + col..];
                        let weights = |ci: usize, kh: usize| {
                            &wt[(b * c + ci) * taps * BLOCK + kh * k * BLOCK..][..k * BLOCK]
                        };
                        let acc = accumulate(c, k, &rows, &weights);
                        let n = LANES.min(w - col);
                        for (o, a) in acc.iter().enumerate().take(out - b * BLOCK) {
                            let dst = &mut y[((b * BLOCK + o) * h + oh) * w + col..][..n];
                            for (d, &v) in dst.iter_mut().zip(a) {
                                *d = if v.is_nan() || v > 0.0 { v } else { 0.0 };
                            }
                        }
                    }
                }
            }
        });
    y
}

/// The sums of one block of output channels over 16 columns of a row:
/// `acc[o][l] = Σ_{ci, kh, kw} row(ci, kh)[kw + l] · weights(ci, kh)[kw·8 + o]`
/// in that order from 0, each product rounded before its sum.
fn accumulate<'a>(
    c: usize,
    k: usize,
    rows: &dyn Fn(usize, usize) -> &'a [f32],
    weights: &dyn Fn(usize, usize) -> &'a [f32],
) -> [[f32; LANES]; BLOCK] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { x86::accumulate_avx512(c, k, rows, weights) };
    }
    accumulate_portable(c, k, rows, weights)
}

/// [`accumulate`] on any CPU.
fn accumulate_portable<'a>(
    c: usize,
    k: usize,
    rows: &dyn Fn(usize, usize) -> &'a [f32],
    weights: &dyn Fn(usize, usize) -> &'a [f32],
) -> [[f32; LANES]; BLOCK] {
    let mut acc = [[0f32; LANES]; BLOCK];
    for ci in 0..c {
        for kh in 0..k {
            let (row, ws) = (rows(ci, kh), weights(ci, kh));
            for kw in 0..k {
                for (o, a) in acc.iter_mut().enumerate() {
                    let wv = ws[kw * BLOCK + o];
                    for (l, a) in a.iter_mut().enumerate() {
                        *a += row[kw + l] * wv;
                    }
                }
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK, LANES};
    use std::arch::x86_64::*;

    /// [`super::accumulate`] with the eight accumulators in AVX-512
    /// registers (separate multiply and add, as the portable loop).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn accumulate_avx512<'a>(
        c: usize,
        k: usize,
        rows: &dyn Fn(usize, usize) -> &'a [f32],
        weights: &dyn Fn(usize, usize) -> &'a [f32],
    ) -> [[f32; LANES]; BLOCK] {
        let mut acc = [_mm512_setzero_ps(); BLOCK];
        for ci in 0..c {
            for kh in 0..k {
                let (row, ws) = (rows(ci, kh), weights(ci, kh));
                assert!(row.len() >= k - 1 + LANES && ws.len() >= k * BLOCK);
                for kw in 0..k {
                    // SAFETY: `kw + 16 ≤ row.len()` and `kw·8 + 8 ≤ ws.len()`
                    // (asserted above).
                    let v = unsafe { _mm512_loadu_ps(row.as_ptr().add(kw)) };
                    for (o, a) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(unsafe { *ws.get_unchecked(kw * BLOCK + o) });
                        *a = _mm512_add_ps(_mm512_mul_ps(v, wv), *a);
                    }
                }
            }
        }
        let mut out = [[0f32; LANES]; BLOCK];
        for (o, a) in out.iter_mut().zip(acc) {
            // SAFETY: `o` holds 16 floats.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr(), a) };
        }
        out
    }
}

/// Circular cross-correlation of images `[m, in, H, W]` with kernels
/// `[out, in, k, k]`: `y[o, h, w] = Σ x[i, (h+a) mod H, (w+b) mod W]·κ[o, i, a, b]`.
/// The padding wraps around, so translating the input translates the
/// output; a plain function of its tensors, so gradients reach the kernels.
pub fn circular_conv2d(x: Tensor<4>, kernels: Tensor<4>) -> Tensor<4> {
    let k = kernels.dims()[2];
    let [m, c, h, w] = x.dims();
    let rh = (k - 1).div_ceil(h.max(1)) + 1;
    let rw = (k - 1).div_ceil(w.max(1)) + 1;
    let padded =
        x.repeat_dim(2, rh)
            .repeat_dim(3, rw)
            .slice([0..m, 0..c, 0..h + k - 1, 0..w + k - 1]);
    conv2d(
        padded,
        kernels,
        None,
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vector_kernel_is_the_portable_loop_bit_for_bit() {
        let (c, k) = (3, 5);
        let values = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| {
                    ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / 1e6 - 8.0
                })
                .collect()
        };
        let pad = values(c * k * 64, 1);
        let wt = values(c * k * k * BLOCK, 2);
        let rows = |ci: usize, kh: usize| &pad[(ci * k + kh) * 64..];
        let weights = |ci: usize, kh: usize| &wt[(ci * k + kh) * k * BLOCK..][..k * BLOCK];
        let bits =
            |a: [[f32; LANES]; BLOCK]| a.concat().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let portable = bits(accumulate_portable(c, k, &rows, &weights));
        assert_eq!(bits(accumulate(c, k, &rows, &weights)), portable);
        assert!(portable.iter().any(|&b| f32::from_bits(b) != 0.0));
    }
}
