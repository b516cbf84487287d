//! Run configuration: TOML with unknown keys rejected, and `--set key=value`
//! overrides applied before validation.

use redunet_core::{MembershipMode, VectorLayerConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use redunet_data::source::{DataConfig, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
}

pub use redunet_vision::front::{LiftConfig, PolarConfig};

fn default_eta() -> f64 {
    0.5
}
fn default_eps_sq() -> f64 {
    0.1
}
fn default_lambda() -> f64 {
    500.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub kind: ModelKind,
    pub layers: usize,
    #[serde(default = "default_eta")]
    pub eta: f64,
    #[serde(default = "default_eps_sq")]
    pub eps_sq: f64,
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    #[serde(default)]
    pub membership: MembershipMode,
    /// Write the constructed network to `OUT/model` (vector and spectral
    /// networks; the vector baselines on signals are evaluated only).
    #[serde(default = "default_true")]
    pub save: bool,
    /// MLP: hidden width (default 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// MLP: feature dimension (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_dim: Option<usize>,
}

fn default_true() -> bool {
    true
}

impl ModelConfig {
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
pub struct EvalConfig {
    /// Neighbours of the kNN classifier.
    #[serde(default = "default_knn_k")]
    pub knn_k: usize,
    /// Dimension of each class subspace for nearest subspace (default 10;
    /// 1 for the 2D/3D Gaussians, as in the papers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_comp: Option<usize>,
    /// At most this many samples per class in the cosine heat maps.
    #[serde(default = "default_heatmap")]
    pub heatmap_per_class: usize,
    /// "All shifts": every cyclic shift on this stride grid (signals only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_stride: Option<usize>,
    /// Test samples per class evaluated under all shifts (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_test_per_class: Option<usize>,
}

fn default_heatmap() -> usize {
    50
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            knn_k: default_knn_k(),
            n_comp: None,
            heatmap_per_class: default_heatmap(),
            shift_stride: None,
            shift_test_per_class: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub seed: u64,
    pub data: DataConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polar: Option<PolarConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lift: Option<LiftConfig>,
    /// Back-propagation (`redunet train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<redunet_train::trainer::TrainConfig>,
}

impl RunConfig {
    /// Whether samples are handled as multi-channel 1D signals.
    pub fn uses_signals(&self) -> bool {
        self.polar.is_some()
            || self.lift.is_some()
            || self.model.kind != ModelKind::Vector
            || self.eval.shift_stride.is_some()
    }
}

/// Errors in reading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed TOML in {path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("bad --set '{0}': expected key=value with a dotted key such as model.layers=10")]
    Set(String),
}

/// Reads a configuration file and applies `--set` overrides.
pub fn load(path: &Path, sets: &[String]) -> Result<RunConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, sets, base).map_err(|e| match e {
        ConfigError::Toml { message, .. } => ConfigError::Toml {
            path: path.to_path_buf(),
            message,
        },
        other => other,
    })
}

/// Parses configuration text, applies overrides and validates. Relative npy
/// paths are resolved against `base`.
pub fn parse(text: &str, sets: &[String], base: &Path) -> Result<RunConfig, ConfigError> {
    let toml_err = |e: toml::de::Error| ConfigError::Toml {
        path: PathBuf::from("<config>"),
        message: e.to_string(),
    };
    let mut value: toml::Table = toml::from_str(text).map_err(toml_err)?;
    for set in sets {
        apply_set(&mut value, set)?;
    }
    let mut cfg: RunConfig = toml::Value::Table(value)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
    for p in [
        &mut cfg.data.train_x,
        &mut cfg.data.train_y,
        &mut cfg.data.test_x,
        &mut cfg.data.test_y,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    validate(&cfg)?;
    Ok(cfg)
}

fn apply_set(table: &mut toml::Table, set: &str) -> Result<(), ConfigError> {
    let (key, raw) = set
        .split_once('=')
        .ok_or_else(|| ConfigError::Set(set.into()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(ConfigError::Set(set.into()));
    }
    // A TOML value if it parses as one (10, 0.5, true, [0, 1], "x"), else
    // the raw text as a string (so `data.source=mnist` works unquoted).
    let value = toml::from_str::<toml::Table>(&format!("v = {}", raw.trim()))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for part in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::Invalid(format!("--set {key}: '{part}' is not a table")))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn validate(cfg: &RunConfig) -> Result<(), ConfigError> {
    let bad = |m: String| Err(ConfigError::Invalid(m));
    cfg.data
        .validate()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    if cfg.model.layers == 0 {
        return bad("model.layers must be at least 1".into());
    }
    cfg.model
        .layer_config()
        .validate()
        .map_err(|e| ConfigError::Invalid(format!("model: {e}")))?;
    if let Some(p) = &cfg.polar
        && (p.radii == 0 || p.angles == 0)
    {
        return bad("polar.radii and polar.angles must be at least 1".into());
    }
    if let Some(l) = &cfg.lift
        && (l.out_channels == 0 || l.kernel_size == 0)
    {
        return bad("lift.out_channels and lift.kernel_size must be at least 1".into());
    }
    if let Some(t) = &cfg.train {
        t.validate()
            .map_err(|e| ConfigError::Invalid(format!("train: {e}")))?;
    }
    if cfg.model.width == Some(0) || cfg.model.out_dim == Some(0) {
        return bad("model.width and model.out_dim must be at least 1".into());
    }
    if cfg.model.kind == ModelKind::Conv2d && cfg.polar.is_some() {
        return bad(
            "model.kind = \"conv2d\" works on images; [polar] makes 1D signals (use conv1d)".into(),
        );
    }
    if cfg.eval.shift_stride == Some(0) {
        return bad("eval.shift_stride must be at least 1".into());
    }
    if cfg.eval.knn_k == 0 {
        return bad("eval.knn_k must be at least 1".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
seed = 0
[data]
source = "mnist"
classes = [0, 1]
train_per_class = 500
test_per_class = 100
[model]
kind = "vector"
layers = 20
eta = 0.5
eps_sq = 0.1
lambda = 500.0
membership = "labels"
"#;

    #[test]
    fn parses_and_overrides() {
        let c = parse(
            BASE,
            &[
                "model.layers=10".into(),
                "model.membership=soft".into(),
                "data.classes=[3, 5]".into(),
            ],
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.model.layers, 10);
        assert_eq!(c.model.membership, MembershipMode::Soft);
        assert_eq!(c.data.classes, Some(vec![3, 5]));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let unknown = BASE.replace("layers = 20", "layers = 20\nlayer = 3");
        assert!(
            matches!(parse(&unknown, &[], Path::new(".")), Err(ConfigError::Invalid(m)) if m.contains("layer"))
        );
        assert!(matches!(
            parse(BASE, &["model.typo=1".into()], Path::new(".")),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            parse("[data\n", &[], Path::new(".")),
            Err(ConfigError::Toml { .. })
        ));
        assert!(parse(BASE, &["model.eta=-1".into()], Path::new(".")).is_err());
        assert!(parse(BASE, &["model.layers=0".into()], Path::new(".")).is_err());
        assert!(matches!(
            parse(BASE, &["nokey".into()], Path::new(".")),
            Err(ConfigError::Set(_))
        ));
    }
}
