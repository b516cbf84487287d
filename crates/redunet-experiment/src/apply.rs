//! Any saved model, applied to new samples: a trained or constructed
//! network (`redunet-model`) or a constructed spectral network with its
//! front end (`redunet-spectral-network`), told apart by the `format` its
//! `model.json` declares. Inputs are checked against the sample shape the
//! model was built for; an empty input gives an empty output.

use burn::tensor::{Device, Tensor};
use redunet_core::{Error, Result};
use redunet_train::trainer::FeatureNet;
use redunet_train::{Network, SavedModel};
use redunet_vision::saved::SpectralModel;
use std::path::Path;

/// A model directory of either format.
// One model per process, never held in bulk: not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum AnyModel {
    /// A `redunet-model` directory (vector, spectral or MLP, trained or constructed).
    Saved(SavedModel),
    /// A `redunet-spectral-network` directory (a constructed invariant network with its front end).
    Spectral(SpectralModel),
}

/// `model.json` is a few kilobytes; more is damage, not a model.
const MAX_MODEL_JSON: u64 = 64 << 20;

impl AnyModel {
    /// Checks the directory's checksums, reads the format `model.json`
    /// declares and loads the model with that format's loader.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let corrupt = |reason: String| Error::CorruptModel {
            path: dir.join("model.json"),
            reason,
        };
        let path = dir.join("model.json");
        let meta = std::fs::metadata(&path).map_err(redunet_data::io_error("read", &path))?;
        // Only model.json here: the format's loader checks every file.
        redunet_data::output::verify_file(dir, "model.json")?;
        if meta.len() > MAX_MODEL_JSON {
            return Err(corrupt(format!("{} bytes", meta.len())));
        }
        let bytes = std::fs::read(&path).map_err(redunet_data::io_error("read", &path))?;
        let doc: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not JSON: {e}")))?;
        match doc.get("format").and_then(|f| f.as_str()) {
            Some(redunet_train::model::FORMAT) => Ok(Self::Saved(SavedModel::load(dir, device)?)),
            Some(redunet_vision::saved::FORMAT) => {
                Ok(Self::Spectral(SpectralModel::load(dir, device)?))
            }
            found => Err(corrupt(format!(
                "format {found:?}; expected {:?} or {:?}",
                redunet_train::model::FORMAT,
                redunet_vision::saved::FORMAT
            ))),
        }
    }

    /// The shapes of one input sample the model accepts (any of them), and
    /// the length of its features.
    pub fn sample_shapes(&self) -> (Vec<Vec<usize>>, usize) {
        // Images and signals of one channel may drop the channel axis.
        let with_channels = |c: usize, rest: Vec<usize>| {
            let mut shapes = vec![[vec![c], rest.clone()].concat()];
            if c == 1 {
                shapes.push(rest);
            }
            shapes
        };
        match self {
            AnyModel::Saved(m) => {
                let net = &m.trainee.net;
                match net {
                    Network::Spectral(n) => {
                        let s = &n.shape;
                        let rest = if s.height == 1 {
                            vec![s.width]
                        } else {
                            vec![s.height, s.width]
                        };
                        (with_channels(s.in_channels, rest), net.feature_dim())
                    }
                    // Vector networks and MLPs take flat vectors: any shape of
                    // that many values (e.g. images for a network built on
                    // them) is accepted, as the flattening is the same.
                    _ => (vec![vec![net.input_dim()]], net.feature_dim()),
                }
            }
            AnyModel::Spectral(m) => {
                let first = &m.net.layers[0];
                let dim = first.channels() * first.dft().len();
                let shapes = match &m.front {
                    Some(f) => {
                        let s = f.config().sample_shape.clone();
                        match s.as_slice() {
                            [1, rest @ ..] => with_channels(1, rest.to_vec()),
                            _ => vec![s],
                        }
                    }
                    None => with_channels(first.channels(), vec![first.dft().len()]),
                };
                (shapes, dim)
            }
        }
    }

    /// Checks that samples of `sample_shape` are what the model was built
    /// for (channels, length, image size, dimension).
    pub fn check_samples(&self, sample_shape: &[usize]) -> Result<()> {
        self.check_against(&self.sample_shapes().0, sample_shape)
    }

    fn check_against(&self, shapes: &[Vec<usize>], sample_shape: &[usize]) -> Result<()> {
        let values = |s: &[usize]| s.iter().product::<usize>();
        let fits = match self {
            AnyModel::Saved(m) if !matches!(m.trainee.net, Network::Spectral(_)) => {
                values(sample_shape) == values(&shapes[0])
            }
            _ => shapes.iter().any(|s| s.as_slice() == sample_shape),
        };
        if fits {
            return Ok(());
        }
        Err(Error::Shape(format!(
            "the model takes samples of shape {}, got samples of shape {sample_shape:?}",
            shapes
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" or ")
        )))
    }

    /// Features `[m, d]` of samples `x` of shape `[m, sample…]`.
    pub fn transform(&self, x: Tensor<2>, sample_shape: &[usize]) -> Result<Tensor<2>> {
        if sample_shape.iter().product::<usize>() != x.dims()[1] {
            return Err(Error::Shape(format!(
                "samples of shape {sample_shape:?} flattened to rows of {}",
                x.dims()[1]
            )));
        }
        let (shapes, dim) = self.sample_shapes();
        self.check_against(&shapes, sample_shape)?;
        let [m, n] = x.dims();
        // The input, its front-end signals and the features (with the
        // working copies of a layer's update).
        redunet_data::memory::check(
            redunet_data::memory::bytes(&[m, n + 4 * dim], 4),
            &format!("the features of {m} samples"),
            "transform the samples in smaller files",
        )?;
        if m == 0 {
            return Ok(Tensor::zeros([0, dim], &x.device()));
        }
        match self {
            AnyModel::Saved(model) => model.transform(&x),
            AnyModel::Spectral(model) => model.transform(x),
        }
    }
}
