//! Saving and loading spectral networks: a directory with `model.json` and
//! one `.npy` per layer holding its complex operators `[2, P, k'+1, C, C]`
//! (real and imaginary parts of α E(p), then α_j C_j(p)), written into a
//! staging directory and swapped into place, as for vector networks.
//!
//! [`SpectralNetWriter`] writes layer by layer, so that a run of thousands
//! of layers never holds them all in memory.

use crate::front::{FrontEnd, FrontEndConfig};
use crate::spectral::{Dft, SpectralLayer, SpectralNet};
use burn::tensor::{Device, Tensor};
use redunet_core::network::{commit_dir, read_model_array, read_model_json, staging_dir};
use redunet_core::{Error, Result, VectorLayerConfig};
use redunet_data::npy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `format` of a spectral network's `model.json`.
pub const FORMAT: &str = "redunet-spectral-network";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedLayer {
    config: VectorLayerConfig,
    gamma: Vec<f64>,
    classes: Vec<usize>,
    operators: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedNetwork {
    format: String,
    version: u32,
    /// Signals are `[C, height·width]`; height 1 for 1D networks.
    height: usize,
    width: usize,
    channels: usize,
    num_classes: usize,
    layers: Vec<SavedLayer>,
    /// The front end that turns raw samples into the network's signals
    /// (absent: the network takes signals `[C, T]` directly).
    #[serde(default)]
    front: Option<FrontEndConfig>,
    #[serde(default)]
    meta: serde_json::Value,
}

/// Writes a spectral network one layer at a time.
pub struct SpectralNetWriter {
    dir: PathBuf,
    tmp: PathBuf,
    shape: Option<(usize, usize, usize, usize)>,
    layers: Vec<SavedLayer>,
}

impl SpectralNetWriter {
    /// Starts writing a network into `dir` (staged, swapped into place by [`Self::finish`]).
    pub fn create(dir: &Path) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            tmp: staging_dir(dir)?,
            shape: None,
            layers: Vec::new(),
        })
    }

    /// Writes the next layer's operators.
    pub fn push(&mut self, layer: &SpectralLayer) -> Result<()> {
        let dft = layer.dft();
        let shape = (dft.height, dft.width, layer.channels(), layer.num_classes());
        if *self.shape.get_or_insert(shape) != shape {
            return Err(Error::Shape(format!(
                "layer {} of shape {shape:?} in a network of shape {:?}",
                self.layers.len() + 1,
                self.shape
            )));
        }
        let name = format!("layer-{:04}.npy", self.layers.len() + 1);
        let (p, k1, c) = (dft.frequencies(), layer.classes().len() + 1, shape.2);
        npy::write_npy_f32(
            &self.tmp.join(&name),
            &[2, p, k1, c, c],
            &layer.operators()?,
        )?;
        self.layers.push(SavedLayer {
            config: *layer.config(),
            gamma: layer.gamma().to_vec(),
            classes: layer.classes().to_vec(),
            operators: name,
        });
        Ok(())
    }

    /// Writes `model.json` (with the front end that feeds the network, if
    /// any, and free-form `meta`) and moves the directory into place.
    pub fn finish(self, front: Option<FrontEndConfig>, meta: serde_json::Value) -> Result<()> {
        let (height, width, channels, num_classes) = self
            .shape
            .ok_or_else(|| Error::Empty("a network without layers".into()))?;
        let doc = SavedNetwork {
            format: FORMAT.into(),
            version: VERSION,
            height,
            width,
            channels,
            num_classes,
            layers: self.layers,
            front,
            meta,
        };
        let json = serde_json::to_vec_pretty(&doc).expect("model metadata serialises");
        npy::write_atomic(&self.tmp.join("model.json"), &json)?;
        redunet_data::output::seal(&self.tmp)?;
        commit_dir(&self.tmp, &self.dir)
    }
}

impl SpectralNet {
    /// Saves the network into directory `dir` (created or replaced
    /// atomically); `meta` is stored verbatim.
    pub fn save(&self, dir: &Path, meta: serde_json::Value) -> Result<()> {
        let mut w = SpectralNetWriter::create(dir)?;
        for layer in &self.layers {
            w.push(layer)?;
        }
        w.finish(None, meta)
    }

