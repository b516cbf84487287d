//! The saved model: a network (vector or spectral ReduNet, an MLP, or a
//! transformer — CRATE or plain), its
//! optional linear head, and everything needed to apply them, in one
//! directory that loads on its own — the one format of constructed and
//! trained networks alike:
//!
//! - `model.json`: the architecture — per layer the classes with operators
//!   and their γ_j, η, λ, ε², the membership mode; the front end of spectral
//!   networks (sample shape, polar transform, lifting); the head's classes
//!   and logit scale; and `meta`, free-form provenance (e.g. the run
//!   configuration) that loading never needs;
//! - the parameters through Burn's recorder (burnpack), one file per part:
//!   `front.bpk` (the lifting kernels; a transformer's patch embedding),
//!   `layer-0001.bpk`, … and `head.bpk`.
//!   Parts, not one file, so that a network of thousands of layers is
//!   written as it is built and never held whole in memory;
//! - `checksums.json`: size and CRC-32 of every file.
//!
//! Everything is written into a staging directory that is swapped into
//! place, so a reader sees the old model or the new one, never a mixture.
//! Loading checks the checksums, validates every field of `model.json`, and
//! checks that each parameter file is large enough to hold what it
//! describes, before it allocates.

use crate::mlp::{Dense, Mlp};
use crate::spectral::SpectralShape;
use crate::trainer::{FeatureNet, Trainee, head};
use crate::transformer::{Transformer, TransformerShape};
use crate::vector::VectorShape;
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use redunet_core::VectorReduNet;
use redunet_core::network::{commit_dir, staging_dir};
use redunet_core::{Error, Result, VectorLayerConfig};
use redunet_data::npy::write_atomic;
use redunet_vision::front::FrontEnd;
use redunet_vision::network::{SignalVectorReduNet, SpectralReduNet, transform_of};
use redunet_vision::spectral::Dft;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format` of a saved model's `model.json`.
pub const FORMAT: &str = "redunet-model";
const VERSION: u32 = 2;
/// Architecture file inside a model directory.
pub const CONFIG_FILE: &str = "model.json";

/// Any network the library trains or constructs, as one Burn module.
// One network per model, never held in bulk: the spectral variant's inline
// DFT tables are not worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    /// A vector ReduNet.
    Vector(VectorReduNet),
    /// A vector ReduNet on a front end's flattened signals (the vector
    /// baselines of the invariance experiments).
    SignalVector(SignalVectorReduNet),
    /// A translation- or shift-invariant ReduNet.
    Spectral(SpectralReduNet),
    /// A multi-layer perceptron.
    Mlp(Mlp),
    /// A vision transformer (CRATE or plain).
    Transformer(Transformer),
}

impl FeatureNet for Network {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Network::Vector(n) => n.features(x),
            Network::SignalVector(n) => FeatureNet::features(n, x),
            Network::Spectral(n) => FeatureNet::features(n, x),
            Network::Mlp(n) => n.features(x),
            Network::Transformer(n) => n.features(x),
        }
    }

    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        match self {
            Network::Vector(n) => n.features_eval(x, device),
            Network::SignalVector(n) => FeatureNet::features_eval(n, x, device),
            Network::Spectral(n) => FeatureNet::features_eval(n, x, device),
            Network::Mlp(n) => n.features_eval(x, device),
            Network::Transformer(n) => n.features_eval(x, device),
        }
    }

    fn feature_dim(&self) -> usize {
        match self {
            Network::Vector(n) => n.feature_dim(),
            Network::SignalVector(n) => FeatureNet::feature_dim(n),
            Network::Spectral(n) => FeatureNet::feature_dim(n),
            Network::Mlp(n) => n.feature_dim(),
            Network::Transformer(n) => n.feature_dim(),
        }
    }
}

/// The architecture of a [`Network`]: everything but its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Architecture {
    /// A vector ReduNet's layer shapes and settings.
    Vector(VectorShape),
    /// A spectral ReduNet's image shape, channels, lifting and layers.
    Spectral(SpectralShape),
    /// Layer widths, input first.
    Mlp(Vec<usize>),
    /// A transformer's mixer, image, patch, width, depth and heads.
    Transformer(TransformerShape),
}

/// The linear head of a model trained with cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Number of classes it predicts.
    pub classes: usize,
    /// Logits are this times `f W` (features have unit norm).
    pub logit_scale: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelDoc {
    format: String,
    version: u32,
    architecture: Architecture,
    head: Option<HeadSpec>,
    #[serde(default)]
    meta: serde_json::Value,
}

impl Network {
    /// The architecture of this network (an error only for a vector
    /// network without layers, or whose layers disagree on their settings).
    pub fn architecture(&self) -> Result<Architecture> {
        Ok(match self {
            Network::Vector(n) => Architecture::Vector(VectorShape::of(n, None)?),
            Network::SignalVector(n) => {
                Architecture::Vector(VectorShape::of(&n.net, Some(n.front.config().clone()))?)
            }
            Network::Spectral(n) => Architecture::Spectral(SpectralShape::of(n)?),
            Network::Mlp(n) => Architecture::Mlp(n.dims()),
            Network::Transformer(n) => Architecture::Transformer(n.shape()?),
        })
    }

    /// Length of a flattened input sample.
    pub fn input_dim(&self) -> usize {
        match self {
            Network::Vector(n) => n.dim().unwrap_or(0),
            Network::SignalVector(n) => n.input_dim(),
            Network::Spectral(n) => n.input_dim(),
            Network::Mlp(n) => n.dims()[0],
            Network::Transformer(n) => n.embed.channels * n.embed.height * n.embed.width,
        }
    }

    /// The parts saved one file each: the front end's parameters (spectral
    /// networks), then the layers.
    fn write_parts(&self, w: &mut ModelWriter) -> Result<()> {
        match self {
            Network::Vector(n) => n.layers().iter().try_for_each(|l| w.layer(l)),
            Network::SignalVector(n) => {
                w.front(&n.front)?;
                n.net.layers().iter().try_for_each(|l| w.layer(l))
            }
            Network::Spectral(n) => {
                w.front(&n.front)?;
                n.net.layers.iter().try_for_each(|l| w.layer(l))
            }
            Network::Mlp(n) => n.layers.iter().try_for_each(|l| w.layer(l)),
            Network::Transformer(n) => {
                w.front(&n.embed)?;
                n.layers.iter().try_for_each(|l| w.layer(l))
            }
        }
    }
}

/// What an architecture records of each constructed layer: its class
/// count, settings, the classes with operators and their γ_j.
pub(crate) trait RecordedLayer {
    fn num_classes(&self) -> usize;
    fn config(&self) -> &VectorLayerConfig;
    fn classes(&self) -> &[usize];
    fn gamma(&self) -> &[f64];
}

macro_rules! recorded_layer {
    ($t:ty) => {
        impl RecordedLayer for $t {
            fn num_classes(&self) -> usize {
                <$t>::num_classes(self)
            }
            fn config(&self) -> &VectorLayerConfig {
                <$t>::config(self)
            }
            fn classes(&self) -> &[usize] {
                <$t>::classes(self)
            }
            fn gamma(&self) -> &[f64] {
                <$t>::gamma(self)
            }
        }
    };
}
recorded_layer!(redunet_core::VectorLayer);
recorded_layer!(redunet_vision::spectral::SpectralLayer);

/// The per-layer fields of a vector or spectral architecture: each layer's
/// classes with operators and γ_j, and the class count and settings all
/// layers share.
pub(crate) struct LayerRecords<'a> {
    pub num_classes: &'a mut usize,
    pub config: &'a mut VectorLayerConfig,
    pub classes: &'a mut Vec<Vec<usize>>,
    pub gammas: &'a mut Vec<Vec<f64>>,
}

impl LayerRecords<'_> {
    /// Records `layer`, which must share the first layer's settings and
    /// class count.
    pub fn push(self, layer: &impl RecordedLayer) -> Result<()> {
        if self.classes.is_empty() {
            *self.num_classes = layer.num_classes();
            *self.config = *layer.config();
        } else if layer.config() != self.config || layer.num_classes() != *self.num_classes {
            return Err(Error::Parameter(
                "layers with different settings or class counts".into(),
            ));
        }
        self.classes.push(layer.classes().to_vec());
        self.gammas.push(layer.gamma().to_vec());
        Ok(())
    }
}

fn checked_layers(
    what: &str,
    classes: &[Vec<usize>],
    gammas: &[Vec<f64>],
    num_classes: usize,
    config: &VectorLayerConfig,
) -> std::result::Result<(), String> {
    config.validate().map_err(|e| format!("{what}: {e}"))?;
    if num_classes == 0 {
        return Err(format!("{what}: num_classes is 0"));
    }
    if classes.len() != gammas.len() {
        return Err(format!(
            "{what}: {} class lists for {} weight lists",
            classes.len(),
            gammas.len()
        ));
    }
    for (l, (c, g)) in classes.iter().zip(gammas).enumerate() {
        let layer = l + 1;
        if c.is_empty() || c.len() != g.len() {
            return Err(format!(
                "{what} layer {layer}: {} classes and {} weights γ_j",
                c.len(),
                g.len()
            ));
        }
        if c.windows(2).any(|w| w[0] >= w[1]) || c.iter().any(|&j| j >= num_classes) {
            return Err(format!(
                "{what} layer {layer}: classes {c:?} are not increasing indices below {num_classes}"
            ));
        }
        if g.iter().any(|&x| !(x.is_finite() && x > 0.0 && x <= 1.0)) {
            return Err(format!(
                "{what} layer {layer}: weights γ_j {g:?} are not all in (0, 1]"
            ));
        }
    }
    Ok(())
}

/// The parameter counts `model.json` describes, part by part (the files
/// must be able to hold them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamCounts {
    /// The front end's (lifting kernels; 0 without).
    pub front: usize,
    /// Each layer's.
    pub layers: Vec<usize>,
}

impl ParamCounts {
    /// All parameters of the network.
    pub fn total(&self) -> Option<usize> {
        self.layers
            .iter()
            .try_fold(self.front, |a, &b| a.checked_add(b))
    }
}

impl Architecture {
    /// Length of a feature vector (what a head takes).
    pub fn feature_dim(&self) -> usize {
        match self {
            Architecture::Vector(s) => s.dim,
            Architecture::Spectral(s) => {
                let (c, t) = s.signal_shape();
                c.saturating_mul(t)
            }
            Architecture::Mlp(d) => d.last().copied().unwrap_or(0),
            Architecture::Transformer(s) => s.dim,
        }
    }

    /// Whether the model has a front part (`front.bpk`).
    fn has_front(&self) -> bool {
        match self {
            Architecture::Vector(s) => s.front.is_some(),
            Architecture::Spectral(_) | Architecture::Transformer(_) => true,
            Architecture::Mlp(_) => false,
        }
    }

    /// Checks every field; returns the parameters it describes, part by part.
    pub fn validate(&self) -> std::result::Result<ParamCounts, String> {
        let mul = |xs: &[usize]| {
            xs.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .ok_or_else(|| format!("parameter count of {xs:?} overflows"))
        };
        match self {
            Architecture::Vector(s) => {
                if s.dim == 0 {
                    return Err("vector network of dimension 0".into());
                }
                checked_layers("vector", &s.classes, &s.gammas, s.num_classes, &s.config)?;
                let front = match &s.front {
                    None => 0,
                    Some(f) => {
                        f.validate().map_err(|e| format!("front end: {e}"))?;
                        let (c, t) = f.signal_shape();
                        if c.checked_mul(t) != Some(s.dim) {
                            return Err(format!(
                                "vector layers of dimension {} behind a front end of \
                                 {c} × {t} signals",
                                s.dim
                            ));
                        }
                        f.lift_params()
                            .ok_or_else(|| "lifting parameter count overflows".to_string())?
                    }
                };
                Ok(ParamCounts {
                    front,
                    layers: s
                        .classes
                        .iter()
                        .map(|c| mul(&[c.len() + 1, s.dim, s.dim]))
                        .collect::<std::result::Result<_, _>>()?,
                })
            }
            Architecture::Spectral(s) => {
                s.front.validate().map_err(|e| format!("front end: {e}"))?;
                checked_layers("spectral", &s.classes, &s.gammas, s.num_classes, &s.config)?;
                let (c, _) = s.signal_shape();
                let (h, w) = s.front.transform_shape();
                let p = mul(&[h, w / 2 + 1])?;
                Ok(ParamCounts {
                    front: s
                        .front
                        .lift_params()
                        .ok_or_else(|| "lifting parameter count overflows".to_string())?,
                    layers: s
                        .classes
                        .iter()
                        .map(|k| mul(&[2, p, k.len() + 1, c, c]))
                        .collect::<std::result::Result<_, _>>()?,
                })
            }
            Architecture::Mlp(d) => {
                if d.len() < 2 || d.contains(&0) {
                    return Err(format!("MLP widths {d:?}"));
                }
                Ok(ParamCounts {
                    front: 0,
                    layers: d
                        .windows(2)
                        .map(|w| mul(&[w[0] + 1, w[1]]))
                        .collect::<std::result::Result<_, _>>()?,
                })
            }
            Architecture::Transformer(s) => {
                let (front, layers) = s.validate()?;
                Ok(ParamCounts { front, layers })
            }
        }
    }

    /// Bytes of the constant tables a network of this architecture builds
    /// on loading (DFT and polar tables).
    fn table_bytes(&self) -> u64 {
        match self {
            Architecture::Spectral(s) => {
                let (h, w) = s.front.transform_shape();
                Dft::table_bytes(h, w).saturating_add(s.front.table_bytes())
            }
            Architecture::Vector(s) => s.front.as_ref().map_or(0, |f| f.table_bytes()),
            _ => 0,
        }
    }
}

/// Writes a model directory part by part (see the module documentation):
/// a network's front end and layers as they are built, then `model.json`,
/// the checksums and the atomic swap into place. Dropped before
/// [`Self::finish`], it leaves the previous model untouched.
pub struct ModelWriter {
    dir: std::path::PathBuf,
    tmp: std::path::PathBuf,
    layers: usize,
    front: bool,
}

fn part_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::CorruptModel {
        path: path.to_path_buf(),
        reason: format!("writing parameters: {e}"),
    }
}

impl ModelWriter {
    /// Starts writing a model into `dir` (staged beside it).
    pub fn create(dir: &Path) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            tmp: staging_dir(dir)?,
            layers: 0,
            front: false,
        })
    }

    fn part<M: Module>(&self, name: &str, m: &M) -> Result<()> {
        let path = self.tmp.join(name);
        m.clone().save_file(&path).map_err(|e| part_error(&path, e))
    }

    /// Writes the front end's parameters (`front.bpk`).
    pub fn front<M: Module>(&mut self, front: &M) -> Result<()> {
        self.part(FRONT_FILE, front)?;
        self.front = true;
        Ok(())
    }

    /// Writes the next layer's parameters (`layer-NNNN.bpk`).
    pub fn layer<M: Module>(&mut self, layer: &M) -> Result<()> {
        self.layers += 1;
        self.part(&layer_file(self.layers), layer)
    }

    /// Writes `model.json` for `architecture` (which must describe the
    /// layers written), the head if any, the checksums, and swaps the
    /// directory into place.
    pub fn finish(
        self,
        architecture: Architecture,
        head: Option<(&Linear, f64)>,
        meta: serde_json::Value,
    ) -> Result<()> {
        let counts = architecture.validate().map_err(Error::Parameter)?;
        if counts.layers.len() != self.layers || architecture.has_front() != self.front {
            return Err(Error::Parameter(format!(
                "{} layers written for an architecture of {}",
                self.layers,
                counts.layers.len()
            )));
        }
        let head = match head {
            Some((h, logit_scale)) => {
                self.part(HEAD_FILE, h)?;
                Some(HeadSpec {
                    classes: h.weight.val().dims()[1],
                    logit_scale,
                })
            }
            None => None,
        };
        let doc = ModelDoc {
            format: FORMAT.into(),
            version: VERSION,
            architecture,
            head,
            meta,
        };
        let json = serde_json::to_vec_pretty(&doc).expect("model description serialises");
        write_atomic(&self.tmp.join(CONFIG_FILE), &json)?;
        redunet_data::output::seal(&self.tmp)?;
        commit_dir(&self.tmp, &self.dir)
    }
}

/// Parameters of a spectral network's front end inside a model directory.
pub const FRONT_FILE: &str = "front.bpk";
/// Parameters of the head inside a model directory.
pub const HEAD_FILE: &str = "head.bpk";

/// The parameter file of layer `l` (1-based) inside a model directory.
pub fn layer_file(l: usize) -> String {
    format!("layer-{l:04}.bpk")
}

/// A model loaded from (or about to be written to) a model directory.
///
/// ```
/// use redunet_core::{Device, Memberships, Tensor, VectorLayerConfig, VectorReduNet};
/// use redunet_train::{Network, SavedModel};
/// let device = Device::default();
/// let z = Tensor::<2>::from_floats([[1.0, 0.1], [0.9, 0.2], [0.1, 1.0], [0.2, 0.9]], &device);
/// let pi = Memberships::from_labels(&[0, 0, 1, 1], 2, &device)?;
/// let built = VectorReduNet::construct(&z, &pi, 2, &VectorLayerConfig::default(), |_| {})?;
/// let dir = std::env::temp_dir().join(format!("redunet-doc-{}", std::process::id()));
/// SavedModel::new(Network::Vector(built.network)).save(&dir)?;
/// let model = SavedModel::load(&dir, &device)?; // the directory alone
/// assert_eq!(model.transform(&z)?.dims(), [4, 2]);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), redunet_core::Error>(())
/// ```
#[derive(Debug)]
pub struct SavedModel {
    /// The network and its head.
    pub trainee: Trainee<Network>,
    /// The head's logit scale (cross-entropy models).
    pub logit_scale: Option<f64>,
    /// Free-form provenance stored with the model.
    pub meta: serde_json::Value,
}

