//! The saved model: a network (vector or spectral ReduNet, or an MLP), its
//! optional linear head, and everything needed to apply them, in one
//! directory that loads on its own:
//!
//! - `model.json`: the architecture — per layer the classes with operators
//!   and their γ_j, η, λ, ε², the membership mode; the input shape and the
//!   lifting stage of spectral networks; the head's classes and logit scale;
//!   and `meta`, free-form provenance (e.g. the run configuration) that
//!   loading never needs;
//! - `model.bpk`: the parameters, through Burn's recorder (burnpack).
//!
//! Both are written into a staging directory that is swapped into place, so
//! a reader sees the old model or the new one, never a mixture. Loading
//! validates every field of `model.json`, and checks that the parameter
//! file is large enough to hold what it describes, before it allocates.

use crate::mlp::{Dense, Mlp};
use crate::spectral::{SpectralLayerParams, SpectralReduNet, SpectralShape};
use crate::trainer::{FeatureNet, Trainee, head};
use crate::vector::VectorShape;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use redunet_core::VectorReduNet;
use redunet_core::network::{commit_dir, staging_dir};
use redunet_core::{Error, Result, VectorLayerConfig};
use redunet_data::npy::write_atomic;
use redunet_vision::spectral::Dft;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `format` of a saved model's `model.json`.
pub const FORMAT: &str = "redunet-model";
const VERSION: u32 = 1;
/// Parameter file inside a model directory.
pub const PARAMS_FILE: &str = "model.bpk";
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
    /// A translation- or shift-invariant ReduNet.
    Spectral(SpectralReduNet),
    /// A multi-layer perceptron.
    Mlp(Mlp),
}