    /// Whether `dir` holds a spectral network (rather than a vector one).
    pub fn is_saved_in(dir: &Path) -> bool {
        read_model_json(dir)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["format"] == FORMAT)
    }

    /// Loads a network saved by [`Self::save`] onto `device`, with its
    /// `meta`.
    pub fn load(dir: &Path, device: &Device) -> Result<(Self, serde_json::Value)> {
        let (net, _, meta) = Self::load_with_front(dir, device)?;
        Ok((net, meta))
    }

    fn load_with_front(
        dir: &Path,
        device: &Device,
    ) -> Result<(Self, Option<FrontEndConfig>, serde_json::Value)> {
        let corrupt = |reason: String| Error::CorruptModel {
            path: dir.to_path_buf(),
            reason,
        };
        redunet_data::output::verify(dir, &["model.json"])?;
        let doc: SavedNetwork = serde_json::from_slice(&read_model_json(dir)?)
            .map_err(|e| corrupt(format!("model.json: {e}")))?;
        if doc.format != FORMAT || doc.version != VERSION {
            return Err(corrupt(format!(
                "format {} version {} (expected {FORMAT} version {VERSION})",
                doc.format, doc.version
            )));
        }
        if doc.layers.is_empty() || doc.height == 0 || doc.width == 0 || doc.channels == 0 {
            return Err(corrupt("no layers or an empty signal shape".into()));
        }
        if let Some(f) = &doc.front {
            f.validate()
                .map_err(|e| corrupt(format!("front end: {e}")))?;
            if f.signal_shape() != (doc.channels, doc.height.saturating_mul(doc.width)) {
                return Err(corrupt(format!(
                    "the front end makes signals {:?}, the layers take [{}, {}]",
                    f.signal_shape(),
                    doc.channels,
                    doc.height.saturating_mul(doc.width)
                )));
            }
        }
        // The operator files bound every size: they are read (and their
        // shapes checked) before the transform's tables are built.
        let frequencies = doc
            .height
            .checked_mul(doc.width / 2 + 1)
            .ok_or_else(|| corrupt("image size overflows".into()))?;
        let c = doc.channels;
        let mut arrays = Vec::with_capacity(doc.layers.len().min(1 << 16));
        for (i, l) in doc.layers.iter().enumerate() {
            let shape = [2, frequencies, l.classes.len() + 1, c, c];
            arrays.push(
                read_model_array(dir, &l.operators, &shape)
                    .map_err(|e| corrupt(format!("layer {}: {e}", i + 1)))?,
            );
        }
        let dft = Dft::new_2d(doc.height, doc.width, device)?;
        let mut layers = Vec::with_capacity(arrays.len());
        for (i, (l, data)) in doc.layers.into_iter().zip(arrays).enumerate() {
            let layer = SpectralLayer::from_operators(
                &dft,
                data,
                c,
                l.gamma,
                l.classes,
                doc.num_classes,
                l.config,
            )
            .map_err(|e| corrupt(format!("layer {}: {e}", i + 1)))?;
            layers.push(layer);
        }
        Ok((Self { layers }, doc.front, doc.meta))
    }
}

/// A saved spectral network with its front end: raw samples in, features
/// out, loaded from its directory alone.
pub struct SpectralModel {
    /// The front end that turns raw samples into the network's signals, if any.
    pub front: Option<FrontEnd>,
    /// The layers.
    pub net: SpectralNet,
    /// Free-form provenance (e.g. the run configuration).
    pub meta: serde_json::Value,
}

impl SpectralModel {
    /// Loads a directory written by [`SpectralNetWriter`] onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let (net, front, meta) = SpectralNet::load_with_front(dir, device)?;
        let front = front.map(|f| FrontEnd::new(&f, device)).transpose()?;
        Ok(Self { front, net, meta })
    }

    /// Features `[m, C·T]` of flattened samples `x: [m, n]` (raw samples
    /// through the front end; signals `[C, T]` when there is none).
    pub fn transform(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        redunet_core::host::check_finite(&x, "model input")?;
        let [m, n] = x.dims();
        let first = &self.net.layers[0];
        let (c, t) = (first.channels(), first.dft().len());
        let z = match &self.front {
            Some(f) => f.apply(x)?,
            None if n == c * t => x.reshape([m, c, t]),
            None => {
                return Err(Error::Shape(format!(
                    "the network takes signals [{c}, {t}], got [{m}, {n}]"
                )));
            }
        };
        Ok(self.net.transform(&z)?.reshape([m, c * t]))
    }
}