impl SavedModel {
    /// A network without a head, with no provenance attached.
    pub fn new(net: Network) -> Self {
        Self {
            trainee: Trainee { net, head: None },
            logit_scale: None,
            meta: serde_json::Value::Null,
        }
    }

    /// Whether `dir` holds a model in this format.
    pub fn is_saved_in(dir: &Path) -> bool {
        std::fs::read(dir.join(CONFIG_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["format"] == FORMAT)
    }

    /// Writes the model into `dir` (created or replaced atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let arch = self.trainee.net.architecture()?;
        let head = match (&self.trainee.head, self.logit_scale) {
            (Some(h), Some(scale)) => Some((h, scale)),
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Parameter(
                    "a model with a head needs its logit scale".into(),
                ));
            }
        };
        let mut w = ModelWriter::create(dir)?;
        self.trainee.net.write_parts(&mut w)?;
        w.finish(arch, head, self.meta.clone())
    }

    /// Loads a model directory onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_described(dir, Self::describe(dir)?, device)
    }

    /// Checks a model directory without loading its parameters: every
    /// file against its checksum, every field of `model.json`, and that
    /// each parameter file can hold what it describes.
    pub fn describe(dir: &Path) -> Result<Described> {
        let corrupt = |reason: String| Error::CorruptModel {
            path: dir.to_path_buf(),
            reason,
        };
        redunet_data::output::verify(dir, &[CONFIG_FILE])?;
        let json_path = dir.join(CONFIG_FILE);
        let bytes =
            std::fs::read(&json_path).map_err(redunet_data::io_error("read", &json_path))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("{CONFIG_FILE}: {e}")))?;
        // The format first, so that a model of an earlier format is named
        // as such rather than as a description with unknown fields.
        let (format, version) = (&value["format"], &value["version"]);
        if format != FORMAT || version != VERSION {
            return Err(corrupt(format!(
                "format {format} version {version} (expected {FORMAT} version {VERSION}); \
                 a model of an earlier format must be re-saved by re-running"
            )));
        }
        let doc: ModelDoc =
            serde_json::from_value(value).map_err(|e| corrupt(format!("{CONFIG_FILE}: {e}")))?;
        let counts = doc.architecture.validate().map_err(corrupt)?;
        let feature_dim = doc.architecture.feature_dim();
        let mut total = counts
            .total()
            .ok_or_else(|| corrupt("parameter count overflows".into()))?;
        if let Some(h) = doc.head {
            if h.classes == 0 || !(h.logit_scale.is_finite() && h.logit_scale > 0.0) {
                return Err(corrupt(format!("head {h:?}")));
            }
            total = total
                .checked_add(feature_dim.saturating_mul(h.classes))
                .ok_or_else(|| corrupt("parameter count overflows".into()))?;
        }
        // f32 parameters: a file smaller than their bytes cannot hold them,
        // and nothing is allocated for a description it cannot back.
        let check_size = |name: &str, count: usize| -> Result<()> {
            let path = dir.join(name);
            let size = std::fs::metadata(&path)
                .map_err(redunet_data::io_error("read", &path))?
                .len();
            if (size as u128) < 4 * count as u128 {
                return Err(corrupt(format!(
                    "{name} has {size} bytes, too few for the {count} parameters {CONFIG_FILE} describes"
                )));
            }
            Ok(())
        };
        if doc.architecture.has_front() {
            check_size(FRONT_FILE, counts.front)?;
        }
        for (l, &n) in counts.layers.iter().enumerate() {
            check_size(&layer_file(l + 1), n)?;
        }
        if let Some(h) = doc.head {
            check_size(HEAD_FILE, feature_dim.saturating_mul(h.classes))?;
        }
        Ok(Described { doc, counts, total })
    }

    /// Loads the model `described` (by [`Self::describe`] of `dir`) onto
    /// `device`.
    pub fn load_described(dir: &Path, described: Described, device: &Device) -> Result<Self> {
        let Described { doc, total, .. } = described;
        let feature_dim = doc.architecture.feature_dim();
        // The parameters (a zero skeleton and the record read into it) and
        // the constant tables.
        redunet_data::memory::check(
            (total as u64)
                .saturating_mul(8)
                .saturating_add(doc.architecture.table_bytes()),
            &format!("the {total} parameters of {}", dir.display()),
            "load it on a machine with more memory",
        )?;
        let net = match &doc.architecture {
            Architecture::Vector(sh) => {
                let layers = (0..sh.classes.len())
                    .map(|l| load_part(dir, &layer_file(l + 1), sh.layer_skeleton(l, device)?))
                    .collect::<Result<Vec<_>>>()?;
                let net = VectorReduNet::from_layers(layers)?;
                match &sh.front {
                    None => Network::Vector(net),
                    Some(f) => Network::SignalVector(SignalVectorReduNet {
                        front: load_part(dir, FRONT_FILE, FrontEnd::new(f, device)?)?,
                        net,
                    }),
                }
            }
            Architecture::Spectral(sh) => {
                let front = load_part(dir, FRONT_FILE, sh.front_end(device)?)?;
                let dft = transform_of(&front, device)?;
                let layers = (0..sh.classes.len())
                    .map(|l| {
                        let skeleton = sh.layer_skeleton(l, dft.frequencies(), device)?;
                        load_part(dir, &layer_file(l + 1), skeleton)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Network::Spectral(SpectralReduNet {
                    front,
                    net: redunet_vision::spectral::SpectralNet { dft, layers },
                })
            }
            Architecture::Mlp(dims) => Network::Mlp(Mlp {
                layers: dims
                    .windows(2)
                    .enumerate()
                    .map(|(l, w)| {
                        load_part(
                            dir,
                            &layer_file(l + 1),
                            Dense {
                                weight: Param::from_tensor(Tensor::zeros([w[0], w[1]], device)),
                                bias: Param::from_tensor(Tensor::zeros([1, w[1]], device)),
                            },
                        )
                    })
                    .collect::<Result<Vec<_>>>()?,
            }),
            Architecture::Transformer(sh) => {
                let embed = load_part(dir, FRONT_FILE, sh.embedding(device))?;
                let layers = (0..sh.depth)
                    .map(|l| load_part(dir, &layer_file(l + 1), sh.layer(device)))
                    .collect::<Result<Vec<_>>>()?;
                Network::Transformer(Transformer { embed, layers })
            }
        };
        let head = match doc.head {
            Some(h) => Some(load_part(
                dir,
                HEAD_FILE,
                head(feature_dim, h.classes, device),
            )?),
            None => None,
        };
        Ok(Self {
            trainee: Trainee { net, head },
            logit_scale: doc.head.map(|h| h.logit_scale),
            meta: doc.meta,
        })
    }

    /// Features `[m, d]` of flattened inputs `x: [m, n]` (raw images for
    /// a spectral network: the lifting stage is part of it). Every network's
    /// `features_eval` checks the input's width and finiteness.
    pub fn transform(&self, x: &Tensor<2>) -> Result<Tensor<2>> {
        self.trainee.net.features_eval(x, &x.device())
    }
}

/// A model directory checked by [`SavedModel::describe`], its parameters
/// not yet read.
#[derive(Debug)]
pub struct Described {
    doc: ModelDoc,
    counts: ParamCounts,
    total: usize,
}

impl Described {
    /// The network's architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.doc.architecture
    }

    /// Bytes of its parameters (f32), head included.
    pub fn param_bytes(&self) -> u64 {
        (self.total as u64).saturating_mul(4)
    }

    /// Whether it has a linear head.
    pub fn has_head(&self) -> bool {
        self.doc.head.is_some()
    }
}

