//! The configuration of an experiment: data, model, evaluation, front end
//! and training, as serde types with unknown keys rejected, validated once.

use redunet_core::{Error, MembershipMode, Result, VectorLayerConfig};
use serde::{Deserialize, Serialize};

pub use redunet_data::source::{DataConfig, Source};
pub use redunet_train::trainer::TrainConfig;
pub use redunet_vision::front::{LiftConfig, PolarConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// Which network a configuration builds.
pub enum ModelKind {
    /// Samples flattened to vectors.
    Vector,
    /// Shift-invariant layers on multi-channel 1D signals `[C, T]`.
    Conv1d,
    /// Translation-invariant layers on multi-channel images `[C, H, W]`.
    Conv2d,
    /// A multi-layer perceptron feature extractor (`redunet train` only):
    /// `model.layers` hidden layers of `model.width` units with ReLU, then
    /// a linear map to `model.out_dim` features, normalised.
    Mlp,
    /// CRATE, the white-box transformer (`redunet train` only, images):
    /// `model.layers` layers of subspace self-attention and an ISTA step,
    /// tokens of width `model.width` from `model.patch`-sided patches,
    /// `model.heads` subspaces.
    Crate,
    /// The plain transformer of the same shape (softmax attention, GELU
    /// MLP of `model.mlp_width`), for comparison with CRATE.
    Transformer,
}

impl ModelKind {
    /// CRATE or the plain transformer.
    pub fn is_transformer(self) -> bool {
        matches!(self, ModelKind::Crate | ModelKind::Transformer)
    }
}

// The layer settings' defaults live in one place, `VectorLayerConfig::new()`.
fn default_eta() -> f64 {
    VectorLayerConfig::new().eta
}
fn default_eps_sq() -> f64 {
    VectorLayerConfig::new().eps_sq
}
fn default_lambda() -> f64 {
    VectorLayerConfig::new().lambda
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// The `[model]` section: the network and its layer settings.
pub struct ModelConfig {
    /// Which network.
    pub kind: ModelKind,
    /// Number of layers (at most [`MAX_LAYERS`]).
    pub layers: usize,
    #[serde(default = "default_eta")]
    /// Step size η.
    pub eta: f64,
    #[serde(default = "default_eps_sq")]
    /// ε², the squared coding precision.
    pub eps_sq: f64,
    #[serde(default = "default_lambda")]
    /// λ of the soft membership estimate.
    pub lambda: f64,
    #[serde(default)]
    /// Memberships the layers use on their own training samples.
    pub membership: MembershipMode,
    /// Write the constructed network to `OUT/model` (vector and spectral
    /// networks; the vector baselines on signals are evaluated only).
    #[serde(default = "default_true")]
    pub save: bool,
    /// Samples per streamed batch of construction: each layer is built from
    /// statistics summed over batches of this many training samples, and
    /// the features move through it batch by batch (absent: all at once).
    /// Constructed networks (vector, conv1d, conv2d; not the vector
    /// baselines on signals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// MLP: hidden width (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// MLP: feature dimension (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_dim: Option<usize>,
    /// Transformers: heads (CRATE: subspaces), dividing `width` (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// Transformers: patch side, dividing the image's sides (default 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<usize>,
    /// Plain transformer: hidden width of the MLP (default 4 × width).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_width: Option<usize>,
    /// CRATE: the ISTA step η (default 0.1, as in the paper's code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ista_step: Option<f64>,
    /// CRATE: the ISTA sparsity weight λ (default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ista_lambda: Option<f64>,
}

fn default_true() -> bool {
    true
}

impl ModelConfig {
    /// The settings every layer shares.
    pub fn layer_config(&self) -> VectorLayerConfig {
        VectorLayerConfig {
            eta: self.eta,
            eps_sq: self.eps_sq,
            lambda: self.lambda,
            membership: self.membership,
        }
    }
}

fn default_knn_k() -> usize {
    5
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// The `[eval]` section: how the features are classified and shown.
pub struct EvalConfig {
    /// Neighbours of the kNN classifier.
    #[serde(default = "default_knn_k")]
    pub knn_k: usize,
    /// Dimension of each class subspace for nearest subspace (default 10;
    /// 1 for the 2D/3D Gaussians, as in the papers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_comp: Option<usize>,
    /// ε² of the MICL classifier's coding lengths (default: the model's
    /// `eps_sq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micl_eps_sq: Option<f64>,
    /// Whether MICL classifies at all (default true). Its fit and queries
    /// cost f64 products of the feature dimension squared per sample:
    /// large-feature configurations may leave it out.
    #[serde(default = "default_micl")]
    pub micl: bool,
    /// At most this many samples per class in the cosine heat maps.
    #[serde(default = "default_heatmap")]
    pub heatmap_per_class: usize,
    /// "All shifts": every cyclic shift on this stride grid (signals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_stride: Option<usize>,
    /// Training accuracy is measured on the first this many training
    /// samples of each class (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy_per_class: Option<usize>,
    /// Test samples per class evaluated under all shifts (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_test_per_class: Option<usize>,
}

fn default_micl() -> bool {
    true
}

fn default_heatmap() -> usize {
    50
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            knn_k: default_knn_k(),
            n_comp: None,
            micl_eps_sq: None,
            micl: default_micl(),
            heatmap_per_class: default_heatmap(),
            shift_stride: None,
            shift_test_per_class: None,
            train_accuracy_per_class: None,
        }
    }
}

/// The most layers a configuration may ask for: construction is sequential,
/// so more would run for weeks, not fail.
pub const MAX_LAYERS: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// A whole configuration, validated once by [`Self::validate`].
pub struct RunConfig {
    #[serde(default)]
    /// Seeds the Gaussian mixtures.
    pub seed: u64,
    /// The data.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    #[serde(default)]
    /// The evaluation.
    pub eval: EvalConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The polar transform of images (rotation-invariant runs).
    pub polar: Option<PolarConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Lifting by random convolutions.
    pub lift: Option<LiftConfig>,
    /// Back-propagation (`redunet train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainConfig>,
}

impl RunConfig {
    /// Checks every section and their combination.
    pub fn validate(&self) -> Result<()> {
        let cfg = self;
        let bad = |m: String| Err(Error::Parameter(m));
        cfg.data.validate()?;
        if cfg.model.layers == 0 {
            return bad("model.layers must be at least 1".into());
        }
        if cfg.model.layers > MAX_LAYERS {
            return bad(format!(
                "model.layers = {} is more than {MAX_LAYERS} (the deepest published ReduNets \
                 have a few thousand layers)",
                cfg.model.layers
            ));
        }
        cfg.model
            .layer_config()
            .validate()
            .map_err(|e| Error::Parameter(format!("model: {e}")))?;
        if let Some(p) = &cfg.polar {
            p.validate()?;
        }
        if let Some(l) = &cfg.lift {
            l.validate()?;
        }
        if let Some(t) = &cfg.train {
            t.validate()
                .map_err(|e| Error::Parameter(format!("train: {e}")))?;
        }
        if cfg.model.batch_size == Some(0) {
            return bad("model.batch_size must be at least 1".into());
        }
        if cfg.model.batch_size.is_some() && cfg.model.kind == ModelKind::Mlp {
            return bad("model.batch_size (streamed construction) is not for an MLP".into());
        }
        if cfg.model.width == Some(0) || cfg.model.out_dim == Some(0) {
            return bad("model.width and model.out_dim must be at least 1".into());
        }
        let m = &cfg.model;
        let transformer_keys = [
            ("heads", m.heads.is_some()),
            ("patch", m.patch.is_some()),
            ("mlp_width", m.mlp_width.is_some()),
            ("ista_step", m.ista_step.is_some()),
            ("ista_lambda", m.ista_lambda.is_some()),
        ];
        let kind_only = |key: &str| match key {
            "mlp_width" => m.kind == ModelKind::Transformer,
            "ista_step" | "ista_lambda" => m.kind == ModelKind::Crate,
            _ => m.kind.is_transformer(),
        };
        if let Some((key, _)) = transformer_keys
            .iter()
            .find(|(key, set)| *set && !kind_only(key))
        {
            return bad(format!(
                "model.{key} is not a setting of model.kind = {:?}",
                m.kind
            ));
        }
        if m.kind.is_transformer() && m.out_dim.is_some() {
            return bad(
                "model.out_dim: a transformer's features are its class token, of model.width"
                    .into(),
            );
        }
        if cfg.model.kind == ModelKind::Conv2d && cfg.polar.is_some() {
            return bad(
                "model.kind = \"conv2d\" works on images; [polar] makes 1D signals (use conv1d)"
                    .into(),
            );
        }
        if cfg.eval.shift_stride == Some(0) {
            return bad("eval.shift_stride must be at least 1".into());
        }
        if let Some(e) = cfg.eval.micl_eps_sq
            && !(e.is_finite() && e > 0.0)
        {
            return bad(format!("eval.micl_eps_sq = {e} must be finite and > 0"));
        }
        if cfg.eval.knn_k == 0 {
            return bad("eval.knn_k must be at least 1".into());
        }
        if cfg.eval.n_comp == Some(0) {
            return bad("eval.n_comp must be at least 1".into());
        }
        if cfg.eval.train_accuracy_per_class == Some(0) {
            return bad("eval.train_accuracy_per_class must be at least 1".into());
        }
        if cfg.eval.shift_test_per_class == Some(0) {
            return bad("eval.shift_test_per_class must be at least 1".into());
        }
        if cfg.eval.heatmap_per_class == 0 {
            return bad("eval.heatmap_per_class must be at least 1".into());
        }
        Ok(())
    }

    /// Whether samples are handled as multi-channel 1D signals.
    pub fn uses_signals(&self) -> bool {
        self.polar.is_some()
            || self.lift.is_some()
            || self.model.kind != ModelKind::Vector
            || self.eval.shift_stride.is_some()
    }
}