impl FeatureNet for Network {
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Network::Vector(n) => n.features(x),
            Network::Spectral(n) => FeatureNet::features(n, x),
            Network::Mlp(n) => n.features(x),
        }
    }

    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>> {
        match self {
            Network::Vector(n) => n.features_eval(x, device),
            Network::Spectral(n) => FeatureNet::features_eval(n, x, device),
            Network::Mlp(n) => n.features_eval(x, device),
        }
    }

    fn feature_dim(&self) -> usize {
        match self {
            Network::Vector(n) => n.feature_dim(),
            Network::Spectral(n) => FeatureNet::feature_dim(n),
            Network::Mlp(n) => n.feature_dim(),
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

#[derive(Serialize, Deserialize)]
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
            Network::Vector(n) => Architecture::Vector(VectorShape::of(n)?),
            Network::Spectral(n) => Architecture::Spectral(n.shape.clone()),
            Network::Mlp(n) => Architecture::Mlp(n.dims()),
        })
    }

    /// Length of a flattened input sample.
    pub fn input_dim(&self) -> usize {
        match self {
            Network::Vector(n) => n.dim().unwrap_or(0),
            Network::Spectral(n) => n.input_dim(),
            Network::Mlp(n) => n.dims()[0],
        }
    }

    /// A network of this architecture with zero parameters (to be loaded).
    fn skeleton(arch: &Architecture, device: &Device) -> Result<Self> {
        let zeros2 = |s: [usize; 2]| Param::from_tensor(Tensor::<2>::zeros(s, device));
        let zeros4 = |s: [usize; 4]| Param::from_tensor(Tensor::<4>::zeros(s, device));
        Ok(match arch {
            Architecture::Vector(sh) => Network::Vector(sh.skeleton(device)?),
            Architecture::Spectral(sh) => {
                let p = sh.height * (sh.width / 2 + 1);
                let ch = sh.channels;
                Network::Spectral(SpectralReduNet {
                    lift: sh.lift_kernel.map(|k| zeros4([ch, sh.in_channels, k, k])),
                    layers: sh
                        .classes
                        .iter()
                        .map(|c| SpectralLayerParams {
                            re: zeros4([p, c.len() + 1, ch, ch]),
                            im: zeros4([p, c.len() + 1, ch, ch]),
                        })
                        .collect(),
                    dft: Dft::new_2d(sh.height, sh.width, device)?,
                    shape: sh.clone(),
                })
            }
            Architecture::Mlp(dims) => Network::Mlp(Mlp {
                layers: dims
                    .windows(2)
                    .map(|w| Dense {
                        weight: zeros2([w[0], w[1]]),
                        bias: zeros2([1, w[1]]),
                    })
                    .collect(),
            }),
        })
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

impl Architecture {
    /// Length of a feature vector (what a head takes).
    pub fn feature_dim(&self) -> usize {
        match self {
            Architecture::Vector(s) => s.dim,
            Architecture::Spectral(s) => s.channels * s.height * s.width,
            Architecture::Mlp(d) => d.last().copied().unwrap_or(0),
        }
    }

    /// Checks every field; returns the number of parameters it describes.
    pub fn validate(&self) -> std::result::Result<usize, String> {
        let mul = |xs: &[usize]| {
            xs.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .ok_or_else(|| format!("parameter count of {xs:?} overflows"))
        };
        let add = |a: usize, b: usize| {
            a.checked_add(b)
                .ok_or_else(|| "parameter count overflows".to_string())
        };
        match self {
            Architecture::Vector(s) => {
                if s.dim == 0 {
                    return Err("vector network of dimension 0".into());
                }
                checked_layers("vector", &s.classes, &s.gammas, s.num_classes, &s.config)?;
                let mut n = 0;
                for c in &s.classes {
                    n = add(n, mul(&[c.len() + 1, s.dim, s.dim])?)?;
                }
                Ok(n)
            }
            Architecture::Spectral(s) => {
                if [s.height, s.width, s.in_channels, s.channels].contains(&0) {
                    return Err(format!("spectral network of shape {s:?}"));
                }
                checked_layers("spectral", &s.classes, &s.gammas, s.num_classes, &s.config)?;
                let mut n = 0;
                match s.lift_kernel {
                    Some(0) => return Err("lifting kernel of size 0".into()),
                    Some(k) => n = mul(&[s.channels, s.in_channels, k, k])?,
                    None if s.channels != s.in_channels => {
                        return Err(format!(
                            "{} channels from {} input channels without lifting",
                            s.channels, s.in_channels
                        ));
                    }
                    None => {}
                }
                let p = mul(&[s.height, s.width / 2 + 1])?;
                for c in &s.classes {
                    n = add(n, mul(&[2, p, c.len() + 1, s.channels, s.channels])?)?;
                }
                Ok(n)
            }
            Architecture::Mlp(d) => {
                if d.len() < 2 || d.contains(&0) {
                    return Err(format!("MLP widths {d:?}"));
                }
                let mut n = 0;
                for w in d.windows(2) {
                    n = add(n, mul(&[w[0] + 1, w[1]])?)?;
                }
                Ok(n)
            }
        }
    }
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
        dir.join(PARAMS_FILE).is_file() && dir.join(CONFIG_FILE).is_file()
    }

    /// Writes the model into `dir` (created or replaced atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let arch = self.trainee.net.architecture()?;
        let head = match (&self.trainee.head, self.logit_scale) {
            (Some(h), Some(logit_scale)) => Some(HeadSpec {
                classes: h.weight.val().dims()[1],
                logit_scale,
            }),
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Parameter(
                    "a model with a head needs its logit scale".into(),
                ));
            }
        };
        let doc = ModelDoc {
            format: FORMAT.into(),
            version: VERSION,
            architecture: arch,
            head,
            meta: self.meta.clone(),
        };
        let tmp = staging_dir(dir)?;
        let params = tmp.join(PARAMS_FILE);
        self.trainee
            .clone()
            .save_file(&params)
            .map_err(|e| Error::CorruptModel {
                path: params.clone(),
                reason: format!("writing parameters: {e}"),
            })?;
        let json = serde_json::to_vec_pretty(&doc).expect("model description serialises");
        write_atomic(&tmp.join(CONFIG_FILE), &json)?;
        redunet_data::output::seal(&tmp)?;
        commit_dir(&tmp, dir)
    }

    /// Loads a model directory onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let corrupt = |reason: String| Error::CorruptModel {
            path: dir.to_path_buf(),
            reason,
        };
        redunet_data::output::verify(dir, &[CONFIG_FILE, PARAMS_FILE])?;
        let json_path = dir.join(CONFIG_FILE);
        let bytes =
            std::fs::read(&json_path).map_err(redunet_data::io_error("read", &json_path))?;
        let doc: ModelDoc =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("{CONFIG_FILE}: {e}")))?;
        if doc.format != FORMAT || doc.version != VERSION {
            return Err(corrupt(format!(
                "format {} version {} (expected {FORMAT} version {VERSION})",
                doc.format, doc.version
            )));
        }
        let mut count = doc.architecture.validate().map_err(corrupt)?;
        let feature_dim = doc.architecture.feature_dim();
        if let Some(h) = doc.head {
            if h.classes == 0 || !(h.logit_scale.is_finite() && h.logit_scale > 0.0) {
                return Err(corrupt(format!("head {h:?}")));
            }
            count = count
                .checked_add(feature_dim.saturating_mul(h.classes))
                .ok_or_else(|| corrupt("parameter count overflows".into()))?;
        }
        let params = dir.join(PARAMS_FILE);
        let size = std::fs::metadata(&params)
            .map_err(redunet_data::io_error("read", &params))?
            .len();
        // f32 parameters: a file smaller than their bytes cannot hold them,
        // and nothing is allocated for a description it cannot back.
        if (size as u128) < 4 * count as u128 {
            return Err(corrupt(format!(
                "{PARAMS_FILE} has {size} bytes, too few for the {count} parameters {CONFIG_FILE} describes"
            )));
        }
        // The zero skeleton and the record read into it.
        redunet_data::memory::check(
            (count as u64).saturating_mul(8),
            &format!("the {count} parameters of {}", dir.display()),
            "load it on a machine with more memory",
        )?;
        let skeleton = Trainee {
            net: Network::skeleton(&doc.architecture, device)?,
            head: doc.head.map(|h| head(feature_dim, h.classes, device)),
        };
        let trainee = skeleton
            .try_load_file(&params)
            .map_err(|e| corrupt(format!("{PARAMS_FILE}: {e}")))?;
        let mut check = FiniteCheck::default();
        trainee.visit(&mut check);
        if let Some(e) = check.error {
            return Err(corrupt(format!("{PARAMS_FILE}: {e}")));
        }
        Ok(Self {
            trainee,
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