/// A vector network applied layer by layer from its model directory, one
/// layer in memory at a time: how a network of thousands of dense layers,
/// written as it was built, is applied on a machine that cannot hold it
/// whole. Each application reads every layer file once; the checksums were
/// checked when the directory was described.
#[derive(Debug)]
pub struct StreamedVector {
    dir: std::path::PathBuf,
    shape: VectorShape,
    front: Option<FrontEnd>,
    device: Device,
}

impl StreamedVector {
    /// Opens the vector model `described` (by [`SavedModel::describe`] of
    /// `dir`) on `device`: its front end, if any, is loaded; its layers are
    /// read as they are applied.
    pub fn open(dir: &Path, described: Described, device: &Device) -> Result<Self> {
        let corrupt = |reason: &str| Error::CorruptModel {
            path: dir.to_path_buf(),
            reason: reason.into(),
        };
        if described.has_head() {
            return Err(corrupt("a vector model with a head is loaded whole"));
        }
        let Architecture::Vector(shape) = described.doc.architecture else {
            return Err(corrupt("only vector networks are applied layer by layer"));
        };
        let largest = described.counts.layers.iter().copied().max().unwrap_or(0);
        redunet_data::memory::check(
            redunet_data::memory::bytes(&[largest, 2], 4)
                .saturating_add(shape.front.as_ref().map_or(0, |f| f.table_bytes())),
            &format!("a layer of {}", dir.display()),
            "apply it on a machine with more memory",
        )?;
        let front = match &shape.front {
            Some(f) => Some(load_part(dir, FRONT_FILE, FrontEnd::new(f, device)?)?),
            None => None,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            shape,
            front,
            device: device.clone(),
        })
    }

    /// Length of a flattened input sample.
    pub fn input_dim(&self) -> usize {
        self.front
            .as_ref()
            .map_or(self.shape.dim, FrontEnd::sample_len)
    }

    /// Length of a feature vector.
    pub fn feature_dim(&self) -> usize {
        self.shape.dim
    }

    /// The front end the layers take their input from, if any.
    pub fn front(&self) -> Option<&FrontEnd> {
        self.front.as_ref()
    }

    /// Features of `x: [m, n]` (raw samples through the front end, if
    /// any), the same as the whole network's `transform`: input checked and
    /// normalised, then every layer with soft memberships, each read from
    /// its file just before it is applied.
    pub fn transform(&self, x: &Tensor<2>) -> Result<Tensor<2>> {
        redunet_vision::network::check_input(x, self.input_dim())?;
        let x = x.clone().to_device(&self.device);
        let z = match &self.front {
            Some(f) => redunet_vision::network::flatten(f.apply(x)?),
            None => x,
        };
        let mut z = redunet_core::layer::vector::normalize_input_rows(z);
        for l in 0..self.shape.classes.len() {
            let skeleton = self.shape.layer_skeleton(l, &self.device)?;
            let layer = load_part(&self.dir, &layer_file(l + 1), skeleton)?;
            z = layer.forward_trusted(&z);
        }
        Ok(z)
    }
}

/// Reads the record of part `name` of model directory `dir` into `skeleton`
/// and checks that every parameter is finite.
fn load_part<M: Module>(dir: &Path, name: &str, skeleton: M) -> Result<M> {
    let path = dir.join(name);
    let corrupt = |reason: String| Error::CorruptModel {
        path: path.clone(),
        reason,
    };
    let m = skeleton
        .try_load_file(&path)
        .map_err(|e| corrupt(e.to_string()))?;
    let mut check = FiniteCheck::default();
    m.visit(&mut check);
    match check.error {
        Some(e) => Err(corrupt(e)),
        None => Ok(m),
    }
}

/// Records the first parameter that holds NaN or Inf.
#[derive(Default)]
struct FiniteCheck {
    path: Vec<String>,
    error: Option<String>,
}

impl ModuleVisitor for FiniteCheck {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = redunet_core::host::check_finite(&param.val(), "parameter") {
            self.error = Some(format!("{} at {}", e, self.path.join(".")));
        }
    }
}
