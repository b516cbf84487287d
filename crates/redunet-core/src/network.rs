//! A vector ReduNet: L layers, each constructed forward on the output of the
//! previous one, with the rates of every stage on record.

use crate::cpu::step::SoftStep;
use crate::host::{tensor, to_vec};
use crate::layer::moments::{grams_of, host_operators, host_rates};
use crate::layer::vector::{checked_unit_input_rows, normalize_input_rows};
use crate::membership::Scales;
use crate::rates::{Rates, rate_reduction};
use crate::{
    Error, MembershipMode, Memberships, Result, SecondMoments, VectorLayer, VectorLayerConfig,
};
use burn::tensor::{Device, Tensor};
use redunet_data::npy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// R, R_c and ΔR of the features after `layer` layers (0 = the normalised
/// input), measured with the construction memberships.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The stage: 0 is the normalised input, l the output of layer l.
    pub layer: usize,
    /// R of the stage's features.
    pub r: f64,
    /// R_c of the stage's features.
    pub r_c: f64,
    /// ΔR = R − R_c.
    pub delta_r: f64,
}

impl LayerRecord {
    /// The record of stage `layer` with the given rates.
    pub fn new(layer: usize, rates: Rates) -> Self {
        Self {
            layer,
            r: rates.r,
            r_c: rates.r_c,
            delta_r: rates.delta_r,
        }
    }
}

/// A vector ReduNet: built forward by [`Self::construct`] (or drawn at
/// random), applied by [`Self::transform`]; a Burn module whose parameters
/// are every layer's E and C_j, so the same value is fine-tuned on
/// `device.autodiff()`.
#[derive(burn::module::Module, Debug)]
pub struct VectorReduNet {
    layers: Vec<VectorLayer>,
}

