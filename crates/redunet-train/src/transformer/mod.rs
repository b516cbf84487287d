//! Vision transformers on image patches: CRATE, the white-box transformer
//! whose layers unroll a descent on the sparse rate reduction
//! ([`crate_layer`]), and — for comparison under the same training — the
//! plain pre-norm transformer (softmax attention with separate query, key
//! and value, GELU MLP; burn-nn's `TransformerEncoderLayer`). Both read
//! their features from the class token ([`embed`]).

pub mod crate_layer;
pub mod embed;

use crate::trainer::FeatureNet;
use burn::module::Module;
use burn::nn::transformer::{TransformerEncoderConfig, TransformerEncoderLayer};
use burn::tensor::{Device, Tensor};
pub use crate_layer::{CrateLayer, LayerRates};
pub use embed::PatchEmbedding;
use redunet_core::layer::vector::normalize_rows;
use redunet_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// What a layer does to the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Mixer {
    /// CRATE: subspace self-attention, then an ISTA step.
    Crate {
        /// ISTA step η.
        step: f64,
        /// ISTA sparsity weight λ.
        lambda: f64,
    },
    /// Softmax attention, then a GELU MLP of this hidden width.
    Softmax {
        /// Hidden width of the MLP.
        mlp_width: usize,
    },
}

/// What is fixed about a transformer (saved in `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerShape {
    /// The layers' kind.
    pub mixer: Mixer,
    /// Input images `[C, H, W]`.
    pub image: [usize; 3],
    /// Patch side P (divides H and W).
    pub patch: usize,
    /// Token width d.
    pub dim: usize,
    /// Number of layers L.
    pub depth: usize,
    /// Heads K (divides d; each head a subspace of dimension d/K).
    pub heads: usize,
}

/// The most parameters one part (the embedding, or one layer) may have:
/// far beyond any transformer trained here, and small enough that the
/// counts of a whole network never overflow.
const MAX_PARAMS: usize = 1 << 36;

impl TransformerShape {
    /// Checks every field; returns the parameter counts of the embedding
    /// part and of each layer.
    pub fn validate(&self) -> std::result::Result<(usize, Vec<usize>), String> {
        let [c, h, w] = self.image;
        let (p, d, k) = (self.patch, self.dim, self.heads);
        if c == 0 || h == 0 || w == 0 {
            return Err(format!("transformer on images {:?}", self.image));
        }
        if p == 0 || h % p != 0 || w % p != 0 {
            return Err(format!(
                "patch side {p} must divide the image's height {h} and width {w}"
            ));
        }
        if d == 0 || k == 0 || d % k != 0 {
            return Err(format!(
                "token width {d} must be a positive multiple of the heads {k}"
            ));
        }
        if self.depth == 0 {
            return Err("a transformer of depth 0".into());
        }
        let big = |x: usize| x > 1 << 20;
        if [c, h, w, p, d, k, self.depth].into_iter().any(big) {
            return Err(format!("transformer sizes out of range: {self:?}"));
        }
        match self.mixer {
            Mixer::Crate { step, lambda } => {
                if !(step.is_finite() && step > 0.0 && lambda.is_finite() && lambda >= 0.0) {
                    return Err(format!(
                        "ISTA step η = {step} must be > 0 and λ = {lambda} ≥ 0"
                    ));
                }
            }
            Mixer::Softmax { mlp_width } => {
                if mlp_width == 0 || big(mlp_width) {
                    return Err(format!("MLP width {mlp_width}"));
                }
            }
        }
        // In u128, so that a forged description cannot overflow the
        // counts the loader checks file sizes and memory against.
        let (c, h, w, p, d) = (c as u128, h as u128, w as u128, p as u128, d as u128);
        let pd = p * p * c;
        let tokens = (h / p) * (w / p) + 1;
        let embed = 2 * pd + pd * d + d + 2 * d + d + tokens * d + 2 * d;
        let layer = match self.mixer {
            // Two norms, U, W_out with bias, D.
            Mixer::Crate { .. } => 4 * d + d * d + d * d + d + d * d,
            // Two norms, query/key/value/output with biases, the MLP.
            Mixer::Softmax { mlp_width } => {
                let f = mlp_width as u128;
                4 * d + 4 * (d * d + d) + d * f + f + f * d + d
            }
        };
        let fits = |n: u128| usize::try_from(n).ok().filter(|&n| n <= MAX_PARAMS);
        let (Some(embed), Some(layer)) = (fits(embed), fits(layer)) else {
            return Err(format!(
                "transformer of more than {MAX_PARAMS} parameters per part: {self:?}"
            ));
        };
        Ok((embed, vec![layer; self.depth]))
    }

    /// A network of this architecture with random parameters drawn after
    /// seeding the device's generator with `seed`.
    pub fn init(&self, seed: u64, device: &Device) -> Result<Transformer> {
        self.validate().map_err(Error::Parameter)?;
        device.seed(seed);
        let embed = self.embedding(device);
        let layers = (0..self.depth).map(|_| self.layer(device)).collect();
        Ok(Transformer { embed, layers })
    }

    /// One layer of this architecture (random parameters).
    pub fn layer(&self, device: &Device) -> TokenLayer {
        match self.mixer {
            Mixer::Crate { step, lambda } => {
                TokenLayer::Crate(CrateLayer::new(self.dim, self.heads, step, lambda, device))
            }
            Mixer::Softmax { mlp_width } => TokenLayer::Softmax(TransformerEncoderLayer::new(
                &TransformerEncoderConfig::new(self.dim, mlp_width, self.heads, 1)
                    .with_dropout(0.0)
                    .with_norm_first(true),
                device,
            )),
        }
    }

