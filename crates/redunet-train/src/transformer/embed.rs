//! Images to tokens: non-overlapping P×P patches, each flattened,
//! layer-normalised, mapped linearly to the token width d and normalised
//! again; a learned class token in front, a learned position embedding
//! added (as in ViT and the official CRATE code). The class token's final
//! normalisation — what the features are read from — lives here too, so
//! that the two ends of the network are one saved part.

use burn::module::{Initializer, Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Patch embedding with class token and positions, and the class token's
/// output normalisation.
#[derive(Module, Debug)]
pub struct PatchEmbedding {
    /// LayerNorm over a flattened patch (`P·P·C` values).
    pub patch_norm: LayerNorm,
    /// `P·P·C → d`.
    pub projection: Linear,
    /// LayerNorm over a token.
    pub token_norm: LayerNorm,
    /// The class token `[1, 1, d]`.
    pub class_token: Param<Tensor<3>>,
    /// Positions `[1, N + 1, d]` (class token first).
    pub position: Param<Tensor<3>>,
    /// LayerNorm of the class token after the last layer.
    pub out_norm: LayerNorm,
    /// Image channels C.
    pub channels: usize,
    /// Image height H.
    pub height: usize,
    /// Image width W.
    pub width: usize,
    /// Patch side P (divides H and W).
    pub patch: usize,
}

impl PatchEmbedding {
    /// Random parameters (from the device's seeded generator): the
    /// projection as burn-nn's `Linear`, the class token and positions
    /// N(0, 0.02²) as in ViT.
    pub fn new(image: [usize; 3], patch: usize, dim: usize, device: &Device) -> Self {
        let [c, h, w] = image;
        let patch_dim = patch * patch * c;
        let tokens = (h / patch) * (w / patch) + 1;
        let small = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Self {
            patch_norm: LayerNormConfig::new(patch_dim).init(device),
            projection: LinearConfig::new(patch_dim, dim).init(device),
            token_norm: LayerNormConfig::new(dim).init(device),
            class_token: small.init([1, 1, dim], device),
            position: small.init([1, tokens, dim], device),
            out_norm: LayerNormConfig::new(dim).init(device),
            channels: c,
            height: h,
            width: w,
            patch,
        }
    }

    /// Number of tokens N + 1 (patches and the class token).
    pub fn tokens(&self) -> usize {
        (self.height / self.patch) * (self.width / self.patch) + 1
    }

    /// Tokens of a batch of flattened images.
    ///
    /// # Shapes
    /// - x: `[b, C·H·W]` (channel-major, as the data sources store images)
    /// - output: `[b, N + 1, d]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<3> {
        let [b, _] = x.dims();
        let (c, p) = (self.channels, self.patch);
        let (gh, gw) = (self.height / p, self.width / p);
        let patches = x
            .reshape([b, c, gh, p, gw, p])
            .permute([0, 2, 4, 3, 5, 1])
            .reshape([b, gh * gw, p * p * c]);
        let t = self
            .token_norm
            .forward(self.projection.forward(self.patch_norm.forward(patches)));
        let d = t.dims()[2];
        let class = self.class_token.val().expand([b, 1, d]);
        Tensor::cat(vec![class, t], 1) + self.position.val()
    }

    /// The class token of the last layer's output, normalised: `[b, N+1, d]`
    /// to `[b, d]`.
    pub fn read_out(&self, z: Tensor<3>) -> Tensor<2> {
        let [b, _, d] = z.dims();
        self.out_norm
            .forward(z.slice([0..b, 0..1, 0..d]).reshape([b, d]))
    }
}
