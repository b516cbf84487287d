//! The memory a run will hold and the disk its outputs will take, estimated
//! from its configuration and the size of its data before the network or
//! the features are allocated, and checked against what the machine has: a
//! mistyped size is an error naming the setting to change, not an
//! allocation abort an hour in or a disk filled half way through a model.
//!
//! The estimate counts the large buffers only (data, features, operators,
//! their working copies, optimiser state) and the large files (the saved
//! model, the training checkpoint); it errs high where the code keeps two
//! copies at once. It counts what each path really holds: the vector
//! network on plain vectors keeps every layer (it applies them to the test
//! set after construction), the networks on signals stream their layers
//! (one held at a time, written to the model as it is built), training
//! keeps every layer with its gradients and optimiser moments.

use crate::config::{ModelKind, RunConfig};
use redunet_core::Result;
use redunet_data::memory::{bytes, check, check_disk, human};
use redunet_data::split::Split;
use redunet_vision::front::FrontEndConfig;
use std::path::Path;

/// What is estimated: a construction (`redunet run`) or a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Forward construction, evaluation and the saved model.
    Construct,
    /// Back-propagation, with its checkpoint and the trained model.
    Train,
}

/// One large allocation or file and the settings that size it.
#[derive(Debug, Clone)]
pub struct Part {
    /// What it is.
    pub what: &'static str,
    /// Its bytes.
    pub bytes: u64,
    /// The settings to change to make it smaller.
    pub hint: &'static str,
}

/// A run's resources before it starts.
#[derive(Debug, Clone, Default)]
pub struct Estimate {
    /// The large buffers held at the peak.
    pub memory: Vec<Part>,
    /// The large files written.
    pub disk: Vec<Part>,
}

fn total(parts: &[Part]) -> u64 {
    parts.iter().fold(0u64, |a, p| a.saturating_add(p.bytes))
}

impl Estimate {
    /// Bytes of memory at the peak.
    pub fn memory_bytes(&self) -> u64 {
        total(&self.memory)
    }

    /// Bytes written to disk.
    pub fn disk_bytes(&self) -> u64 {
        total(&self.disk)
    }

    /// Refuses a run that the machine's memory, or the free space of the
    /// disk that holds `out`, cannot take; the error names the largest part
    /// and the settings that size it.
    pub fn check(&self, out: &Path) -> Result<()> {
        if let Some(largest) = self.memory.iter().max_by_key(|p| p.bytes) {
            check(
                self.memory_bytes(),
                &format!("this run (mostly {})", largest.what),
                largest.hint,
            )?;
        }
        if let Some(largest) = self.disk.iter().max_by_key(|p| p.bytes) {
            // The output is staged beside its final place: name the folder
            // both are in.
            let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
            check_disk(
                self.disk_bytes(),
                dir.unwrap_or(out),
                &format!("the output of this run (mostly {})", largest.what),
                largest.hint,
            )?;
        }
        Ok(())
    }

    /// The estimate as lines for people: each part, then the totals.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut section = |name: &str, parts: &[Part]| {
            out.push(format!("{name}: {}", human(total(parts))));
            for p in parts {
                out.push(format!("  {:>9}  {}", human(p.bytes), p.what));
            }
        };
        section("memory", &self.memory);
        section("disk", &self.disk);
        out
    }
}

/// Bytes of the f32 parameters of an MLP `input` → `hidden` layers of
/// `width` → `out` (weights and biases).
pub(crate) fn mlp_bytes(input: usize, hidden: usize, width: usize, out: usize) -> u64 {
    bytes(&[input + 1, width], 4)
        .saturating_add(bytes(&[hidden.saturating_sub(1), width + 1, width], 4))
        .saturating_add(bytes(&[width + 1, out], 4))
}

/// Bytes of the network `cfg` describes on `split` (signals through
/// `front`): `(layer, all, saved)`, one layer and the whole network as held
/// in memory, and the whole network's parameters as saved. The spectral
/// layers hold their complex operators as real embeddings `[[A, −B], [B,
/// A]]`, twice the values they save.
fn network_bytes(
    cfg: &RunConfig,
    split: &Split,
    front: Option<&FrontEndConfig>,
) -> Result<(u64, u64, u64)> {
    let k = split.classes.len().max(1);
    let (c, t) = match front {
        Some(f) => f.signal_shape(),
        None => (1, split.train.dim()),
    };
    let d = c.saturating_mul(t);
    let layers = cfg.model.layers;
    Ok(match cfg.model.kind {
        ModelKind::Vector => {
            let layer = bytes(&[k + 1, d, d], 4);
            let all = layer.saturating_mul(layers as u64);
            (layer, all, all)
        }
        ModelKind::Conv1d | ModelKind::Conv2d => {
            let p = front.map_or(t / 2 + 1, |f| {
                let (h, w) = f.transform_shape();
                h.saturating_mul(w / 2 + 1)
            });
            let layer = bytes(&[p, k + 1, 2 * c, 2 * c], 4);
            let lift = bytes(&[front.and_then(|f| f.lift_params()).unwrap_or(0)], 4);
            let all = layer.saturating_mul(layers as u64).saturating_add(lift);
            let saved = bytes(&[2, p, k + 1, c, c], 4)
                .saturating_mul(layers as u64)
                .saturating_add(lift);
            (layer, all, saved)
        }
        ModelKind::Mlp => {
            let width = cfg.model.width.unwrap_or(512);
            let out = cfg.model.out_dim.unwrap_or(128);
            let all = mlp_bytes(d, layers, width, out);
            (all, all, all)
        }
        ModelKind::Crate | ModelKind::Transformer => {
            let shape = crate::train::transformer_shape(cfg, &split.train.sample_shape)?;
            let (front, layer) = shape.validate().map_err(redunet_core::Error::Parameter)?;
            let params = layer
                .iter()
                .fold(front as u64, |a, &b| a.saturating_add(b as u64));
            let all = params.saturating_mul(4);
            (all, all, all)
        }
    })
}