/// Where [`VectorReduNet`]'s construction over parts works on them.
enum Placement<'a> {
    /// Every part moves to this device, is worked on there, and moves back.
    On(&'a Device),
    /// Every part is worked on where it lives; moments are summed here.
    Shards(&'a Device),
}

/// What batched construction returns: the network, the rate record and the
/// training features after the last layer, batch by batch.
#[derive(Debug, Clone)]
pub struct BatchedConstruction {
    /// The constructed network.
    pub network: VectorReduNet,
    /// The rates of the input and of every layer's output.
    pub records: Vec<LayerRecord>,
    /// Each batch's training features after the last layer.
    pub features: Vec<Tensor<2>>,
}

/// What construction returns: the network, the rate record (input and every
/// layer) and the training features after the last layer.
#[derive(Debug, Clone)]
pub struct Construction {
    /// The constructed network.
    pub network: VectorReduNet,
    /// The rates of the input and of every layer's output.
    pub records: Vec<LayerRecord>,
    /// The training features after the last layer.
    pub features: Tensor<2>,
}

impl VectorReduNet {
    /// Builds `layers` layers from training features `z: [m, d]` (rows are
    /// normalised first) and memberships `pi`. `on_layer` sees each record as
    /// it is made (record 0 is the input), e.g. to drive a progress bar.
    ///
    /// ```
    /// use redunet_core::{Device, Memberships, Tensor, VectorLayerConfig, VectorReduNet};
    /// let device = Device::default();
    /// let z = Tensor::<2>::from_floats([[1.0, 0.1], [0.9, 0.2], [0.1, 1.0], [0.2, 0.9]], &device);
    /// let pi = Memberships::from_labels(&[0, 0, 1, 1], 2, &device)?;
    /// let built = VectorReduNet::construct(&z, &pi, 3, &VectorLayerConfig::default(), |_| {})?;
    /// assert_eq!(built.records.len(), 4); // the input and three layers
    /// let features = built.network.transform(&z)?; // unlabelled: soft memberships
    /// assert_eq!(features.dims(), [4, 2]);
    /// # Ok::<(), redunet_core::Error>(())
    /// ```
    pub fn construct(
        z: &Tensor<2>,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        mut on_layer: impl FnMut(&LayerRecord),
    ) -> Result<Construction> {
        config.validate()?;
        let host = config.membership == MembershipMode::Soft
            && crate::cpu::on_host(&z.device())
            && crate::cpu::on_host(&pi.pi().device());
        if host {
            let values = checked_unit_input_rows(z, config.eps_sq)?;
            pi.check_samples(z.dims()[0])?;
            let shape = (z.dims(), z.device());
            return Self::construct_host(values, shape, pi, layers, config, on_layer);
        }
        crate::rates::check_features(z, config.eps_sq)?;
        pi.check_samples(z.dims()[0])?;
        let mut z = normalize_input_rows(z.clone());
        let mut built = Vec::with_capacity(layers);
        let mut records = Vec::with_capacity(layers + 1);
        for l in 0..layers {
            let (layer, input_rates) = VectorLayer::construct_trusted(&z, pi, config)
                .map_err(|e| e.at(format!("layer {}, construction", l + 1)))?;
            // The rates of this layer's input are the record of the previous
            // stage: construction computes them for free.
            let rec = LayerRecord::new(l, input_rates);
            on_layer(&rec);
            records.push(rec);
            z = layer
                .forward_train_trusted(&z, pi)
                .map_err(|e| e.at(format!("layer {}, forward pass", l + 1)))?;
            built.push(layer);
        }
        let rates = rate_reduction(&z, pi, config.eps_sq)?;
        push_last_record(layers, rates, &mut records, &mut on_layer)?;
        Ok(Construction {
            network: Self { layers: built },
            records,
            features: z,
        })
    }

    /// [`Self::construct`] on a CPU device with soft memberships: the same
    /// arithmetic ([`grams_of`], [`host_operators`], [`SoftStep`]), with
    /// the features and operators kept in host memory from layer to layer.
    /// Each layer's tensors are made once, for the network; going through
    /// tensors between the steps cost a tenth of a layer in copies.
    fn construct_host(
        mut values: Vec<f32>,
        ([m, d], device): ([usize; 2], Device),
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        mut on_layer: impl FnMut(&LayerRecord),
    ) -> Result<Construction> {
        let soft = match pi.labels() {
            Some(_) => None,
            None => Some(to_vec(pi.pi().clone())?),
        };
        let scales = Scales::from_counts(pi.counts(), m as f64, d, config.eps_sq);
        let k = scales.classes.len();
        let mut built = Vec::with_capacity(layers);
        let mut records = Vec::with_capacity(layers + 1);
        let moments = |values: &[f32]| {
            let (class_grams, gram) = grams_of(values, m, d, pi, soft.as_deref());
            let class_grams: Vec<Vec<f32>> = class_grams.into_iter().map(|(_, g)| g).collect();
            (gram, class_grams)
        };
        let mut block_product = Vec::new();
        for l in 0..layers {
            let (gram, class_grams) = moments(&values);
            let (e, c_cat, input_rates) = host_operators(gram, class_grams, &scales, d)
                .map_err(|e| e.at(format!("layer {}, construction", l + 1)))?;
            let rec = LayerRecord::new(l, input_rates);
            on_layer(&rec);
            records.push(rec);
            SoftStep {
                e: &e,
                c_cat: &c_cat,
                gamma: &scales.gammas,
                eta: config.eta,
                lambda: config.lambda,
            }
            .apply_in_place(&mut values, m, d, &mut block_product);
            built.push(VectorLayer::from_operators(
                tensor(e, [d, d], &device),
                tensor(c_cat, [d, k * d], &device),
                scales.gammas.clone(),
                scales.classes.clone(),
                pi.num_classes(),
                *config,
            ));
        }
        // The last stage's rates from the same moments a next layer would
        // be built from, so that every record is computed one way.
        let (gram, class_grams) = moments(&values);
        let rates = host_rates(gram, class_grams, &scales, d)
            .map_err(|e| e.at(format!("rates after layer {layers}")))?;
        let z = tensor(values, [m, d], &device);
        push_last_record(layers, rates, &mut records, &mut on_layer)?;
        Ok(Construction {
            network: Self { layers: built },
            records,
            features: z,
        })
    }

    /// [`Self::construct`] over batches: each layer is built from second
    /// moments summed over the batches ([`SecondMoments`]), then every batch
    /// moves through it. Only one batch and the layer's moments are on
    /// `device` at a time; between layers the features stay where the
    /// batches live (`batches`' own device, e.g. the host). The result is
    /// the all-at-once construction's up to f32 round-off; the returned
    /// features are the batches' after the last layer, in order.
    pub fn construct_batched(
        batches: Vec<(Tensor<2>, Memberships)>,
        layers: usize,
        config: &VectorLayerConfig,
        device: &Device,
        on_layer: impl FnMut(&LayerRecord),
    ) -> Result<BatchedConstruction> {
        Self::construct_parts(batches, layers, config, Placement::On(device), on_layer)
    }

    /// [`Self::construct`] over shards that stay where they are, e.g. each
    /// on its own worker's device (Burn's remote backend, or several local
    /// GPUs): every shard's second moments are computed on its device and
    /// summed on `coordinator`, which factors them into the layer; the
    /// layer's operators go back to each shard's device, where the shard
    /// moves through it. What crosses between devices per layer is `(k+1)`
    /// d×d moments up and as many operators down per shard, whatever the
    /// number of samples. The result is the single-device construction's up
    /// to f32 round-off; the network lives on `coordinator`, the returned
    /// features on their shards' devices.
    pub fn construct_sharded(
        shards: Vec<(Tensor<2>, Memberships)>,
        layers: usize,
        config: &VectorLayerConfig,
        coordinator: &Device,
        on_layer: impl FnMut(&LayerRecord),
    ) -> Result<BatchedConstruction> {
        Self::construct_parts(
            shards,
            layers,
            config,
            Placement::Shards(coordinator),
            on_layer,
        )
    }

    fn construct_parts(
        parts: Vec<(Tensor<2>, Memberships)>,
        layers: usize,
        config: &VectorLayerConfig,
        place: Placement<'_>,
        mut on_layer: impl FnMut(&LayerRecord),
    ) -> Result<BatchedConstruction> {
        config.validate()?;
        let Some((first, pi0)) = parts.first() else {
            return Err(Error::Empty("no batches".into()));
        };
        let (d, k) = (first.dims()[1], pi0.num_classes());
        // Where a part is worked on, and where the moments are summed.
        let (work, sum_on) = match place {
            Placement::On(device) => (Some(device), device),
            Placement::Shards(coordinator) => (None, coordinator),
        };
        let at = |home: &Device| work.unwrap_or(home).clone();
        let mut z = Vec::with_capacity(parts.len());
        let mut pis = Vec::with_capacity(parts.len());
        for (x, pi) in parts {
            crate::rates::check_features(&x, config.eps_sq)?;
            pi.check_samples(x.dims()[0])?;
            let home = x.device();
            let here = at(&home);
            z.push(normalize_input_rows(x.to_device(&here)).to_device(&home));
            pis.push(pi.to_device(&here));
        }
        let moments = |z: &[Tensor<2>]| -> Result<SecondMoments> {
            let part = |zb: &Tensor<2>, pi: &Memberships| -> Result<SecondMoments> {
                let mut m = SecondMoments::new(d, k);
                m.add(&zb.clone().to_device(&at(&zb.device())), pi)?;
                Ok(m.to_device(sum_on))
            };
            let mut total = SecondMoments::new(d, k);
            if work.is_some() {
                // One device: one batch's sums at a time.
                for (zb, pi) in z.iter().zip(&pis) {
                    total.merge(part(zb, pi)?)?;
                }
                return Ok(total);
            }
            // Shards: every shard's sums are queued on its device before
            // any is read back, so that the devices work at once.
            let queued = z
                .iter()
                .zip(&pis)
                .map(|(zb, pi)| {
                    let mut m = SecondMoments::new(d, k);
                    m.add(zb, pi)?;
                    Ok(m)
                })
                .collect::<Result<Vec<_>>>()?;
            for m in queued {
                total.merge(m.to_device(sum_on))?;
            }
            Ok(total)
        };
        let mut built = Vec::with_capacity(layers);
        let mut records = Vec::with_capacity(layers + 1);
        for l in 0..layers {
            let (layer, input_rates) = moments(&z)?
                .layer(config)
                .map_err(|e| e.at(format!("layer {}, construction", l + 1)))?;
            let rec = LayerRecord::new(l, input_rates);
            on_layer(&rec);
            records.push(rec);
            for (zb, pi) in z.iter_mut().zip(&pis) {
                let home = zb.device();
                let here = at(&home);
                let local = burn::module::Module::to_device(layer.clone(), &here);
                *zb = local
                    .forward_train_trusted(&zb.clone().to_device(&here), pi)
                    .map_err(|e| e.at(format!("layer {}, forward pass", l + 1)))?
                    .to_device(&home);
            }
            built.push(layer);
        }
        let (_, rates) = moments(&z)?.layer(config)?;
        push_last_record(layers, rates, &mut records, &mut on_layer)?;
        Ok(BatchedConstruction {
            network: Self { layers: built },
            records,
            features: z,
        })
    }

    /// [`Self::transform`] of `z` in batches of `batch` rows on `device`,
    /// gathered where `z` lives: rows are independent, so this is the same
    /// map with device memory bounded by the batch.
    pub fn transform_batched(
        &self,
        z: &Tensor<2>,
        batch: usize,
        device: &Device,
    ) -> Result<Tensor<2>> {
        let [m, d] = z.dims();
        if batch == 0 {
            return Err(Error::Parameter("batch size 0".into()));
        }
        let home = z.device();
        let mut out = Vec::with_capacity(m.div_ceil(batch));
        for start in (0..m).step_by(batch) {
            let end = (start + batch).min(m);
            let zb = z.clone().slice([start..end, 0..d]).to_device(device);
            out.push(self.transform(&zb)?.to_device(&home));
        }
        if out.is_empty() {
            return Ok(Tensor::zeros([0, self.dim().unwrap_or(d)], &home));
        }
        Ok(Tensor::cat(out, 0))
    }

    /// Random start: per layer, E and C_j with N(0, s²/d) entries at the
    /// scales s = α = d/(mε²), α_j = d/(m_jε²) that forward construction
    /// would use, symmetrised (constructed operators are symmetric), and
    /// γ_j = m_j/m; drawn from `seed`.
    pub fn random(
        dim: usize,
        pi: &Memberships,
        layers: usize,
        config: &VectorLayerConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        if dim == 0 {
            return Err(Error::Empty("features of dimension 0".into()));
        }
        let sc = pi.scales(dim, config.eps_sq);
        let sym = |scale: f64, s: u64| -> Vec<f32> {
            let raw = crate::host::normals(dim * dim, s);
            let mut v = vec![0f32; dim * dim];
            let sd = scale / (dim as f64).sqrt();
            for a in 0..dim {
                for b in 0..dim {
                    let x = (raw[a * dim + b] + raw[b * dim + a]) as f64 / 2f64.sqrt();
                    v[a * dim + b] = (x * sd) as f32;
                }
            }
            v
        };
        let k = sc.classes.len();
        let mut built = Vec::with_capacity(layers);
        for l in 0..layers {
            let base = seed.wrapping_mul(1_000_003).wrapping_add(100 * l as u64);
            let e = sym(sc.alpha, base);
            let mut c = Vec::with_capacity(k * dim * dim);
            for (i, &a) in sc.alphas.iter().enumerate() {
                c.extend(sym(a, base + 1 + i as u64));
            }
            built.push(VectorLayer::from_parts(
                tensor(e, [dim, dim], device),
                tensor(c, [k, dim, dim], device),
                sc.gammas.clone(),
                sc.classes.clone(),
                pi.num_classes(),
                *config,
            )?);
        }
        Ok(Self { layers: built })
    }

    /// The features of `x`, as differentiable tensor operations on the
    /// device of the parameters (the forward pass of fine-tuning): rows
    /// normalised, then every layer with soft memberships. Unchecked; see
    /// [`Self::transform`] for checked input.
    ///
    /// # Shapes
    /// - x: `[m, d]`
    /// - output: `[m, d]`, unit rows
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut z = normalize_input_rows(x);
        for layer in &self.layers {
            z = layer.forward_trusted(&z);
        }
        z
    }

    /// A network of the given layers (all of one dimension).
    pub fn from_layers(layers: Vec<VectorLayer>) -> Result<Self> {
        if let Some(first) = layers.first()
            && layers.iter().any(|l| l.dim() != first.dim())
        {
            return Err(Error::Shape("layers of different dimensions".into()));
        }
        Ok(Self { layers })
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[VectorLayer] {
        &self.layers
    }

    /// The feature dimension d (none for a network without layers).
    pub fn dim(&self) -> Option<usize> {
        self.layers.first().map(VectorLayer::dim)
    }

    /// Features of new data: rows normalised, then every layer with soft
    /// membership.
    pub fn transform(&self, z: &Tensor<2>) -> Result<Tensor<2>> {
        if let Some(d) = self.dim()
            && z.dims()[1] != d
        {
            return Err(Error::Shape(format!(
                "network expects features of dimension {d}, got {:?}",
                z.dims()
            )));
        }
        crate::host::check_finite(z, "input features")?;
        let mut z = normalize_input_rows(z.clone());
        for layer in &self.layers {
            z = layer.forward_trusted(&z);
        }
        Ok(z)
    }
}

/// The record of the features after the last of `layers` layers, refused
/// when their ΔR is not finite; `on_layer` sees it, then it joins `records`.
fn push_last_record(
    layers: usize,
    rates: Rates,
    records: &mut Vec<LayerRecord>,
    on_layer: &mut impl FnMut(&LayerRecord),
) -> Result<()> {
    let last = LayerRecord::new(layers, rates);
    if !last.delta_r.is_finite() {
        return Err(Error::NonFinite(format!("ΔR after layer {layers}")));
    }
    on_layer(&last);
    records.push(last);
    Ok(())
}

/// A fresh, empty directory beside `dir` in which a model is written before
/// [`commit_dir`] swaps it into place.
pub fn staging_dir(dir: &Path) -> Result<PathBuf> {
    let tmp = sibling(dir, "partial");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_error("remove", &tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io_error("create", &tmp))?;
    Ok(tmp)
}

/// Moves the finished directory `tmp` to `dir` in one atomic exchange: a
/// reader sees the old model or the new one, never a mixture or nothing.
pub fn commit_dir(tmp: &Path, dir: &Path) -> Result<()> {
    Ok(redunet_data::output::replace_dir(tmp, dir)?)
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let f = redunet_data::io_error(action, path);
    move |e| Error::Data(f(e))
}

/// Reads `name` (an `.npy` inside the model directory `dir`) and checks
/// that it stays inside the directory, has `shape` and holds only finite
/// values.
pub fn read_model_array(dir: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let corrupt = |reason: String| Error::CorruptModel {
        path: dir.to_path_buf(),
        reason,
    };
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(corrupt(format!("a layer names file {name:?}")));
    }
    let a = npy::read_npy_f32(&dir.join(name))?;
    if a.shape != shape {
        return Err(corrupt(format!(
            "{name} has shape {:?}, expected {shape:?}",
            a.shape
        )));
    }
    if a.data.iter().any(|v| !v.is_finite()) {
        return Err(corrupt(format!("{name} holds NaN or Inf")));
    }
    Ok(a.data)
}

/// Reads a model's `model.json`.
pub fn read_model_json(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join("model.json");
    std::fs::read(&path).map_err(io_error("read", &path))
}

fn sibling(dir: &Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    dir.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}
