//! The memory a run will need, estimated from its configuration and the
//! size of its data before the network or the features are allocated, and
//! checked against what the machine has: a mistyped size is an error naming
//! the setting to change, not an allocation abort an hour in.
//!
//! The estimate counts the large buffers only (data, features, operators,
//! their working copies, optimiser state); it errs high where the code keeps
//! two copies at once.

use crate::config::{ModelKind, RunConfig};
use redunet_core::Result;
use redunet_data::memory::{bytes, check};
use redunet_data::split::Split;
use redunet_vision::front::FrontEndConfig;

/// One large allocation and the settings that size it.
struct Part {
    what: &'static str,
    bytes: u64,
    hint: &'static str,
}

/// Checks the run `cfg` on `split` (signals through `front` when the run
/// uses a front end) fits in memory; `training` adds what back-propagation
/// keeps (every layer, gradients, optimiser moments).
pub fn check_run(
    cfg: &RunConfig,
    split: &Split,
    front: Option<&FrontEndConfig>,
    training: bool,
) -> Result<()> {
    let k = split.classes.len().max(1);
    // A layer is built from one streamed batch at a time.
    let m = cfg
        .model
        .batch_size
        .map_or(split.train.len(), |b| b.min(split.train.len()));
    let m_all = m.saturating_add(split.test.len());
    let (c, t) = match front {
        Some(f) => f.signal_shape(),
        None => (1, split.train.dim()),
    };
    let d = c.saturating_mul(t);
    let layers = cfg.model.layers;
    // Layers kept at once: all of them when saved or trained, else one.
    let kept = if cfg.model.save || training {
        layers
    } else {
        1
    };
    let mut parts = vec![
        Part {
            what: "the data",
            bytes: bytes(&[m_all, split.train.dim(), 2], 4),
            hint: "lower data.train_per_class or data.test_per_class",
        },
        Part {
            what: "the features of every sample",
            // Features, their update and the evaluation sets' copies.
            bytes: bytes(&[m_all, d, 3], 4),
            hint: "lower data.train_per_class, data.test_per_class, lift.out_channels or polar sizes",
        },
    ];
    if let Some(f) = front {
        parts.push(Part {
            what: "the front end's tables",
            bytes: f.table_bytes(),
            hint: "lower polar.radii, polar.angles, lift.out_channels or lift.kernel_size",
        });
    }
    let train_factor = if training { 4 } else { 1 };
    match cfg.model.kind {
        ModelKind::Vector => {
            parts.push(Part {
                what: "the layers' operators E, C_j",
                bytes: bytes(&[kept, k + 1, d, d, train_factor], 4),
                hint: "lower model.layers, or the dimension of the samples",
            });
            parts.push(Part {
                what: "one layer's construction (Gram matrices, inverses, the [m, (k+1)·d] product)",
                bytes: bytes(&[k + 1, d, d, 2], 4).saturating_add(bytes(&[m, k + 1, d], 4)),
                hint: "lower data.train_per_class, or the dimension of the samples",
            });
        }
        ModelKind::Conv1d | ModelKind::Conv2d => {
            let (h, w) = match front.map(|f| (f.images, f.sample_shape.as_slice())) {
                Some((true, [hh, ww])) | Some((true, [_, hh, ww])) => (*hh, *ww),
                _ => (1, t),
            };
            let p = h.saturating_mul(w / 2 + 1);
            parts.push(Part {
                what: "the layers' per-frequency operators E(p), C_j(p)",
                bytes: bytes(&[kept, p, k + 1, 2 * c, 2 * c, train_factor], 4),
                hint: "lower model.layers or the number of channels (lift.out_channels, polar.radii)",
            });
            parts.push(Part {
                what: "one layer's construction (spectra and per-class products)",
                bytes: bytes(&[m, c, p, 2, k + 2], 4),
                hint: "lower data.train_per_class or the number of channels",
            });
            parts.push(Part {
                what: "the DFT tables",
                bytes: redunet_vision::spectral::Dft::table_bytes(h, w),
                hint: "use smaller signals or images",
            });
        }
        ModelKind::Mlp => {
            let width = cfg.model.width.unwrap_or(512);
            let out = cfg.model.out_dim.unwrap_or(128);
            let params = bytes(&[d, width], 1)
                .saturating_add(bytes(&[layers.saturating_sub(1), width, width], 1))
                .saturating_add(bytes(&[width, out], 1));
            parts.push(Part {
                what: "the MLP's weights, gradients and optimiser state",
                bytes: params.saturating_mul(16),
                hint: "lower model.width, model.out_dim or model.layers",
            });
            let batch = cfg.train.as_ref().map_or(m, |t| t.batch_size.min(m));
            parts.push(Part {
                what: "the MLP's activations",
                bytes: bytes(&[batch, width, layers, 3], 4),
                hint: "lower train.batch_size, model.width or model.layers",
            });
        }
        ModelKind::Crate | ModelKind::Transformer => {
            let shape = crate::train::transformer_shape(cfg, &split.train.sample_shape)?;
            let (front, layer) = shape.validate().map_err(redunet_core::Error::Parameter)?;
            let params = layer
                .iter()
                .fold(front as u64, |a, &b| a.saturating_add(b as u64));
            parts.push(Part {
                what: "the transformer's weights, gradients and optimiser state",
                bytes: params.saturating_mul(16),
                hint: "lower model.width or model.layers",
            });
            let [_, h, w] = shape.image;
            let tokens = (h / shape.patch) * (w / shape.patch) + 1;
            let batch = cfg.train.as_ref().map_or(m, |t| t.batch_size.min(m));
            let per_token = shape
                .dim
                .saturating_mul(12)
                .saturating_add(tokens * shape.heads * 3);
            parts.push(Part {
                what: "the transformer's activations",
                bytes: bytes(&[batch, tokens, per_token, layers], 4),
                hint: "lower train.batch_size, model.width, model.layers or raise model.patch",
            });
        }
    }
    let total = parts.iter().fold(0u64, |a, p| a.saturating_add(p.bytes));
    let largest = parts
        .iter()
        .max_by_key(|p| p.bytes)
        .expect("at least the data");
    check(
        total,
        &format!("this run (mostly {})", largest.what),
        largest.hint,
    )?;
    Ok(())
}
