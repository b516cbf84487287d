//! Sparse coding by unrolled optimisation: ISTA for the LASSO
//! `min_x ½‖y − A x‖² + λ‖x‖₁` and LISTA (Gregor and LeCun, 2010), its K
//! iterations unrolled into layers whose matrices and thresholds are
//! learned.
//!
//! Samples are rows: codes `x: [b, n]`, signals `y: [b, m]`, the
//! dictionary `A: [m, n]` (atoms as columns), so `A x` is `x Aᵀ`. One ISTA
//! step from `x` is `soft(x + (y − x Aᵀ) A / L, λ/L)`, i.e.
//! `soft(x S + y W_e, θ)` with `S = I − AᵀA/L`, `W_e = A/L`, `θ = λ/L`,
//! L the largest eigenvalue of `AᵀA`; LISTA learns `W_e`, `S` and one θ per
//! layer, starting from these.

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// `sign(z)·max(|z| − θ, 0)`, the proximal map of `θ‖·‖₁`.
pub fn soft_threshold(z: Tensor<2>, theta: Tensor<2>) -> Tensor<2> {
    relu(z.clone() - theta.clone()) - relu(z.neg() - theta)
}

/// The largest eigenvalue of `AᵀA` (the Lipschitz constant of the LASSO's
/// smooth part), by power iteration.
pub fn lipschitz(a: &Tensor<2>) -> f64 {
    let [_, n] = a.dims();
    let gram = a.clone().transpose().matmul(a.clone());
    let mut v = Tensor::<2>::ones([n, 1], &a.device());
    let mut value = 0.0;
    for _ in 0..200 {
        let w = gram.clone().matmul(v.clone());
        let norm = w.clone().powi_scalar(2).sum().sqrt().into_scalar::<f32>() as f64;
        if norm.is_nan() || norm <= 0.0 {
            return 0.0;
        }
        v = w.div_scalar(norm as f32);
        value = norm;
    }
    value
}

/// `iterations` ISTA steps from `x = 0` for signals `y: [b, m]`.
pub fn ista(a: &Tensor<2>, y: &Tensor<2>, lambda: f64, iterations: usize) -> Tensor<2> {
    let l = lipschitz(a);
    let [b, _] = y.dims();
    let [_, n] = a.dims();
    let device = y.device();
    let we = a.clone().div_scalar(l as f32);
    let s =
        Tensor::<2>::eye(n, &device) - a.clone().transpose().matmul(a.clone()).div_scalar(l as f32);
    let theta = Tensor::<2>::full([1, n], (lambda / l) as f32, &device);
    let drive = y.clone().matmul(we);
    let mut x = Tensor::<2>::zeros([b, n], &device);
    for _ in 0..iterations {
        x = soft_threshold(x.matmul(s.clone()) + drive.clone(), theta.clone());
    }
    x
}

/// LISTA: K layers `x ← soft(x S_k + y W_e, θ_k)` from `x = 0`, with
/// learned `W_e` `[m, n]`, one `S_k` `[n, n]` per layer after the first
/// (untied: the paper shares one S; per-layer matrices reach a lower error
/// at the same depth) and one threshold per layer.
#[derive(Module, Debug)]
pub struct Lista {
    /// `W_e`, `[m, n]`.
    pub we: Param<Tensor<2>>,
    /// `S_k` of layers 2…K, `[K−1, n, n]`.
    pub s: Param<Tensor<3>>,
    /// `θ_k`, `[K, 1]`.
    pub theta: Param<Tensor<2>>,
}

impl Lista {
    /// K layers initialised as K ISTA steps for dictionary `a` and `λ`.
    pub fn from_ista(a: &Tensor<2>, lambda: f64, layers: usize, device: &Device) -> Self {
        let l = lipschitz(a) as f32;
        let [_, n] = a.dims();
        let a = a.clone().to_device(device);
        Self {
            we: Param::from_tensor(a.clone().div_scalar(l)),
            s: Param::from_tensor(
                (Tensor::<2>::eye(n, device) - a.clone().transpose().matmul(a).div_scalar(l))
                    .unsqueeze_dim::<3>(0)
                    .repeat_dim(0, layers.max(2) - 1),
            ),
            theta: Param::from_tensor(Tensor::full([layers, 1], lambda as f32 / l, device)),
        }
    }

    /// Codes `[b, n]` of signals `y: [b, m]`.
    ///
    /// # Shapes
    /// - `y`: `[b, m]`
    /// - output: `[b, n]`
    pub fn forward(&self, y: Tensor<2>) -> Tensor<2> {
        let layers = self.theta.dims()[0];
        let theta = self.theta.val();
        let drive = y.matmul(self.we.val());
        let n = drive.dims()[1];
        let at = |k: usize| theta.clone().slice([k..k + 1, 0..1]).expand([1, n]);
        let mut x = soft_threshold(drive.clone(), at(0));
        let s = self.s.val();
        for k in 1..layers {
            let sk = s.clone().slice([k - 1..k, 0..n, 0..n]).reshape([n, n]);
            x = soft_threshold(x.matmul(sk) + drive.clone(), at(k));
        }
        x
    }
}