/// Estimates what `job` on `cfg` holds and writes, for the data `split`
/// (signals through `front` when the run uses a front end).
pub fn estimate(
    cfg: &RunConfig,
    split: &Split,
    front: Option<&FrontEndConfig>,
    job: Job,
) -> Result<Estimate> {
    let training = job == Job::Train;
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
    let (layer_bytes, network, saved) = network_bytes(cfg, split, front)?;
    let mut memory = vec![
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
        memory.push(Part {
            what: "the front end's tables",
            bytes: f.table_bytes(),
            hint: "lower polar.radii, polar.angles, lift.out_channels or lift.kernel_size",
        });
    }
    // Training holds the parameters, their gradients and Adam's two moments.
    let train_factor = if training { 4 } else { 1 };
    match cfg.model.kind {
        ModelKind::Vector => {
            // On plain vectors the constructed network is applied whole to
            // the test set; on signals each layer is applied as it is built.
            let held = if training || front.is_none() {
                network
            } else {
                layer_bytes
            };
            memory.push(Part {
                what: "the layers' operators E, C_j",
                bytes: held.saturating_mul(train_factor),
                hint: "lower model.layers, or the dimension of the samples",
            });
            memory.push(Part {
                what: "one layer's construction (Gram matrices, inverses, the [m, (k+1)·d] product)",
                bytes: bytes(&[k + 1, d, d, 2], 4).saturating_add(bytes(&[m, k + 1, d], 4)),
                hint: "lower data.train_per_class, or the dimension of the samples",
            });
        }
        ModelKind::Conv1d | ModelKind::Conv2d => {
            let (h, w) = front.map_or((1, t), |f| f.transform_shape());
            let p = h.saturating_mul(w / 2 + 1);
            // Construction streams its layers; training holds them all.
            let held = if training { network } else { layer_bytes };
            memory.push(Part {
                what: "the layers' per-frequency operators E(p), C_j(p)",
                bytes: held.saturating_mul(train_factor),
                hint: "lower model.layers or the number of channels (lift.out_channels, polar.radii)",
            });
            memory.push(Part {
                what: "one layer's construction (spectra and per-class products)",
                bytes: bytes(&[m, c, p, 2, k + 2], 4),
                hint: "lower data.train_per_class or the number of channels",
            });
            memory.push(Part {
                what: "the DFT tables",
                bytes: redunet_vision::spectral::Dft::table_bytes(h, w),
                hint: "use smaller signals or images",
            });
        }
        ModelKind::Mlp => {
            let width = cfg.model.width.unwrap_or(512);
            memory.push(Part {
                what: "the MLP's weights, gradients and optimiser state",
                bytes: network.saturating_mul(4),
                hint: "lower model.width, model.out_dim or model.layers",
            });
            let batch = cfg.train.as_ref().map_or(m, |t| t.batch_size.min(m));
            memory.push(Part {
                what: "the MLP's activations",
                bytes: bytes(&[batch, width, layers, 3], 4),
                hint: "lower train.batch_size, model.width or model.layers",
            });
        }
        ModelKind::Crate | ModelKind::Transformer => {
            memory.push(Part {
                what: "the transformer's weights, gradients and optimiser state",
                bytes: network.saturating_mul(4),
                hint: "lower model.width or model.layers",
            });
            let shape = crate::train::transformer_shape(cfg, &split.train.sample_shape)?;
            let [_, h, w] = shape.image;
            let tokens = (h / shape.patch) * (w / shape.patch) + 1;
            let batch = cfg.train.as_ref().map_or(m, |t| t.batch_size.min(m));
            let per_token = shape
                .dim
                .saturating_mul(12)
                .saturating_add(tokens * shape.heads * 3);
            memory.push(Part {
                what: "the transformer's activations",
                bytes: bytes(&[batch, tokens, per_token, layers], 4),
                hint: "lower train.batch_size, model.width, model.layers or raise model.patch",
            });
        }
    }
    let mut disk = Vec::new();
    if training {
        disk.push(Part {
            what: "the trained model (model/)",
            bytes: saved,
            hint: "lower model.layers or the size of the samples",
        });
        disk.push(Part {
            what: "the checkpoint (parameters and optimiser moments)",
            bytes: saved.saturating_mul(3),
            hint: "lower model.layers or the size of the samples",
        });
    } else if cfg.model.save {
        disk.push(Part {
            what: "the saved model (model/)",
            bytes: saved,
            hint: "set model.save = false, or lower model.layers",
        });
    }
    Ok(Estimate { memory, disk })
}

/// Estimates `job` on `cfg` and checks the estimate against the memory and
/// the free space of the disk that holds `out`.
pub fn check_run(
    cfg: &RunConfig,
    split: &Split,
    front: Option<&FrontEndConfig>,
    job: Job,
    out: &Path,
) -> Result<Estimate> {
    let e = estimate(cfg, split, front, job)?;
    e.check(out)?;
    Ok(e)
}
