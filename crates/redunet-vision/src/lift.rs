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
        relu(circular_conv2d(x, self.kernels.val()))
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
