//! A saved model applied to new samples: any network of the one model
//! format (vector or spectral ReduNet with its front end, MLP, transformer;
//! constructed or trained). Inputs are checked against the sample shape the model was
//! built for; an empty input gives an empty output.

use burn::tensor::{Device, Tensor};
use redunet_core::{Error, Result};
use redunet_train::trainer::FeatureNet;
use redunet_train::{Network, SavedModel};
use redunet_vision::front::FrontEndConfig;
use std::path::Path;

/// A loaded model directory.
pub struct AnyModel(pub SavedModel);

/// `model.json` is a few kilobytes; more is damage, not a model.
const MAX_MODEL_JSON: u64 = 64 << 20;

impl AnyModel {
    /// Checks `model.json`'s size and checksum, then loads the model (the
    /// loader checks every other file).
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
        Ok(Self(SavedModel::load(dir, device)?))
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
        let net = &self.0.trainee.net;
        let front_shapes = |f: &FrontEndConfig| {
            let s = f.sample_shape.clone();
            match s.as_slice() {
                [1, rest @ ..] => with_channels(1, rest.to_vec()),
                [c, t] if f.polar.is_none() && !f.images => with_channels(*c, vec![*t]),
                _ => vec![s],
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
        let fits = match self.0.trainee.net {
            Network::Spectral(_) | Network::SignalVector(_) | Network::Transformer(_) => {
                shapes.iter().any(|s| s.as_slice() == sample_shape)
            }
            _ => values(sample_shape) == values(&shapes[0]),
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
        if block >= m {
            return self.0.transform(&x);
        }
        let mut out = Vec::with_capacity(m.saturating_mul(dim));
        for start in (0..m).step_by(block) {
            let end = (start + block).min(m);
            let f = self.0.transform(&x.clone().slice([start..end, 0..n]))?;
            out.extend(redunet_core::host::to_vec(f)?);
        }
        Ok(redunet_core::host::tensor(out, [m, dim], &x.device()))
    }
}

/// The working set of one block of [`AnyModel::transform`].
const BLOCK_BYTES: u64 = 512 << 20;
