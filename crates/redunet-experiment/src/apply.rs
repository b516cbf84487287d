//! A saved model applied to new samples: any network of the one model
//! format (vector or spectral ReduNet with its front end, MLP, transformer;
//! constructed or trained), loaded whole or, for a large vector network,
//! read layer by layer as it is applied. Inputs are checked against the sample shape the model was
//! built for; an empty input gives an empty output.

use burn::nn::Linear;
use burn::tensor::{Device, Tensor};
use redunet_core::{Error, Result};
use redunet_train::model::StreamedVector;
use redunet_train::trainer::FeatureNet;
use redunet_train::{Architecture, Network, SavedModel};
use redunet_vision::front::FrontEndConfig;
use std::path::Path;

/// A model directory opened to be applied: loaded whole, or, for a vector
/// network larger than [`STREAM_BYTES`], applied layer by layer from its
/// files (one layer in memory at a time).
// One model per process, never held in bulk: the whole model's inline DFT
// tables are not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum AnyModel {
    /// The whole model in memory.
    Whole(SavedModel),
    /// A vector network read layer by layer as it is applied.
    Streamed(StreamedVector),
}

/// `model.json` is a few kilobytes; more is damage, not a model.
const MAX_MODEL_JSON: u64 = 64 << 20;

/// Vector networks whose parameters take more than this are applied layer
/// by layer from their files rather than loaded whole: a network written
/// layer by layer as it was built (thousands of dense layers) is applied
/// in the memory its construction took.
pub const STREAM_BYTES: u64 = 1 << 30;

impl AnyModel {
    /// Checks `model.json`'s size and checksum, then every file of the
    /// model, and loads it (or opens it to be applied layer by layer).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let path = dir.join("model.json");
        let meta = std::fs::metadata(&path).map_err(redunet_data::io_error("read", &path))?;
        redunet_data::output::verify_file(dir, "model.json")?;
        if meta.len() > MAX_MODEL_JSON {
            return Err(Error::CorruptModel {
                path,
                reason: format!("{} bytes", meta.len()),
            });
        }
        let described = SavedModel::describe(dir)?;
        let streams = matches!(described.architecture(), Architecture::Vector(_))
            && !described.has_head()
            && described.param_bytes() > STREAM_BYTES;
        Ok(if streams {
            Self::Streamed(StreamedVector::open(dir, described, device)?)
        } else {
            Self::Whole(SavedModel::load_described(dir, described, device)?)
        })
    }

    /// The model in memory (none for a model applied layer by layer).
    pub fn whole(&self) -> Option<&SavedModel> {
        match self {
            Self::Whole(m) => Some(m),
            Self::Streamed(_) => None,
        }
    }

    /// Features of flattened samples `x: [m, n]`, checked.
    pub fn features(&self, x: &Tensor<2>) -> Result<Tensor<2>> {
        match self {
            Self::Whole(m) => m.transform(x),
            Self::Streamed(s) => s.transform(x),
        }
    }

    /// The linear head and its logit scale (cross-entropy models).
    pub fn head(&self) -> Option<(&Linear, f64)> {
        let m = self.whole()?;
        Some((m.trainee.head.as_ref()?, m.logit_scale.unwrap_or(1.0)))
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
        let front_shapes = |f: &FrontEndConfig| {
            let s = f.sample_shape.clone();
            match s.as_slice() {
                [1, rest @ ..] => with_channels(1, rest.to_vec()),
                [c, t] if f.polar.is_none() && !f.images => with_channels(*c, vec![*t]),
                _ => vec![s],
            }
        };
        let net = match self {
            Self::Whole(m) => &m.trainee.net,
            Self::Streamed(s) => {
                let shapes = match s.front() {
                    Some(f) => front_shapes(f.config()),
                    None => vec![vec![s.input_dim()]],
                };
                return (shapes, s.feature_dim());
            }
        };
        match net {
            Network::Spectral(n) => (front_shapes(n.front.config()), net.feature_dim()),
            Network::SignalVector(n) => (front_shapes(n.front.config()), net.feature_dim()),
            Network::Transformer(n) => {
                let e = &n.embed;
                (
                    with_channels(e.channels, vec![e.height, e.width]),
                    net.feature_dim(),
                )
            }
            // Vector networks and MLPs take flat vectors: any shape of
            // that many values (e.g. images for a network built on
            // them) is accepted, as the flattening is the same.
            _ => (vec![vec![net.input_dim()]], net.feature_dim()),
        }
    }

    /// Checks that samples of `sample_shape` are what the model was built
    /// for (channels, length, image size, dimension).
    pub fn check_samples(&self, sample_shape: &[usize]) -> Result<()> {
        self.check_against(&self.sample_shapes().0, sample_shape)
    }

    fn check_against(&self, shapes: &[Vec<usize>], sample_shape: &[usize]) -> Result<()> {
        let values = |s: &[usize]| s.iter().product::<usize>();
        let exact = match self {
            Self::Whole(m) => matches!(
                m.trainee.net,
                Network::Spectral(_) | Network::SignalVector(_) | Network::Transformer(_)
            ),
            Self::Streamed(s) => s.front().is_some(),
        };
        let fits = if exact {
            shapes.iter().any(|s| s.as_slice() == sample_shape)
        } else {
            values(sample_shape) == values(&shapes[0])
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
        self.transform_blocked(x, sample_shape, BLOCK_BYTES)
    }

    /// [`Self::transform`] in blocks of rows whose working set is at most
    /// `block_bytes` (at least one row per block).
    pub fn transform_blocked(
        &self,
        x: Tensor<2>,
        sample_shape: &[usize],
        block_bytes: u64,
    ) -> Result<Tensor<2>> {
        if sample_shape.iter().product::<usize>() != x.dims()[1] {
            return Err(Error::Shape(format!(
                "samples of shape {sample_shape:?} flattened to rows of {}",
                x.dims()[1]
            )));
        }
        let (shapes, dim) = self.sample_shapes();
        self.check_against(&shapes, sample_shape)?;
        let [m, n] = x.dims();
        // Rows are independent: the samples go through in blocks whose
        // working set (front-end signals, a layer's update) stays under
        // `block_bytes`, so only the input and the features are whole.
        let per_row = redunet_data::memory::bytes(&[n + 4 * dim], 4).max(1);
        let block = ((block_bytes / per_row) as usize).clamp(1, m.max(1));
        redunet_data::memory::check(
            redunet_data::memory::bytes(&[m, n + dim], 4)
                .saturating_add(redunet_data::memory::bytes(&[block, n + 4 * dim], 4)),
            &format!("the features of {m} samples"),
            "transform the samples in smaller files",
        )?;
        if m == 0 {
            return Ok(Tensor::zeros([0, dim], &x.device()));
        }
        // A network applied layer by layer reads every layer once per call:
        // all rows at once.
        if block >= m || matches!(self, Self::Streamed(_)) {
            return self.features(&x);
        }
        let mut out = Vec::with_capacity(m.saturating_mul(dim));
        for start in (0..m).step_by(block) {
            let end = (start + block).min(m);
            let f = self.features(&x.clone().slice([start..end, 0..n]))?;
            out.extend(redunet_core::host::to_vec(f)?);
        }
        Ok(redunet_core::host::tensor(out, [m, dim], &x.device()))
    }
}

/// The working set of one block of [`AnyModel::transform`].
const BLOCK_BYTES: u64 = 512 << 20;
