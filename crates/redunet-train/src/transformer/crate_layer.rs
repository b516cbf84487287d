//! One CRATE layer (Yu et al. 2023; REDUNET.md §7): a compression step —
//! multi-head subspace self-attention, a gradient step on the coding rate
//! of the tokens against K learned subspaces — then a sparsification step
//! — one ISTA step toward a non-negative sparse code in a learned
//! dictionary:
//!
//! ```text
//! Z^{ℓ+½} = Z^ℓ + MSSA(LN(Z^ℓ)),
//!   MSSA(X) = [SSA_1 … SSA_K] W_out,  SSA_k = softmax(P_k P_kᵀ / √p) P_k,  P_k = X U_k
//! Z^{ℓ+1} = ReLU(Y + η (Y D − Y Dᵀ D) − η λ),  Y = LN(Z^{ℓ+½})
//! ```
//!
//! Tokens are rows; `Y D − Y Dᵀ D` is the paper's `Dᵀ(Z − D Z)` for rows.
//! As in the paper's experiments and its official code, the heads' output
//! map is a learned `W_out` rather than `[U_1 … U_K]ᵀ` and carries the step
//! p/(N ε²), and the softmax is scaled by 1/√p.

use burn::module::{Initializer, Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};
use redunet_core::Result;

/// Multi-head subspace self-attention: the heads are the subspaces U_k.
#[derive(Module, Debug)]
pub struct SubspaceAttention {
    /// LayerNorm of the tokens.
    pub norm: LayerNorm,
    /// `[U_1 … U_K]`: `d → K·p`, no bias (query, key and value at once).
    pub subspaces: Linear,
    /// `W_out`: `K·p → d`.
    pub output: Linear,
    /// K.
    pub heads: usize,
}

impl SubspaceAttention {
    /// `heads` subspaces of dimension `dim / heads`.
    pub fn new(dim: usize, heads: usize, device: &Device) -> Self {
        Self {
            norm: LayerNormConfig::new(dim).init(device),
            subspaces: LinearConfig::new(dim, dim).with_bias(false).init(device),
            output: LinearConfig::new(dim, dim).init(device),
            heads,
        }
    }

    /// The tokens' projections on each subspace, `[b, K, n, p]`.
    pub fn projections(&self, z: Tensor<3>) -> Tensor<4> {
        let [b, n, d] = z.dims();
        let k = self.heads;
        self.subspaces
            .forward(self.norm.forward(z))
            .reshape([b, n, k, d / k])
            .swap_dims(1, 2)
    }

    /// The update MSSA(LN(z)).
    ///
    /// # Shapes
    /// - z: `[b, n, d]`; output: `[b, n, d]`
    pub fn forward(&self, z: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = z.dims();
        let p = self.projections(z);
        let scale = 1.0 / ((d / self.heads) as f64).sqrt();
        let attention = softmax(
            p.clone()
                .matmul(p.clone().swap_dims(2, 3))
                .mul_scalar(scale),
            3,
        );
        let heads = attention.matmul(p).swap_dims(1, 2).reshape([b, n, d]);
        self.output.forward(heads)
    }

    /// R^c(Z; U) = Σ_k R(LN(Z) U_k) of each sample's tokens, with
    /// R(W) = ½ logdet(I + p/(n ε²) WᵀW): the coding rate the attention
    /// step descends.
    pub fn compression(&self, z: Tensor<3>, eps_sq: f64) -> Result<Vec<f64>> {
        let p = self.projections(z);
        let [b, k, n, q] = p.dims();
        let rates = redunet_core::rates::coding_rates(p.reshape([b * k, n, q]), eps_sq)?;
        Ok(rates.chunks(k).map(|r| r.iter().sum()).collect())
    }
}

/// One ISTA step on a learned dictionary D (`[d, d]`), from the normalised
/// tokens, with a non-negative soft threshold.
#[derive(Module, Debug)]
pub struct IstaStep {
    /// LayerNorm of the tokens.
    pub norm: LayerNorm,
    /// The dictionary D.
    pub dictionary: Param<Tensor<2>>,
    /// Step η.
    pub step: f64,
    /// Sparsity weight λ.
    pub lambda: f64,
}

impl IstaStep {
    /// D Kaiming-uniform (bound √(6/d)), as in the official code.
    pub fn new(dim: usize, step: f64, lambda: f64, device: &Device) -> Self {
        let init = Initializer::KaimingUniform {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        };
        Self {
            norm: LayerNormConfig::new(dim).init(device),
            dictionary: init.init_with([dim, dim], Some(dim), Some(dim), device),
            step,
            lambda,
        }
    }

    /// `ReLU(Y + η(Y D − Y Dᵀ D) − ηλ)`, `Y = LN(z)`.
    ///
    /// # Shapes
    /// - z: `[b, n, d]`; output: `[b, n, d]`
    pub fn forward(&self, z: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = z.dims();
        let y = self.norm.forward(z).reshape([b * n, d]);
        let dict = self.dictionary.val();
        let toward = y.clone().matmul(dict.clone());
        let back = y.clone().matmul(dict.clone().transpose()).matmul(dict);
        relu(y + (toward - back).mul_scalar(self.step) - self.step * self.lambda).reshape([b, n, d])
    }
}

/// A CRATE layer: compression, then sparsification.
#[derive(Module, Debug)]
pub struct CrateLayer {
    /// The compression step.
    pub attention: SubspaceAttention,
    /// The sparsification step.
    pub ista: IstaStep,
}

/// What one layer does to the tokens, averaged over samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerRates {
    /// R^c of the layer's input against its subspaces (nats).
    pub compression_in: f64,
    /// R^c after the compression step, against the same subspaces.
    pub compression: f64,
    /// Fraction of zero entries of the layer's output (after the ISTA step).
    pub sparsity: f64,
}

impl CrateLayer {
    /// A layer of width `dim` with `heads` subspaces and ISTA step
    /// `step`, threshold weight `lambda`.
    pub fn new(dim: usize, heads: usize, step: f64, lambda: f64, device: &Device) -> Self {
        Self {
            attention: SubspaceAttention::new(dim, heads, device),
            ista: IstaStep::new(dim, step, lambda, device),
        }
    }

    /// # Shapes
    /// - z: `[b, n, d]`; output: `[b, n, d]`
    pub fn forward(&self, z: Tensor<3>) -> Tensor<3> {
        let half = z.clone() + self.attention.forward(z);
        self.ista.forward(half)
    }

    /// The output and the layer's [`LayerRates`] on `z`.
    pub fn forward_measured(&self, z: Tensor<3>, eps_sq: f64) -> Result<(Tensor<3>, LayerRates)> {
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let compression_in = mean(self.attention.compression(z.clone(), eps_sq)?);
        let half = z.clone() + self.attention.forward(z);
        let compression = mean(self.attention.compression(half.clone(), eps_sq)?);
        let out = self.ista.forward(half);
        let zeros = out.clone().equal_elem(0.0).float().mean();
        let sparsity = redunet_core::host::to_vec(zeros)?[0] as f64;
        Ok((
            out,
            LayerRates {
                compression_in,
                compression,
                sparsity,
            },
        ))
    }
}