    /// The embedding part of this architecture (random parameters).
    pub fn embedding(&self, device: &Device) -> PatchEmbedding {
        PatchEmbedding::new(self.image, self.patch, self.dim, device)
    }
}

/// A layer of either kind.
// A network's layers are all of one kind, so no memory is lost to the
// larger variant; boxing would only add an indirection per layer.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum TokenLayer {
    /// A CRATE layer.
    Crate(CrateLayer),
    /// A plain pre-norm transformer layer.
    Softmax(TransformerEncoderLayer),
}

impl TokenLayer {
    /// # Shapes
    /// - z: `[b, n, d]`; output: `[b, n, d]`
    pub fn forward(&self, z: Tensor<3>) -> Tensor<3> {
        match self {
            TokenLayer::Crate(l) => l.forward(z),
            TokenLayer::Softmax(l) => l.forward(z, None, None),
        }
    }
}

/// A vision transformer: patch embedding, L layers, the class token's
/// normalised output as the features (unit norm, as every feature
/// extractor here).
#[derive(Module, Debug)]
pub struct Transformer {
    /// Tokens in, class token out.
    pub embed: PatchEmbedding,
    /// The layers.
    pub layers: Vec<TokenLayer>,
}

/// Samples per block of [`FeatureNet::features_eval`] and of the
/// measurements.
const BLOCK: usize = 256;

impl Transformer {
    /// The architecture of this network.
    pub fn shape(&self) -> Result<TransformerShape> {
        let e = &self.embed;
        let first = self
            .layers
            .first()
            .ok_or_else(|| Error::Empty("a transformer without layers".into()))?;
        let dim = e.class_token.dims()[2];
        let (mixer, heads) = match first {
            TokenLayer::Crate(l) => (
                Mixer::Crate {
                    step: l.ista.step,
                    lambda: l.ista.lambda,
                },
                l.attention.heads,
            ),
            TokenLayer::Softmax(l) => (
                Mixer::Softmax {
                    mlp_width: l.pwff.linear_inner.weight.dims()[1],
                },
                l.mha.n_heads,
            ),
        };
        Ok(TransformerShape {
            mixer,
            image: [e.channels, e.height, e.width],
            patch: e.patch,
            dim,
            depth: self.layers.len(),
            heads,
        })
    }

    fn input_dim(&self) -> usize {
        self.embed.channels * self.embed.height * self.embed.width
    }

    fn check_input(&self, x: &Tensor<2>) -> Result<()> {
        let [m, n] = x.dims();
        if n != self.input_dim() {
            return Err(Error::Shape(format!(
                "the transformer takes images of {} values ({:?}), got [{m}, {n}]",
                self.input_dim(),
                [self.embed.channels, self.embed.height, self.embed.width]
            )));
        }
        redunet_core::host::check_finite(x, "network input")
    }

    /// Per CRATE layer, what it does to the tokens of the samples `x`
    /// (averaged over them): the coding rate of its input and of the
    /// compressed tokens against its subspaces, and the sparsity of its
    /// output, with ε² `eps_sq` in the rates. Empty for a plain
    /// transformer, whose layers have no subspaces or codes to measure.
    pub fn layer_rates(&self, x: &Tensor<2>, eps_sq: f64) -> Result<Vec<LayerRates>> {
        self.check_input(x)?;
        let [m, n] = x.dims();
        if m == 0 || !matches!(self.layers.first(), Some(TokenLayer::Crate(_))) {
            return Ok(Vec::new());
        }
        let mut sums = vec![[0f64; 3]; self.layers.len()];
        for a in (0..m).step_by(BLOCK) {
            let rows = (a + BLOCK).min(m) - a;
            let mut z = self.embed.forward(x.clone().slice([a..a + rows, 0..n]));
            for (l, s) in self.layers.iter().zip(&mut sums) {
                let TokenLayer::Crate(layer) = l else {
                    return Err(Error::Parameter(
                        "a transformer that mixes CRATE and plain layers".into(),
                    ));
                };
                let (next, r) = layer.forward_measured(z, eps_sq)?;
                let w = rows as f64;
                s[0] += r.compression_in * w;
                s[1] += r.compression * w;
                s[2] += r.sparsity * w;
                z = next;
            }
        }
        Ok(sums
            .into_iter()
            .map(|s| LayerRates {
                compression_in: s[0] / m as f64,
                compression: s[1] / m as f64,
                sparsity: s[2] / m as f64,
            })
            .collect())
    }
}

impl FeatureNet for Transformer {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let mut z = self.embed.forward(x);
        for l in &self.layers {
            z = l.forward(z);
        }
        normalize_rows(self.embed.read_out(z))
    }

    fn features_eval(&self, x: &Tensor<2>, _device: &Device) -> Result<Tensor<2>> {
        self.check_input(x)?;
        let [m, n] = x.dims();
        if m == 0 {
            return Ok(Tensor::zeros([0, self.feature_dim()], &x.device()));
        }
        let parts: Vec<Tensor<2>> = (0..m)
            .step_by(BLOCK)
            .map(|a| self.features(x.clone().slice([a..(a + BLOCK).min(m), 0..n])))
            .collect();
        Ok(Tensor::cat(parts, 0))
    }

    fn feature_dim(&self) -> usize {
        self.embed.class_token.dims()[2]
    }
}
