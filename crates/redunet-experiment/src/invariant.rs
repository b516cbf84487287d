//! A run on multi-channel signals: images through the polar
//! transform (rotation becomes a cyclic shift) and/or lifting, then either
//! the shift-invariant spectral network (`model.kind = "conv1d"`) or its
//! vector counterpart on the flattened signals, evaluated on the test set and
//! on the test set under every cyclic shift of a stride grid.

use crate::config::{ModelKind, RunConfig};
use crate::report::{
    AccuracyBlock, Classifiers, Features, Progress, ShiftCopies, Summary, write_summary,
};
use burn::tensor::{Device, Tensor};
use redunet_core::host::{tensor, to_vec};
use redunet_core::layer::vector::normalize_input_rows;
use redunet_core::network::LayerRecord;
use redunet_core::rates::rate_reduction;
use redunet_core::{Error, Result};
use redunet_core::{Memberships, VectorLayer};
use redunet_data::Dataset;
use redunet_data::split::Split;
use redunet_train::Architecture;
use redunet_train::model::ModelWriter;
use redunet_train::spectral::SpectralShape;
use redunet_train::vector::VectorShape;
use redunet_vision::front::{FrontEnd, FrontEndConfig};
use redunet_vision::network::flatten;
use redunet_vision::spectral::{Dft, SpectralMoments, Spectrum, rescale_extreme_signals};
use std::path::Path;
use std::time::Instant;

/// The front end `cfg` asks for, for samples of shape `sample_shape`.
pub fn front_config(cfg: &RunConfig, sample_shape: &[usize]) -> FrontEndConfig {
    let images = match (cfg.model.kind, sample_shape.len()) {
        (ModelKind::Conv2d, _) => true,
        // The vector baseline on images (flattened after any lifting).
        (ModelKind::Vector, 2) => cfg.polar.is_none(),
        _ => false,
    };
    FrontEndConfig {
        sample_shape: sample_shape.to_vec(),
        polar: cfg.polar.clone(),
        images,
        lift: cfg.lift.clone(),
    }
}

/// A data set's samples through the front end's first stage.
fn signals(front: &FrontEnd, ds: &Dataset, device: &Device) -> Result<Tensor<3>> {
    front.signals(tensor(ds.features.clone(), [ds.len(), ds.dim()], device))
}

type Streamed = (Vec<LayerRecord>, Tensor<2>, Vec<Tensor<2>>);

/// Builds a vector ReduNet layer by layer on the flattened signals, moving
/// the evaluation sets through each layer (soft membership) and writing it
/// to the model (if saved) as it is built: one layer is held at a time.
fn stream_vector(
    train: &Tensor<3>,
    pi: &Memberships,
    layers: usize,
    cfg: &redunet_core::VectorLayerConfig,
    evals: Vec<Tensor<3>>,
    mut writer: Option<&mut LayerByLayer<VectorShape>>,
    mut on_layer: impl FnMut(&LayerRecord),
) -> Result<Streamed> {
    let flat = |x: Tensor<3>| normalize_input_rows(flatten(x));
    let mut z = flat(train.clone());
    let mut ev: Vec<Tensor<2>> = evals.into_iter().map(flat).collect();
    let mut records = Vec::with_capacity(layers + 1);
    for l in 0..layers {
        let (layer, rates) = VectorLayer::construct(&z, pi, cfg)
            .map_err(|e| e.at(format!("layer {}, construction", l + 1)))?;
        let rec = LayerRecord::new(l, rates);
        on_layer(&rec);
        records.push(rec);
        if let Some(w) = writer.as_deref_mut() {
            w.push(&layer, VectorShape::push)?;
        }
        z = layer.forward_train(&z, pi)?;
        for e in ev.iter_mut() {
            *e = layer.forward(e)?;
        }
    }
    let rec = LayerRecord::new(layers, rate_reduction(&z, pi, cfg.eps_sq)?);
    on_layer(&rec);
    records.push(rec);
    Ok((records, z, ev))
}

/// The same for the spectral (shift-invariant) network: everything stays in
/// the spectral domain until the end.
/// What the construction is: memberships, depth and layer settings.
struct Plan<'a> {
    pi: &'a Memberships,
    layers: usize,
    cfg: &'a redunet_core::VectorLayerConfig,
    /// Samples per streamed batch (`model.batch_size`), or all at once.
    batch: Option<usize>,
    /// Shard devices (`--workers`): one contiguous shard of the training
    /// samples each, kept there; none: every batch on the run's device.
    workers: &'a [Device],
}

/// A network written to a model directory layer by layer, as it is built,
/// so that a run of thousands of layers never holds them all: the front
/// end first, then each layer with its place in the architecture `S`.
struct LayerByLayer<S> {
    writer: ModelWriter,
    shape: S,
}

impl<S> LayerByLayer<S> {
    fn create(dir: &Path, front: &FrontEnd, shape: S) -> Result<Self> {
        let mut writer = ModelWriter::create(dir)?;
        writer.front(front)?;
        Ok(Self { writer, shape })
    }

    fn push<L: burn::module::Module>(
        &mut self,
        layer: &L,
        record: impl FnOnce(&mut S, &L) -> Result<()>,
    ) -> Result<()> {
        self.writer.layer(layer)?;
        record(&mut self.shape, layer)
    }

    fn finish(self, architecture: impl FnOnce(S) -> Architecture, cfg: &RunConfig) -> Result<()> {
        let meta = serde_json::to_value(cfg).expect("configurations serialise");
        self.writer.finish(architecture(self.shape), None, meta)
    }
}

fn stream_spectral(
    train: &Tensor<3>,
    lift: &dyn Fn(Tensor<3>) -> Tensor<3>,
    dft: &Dft,
    plan: Plan<'_>,
    evals: Vec<Tensor<3>>,
    mut writer: Option<&mut LayerByLayer<SpectralShape>>,
    mut on_layer: impl FnMut(&LayerRecord),
) -> Result<Streamed> {
    let Plan {
        pi,
        layers,
        cfg,
        batch,
        workers,
    } = plan;
    redunet_core::host::check_finite(train, "input signals")?;
    let spec =
        |x: &Tensor<3>| dft.normalize(dft.into_spectrum(rescale_extreme_signals(lift(x.clone()))));
    let [m, c_in, t] = train.dims();
    // Without a batch size, one batch of everything: the all-at-once
    // construction, operation for operation.
    let b = batch.unwrap_or(m).max(1);
    let chunks = |n: usize| (0..n).step_by(b).map(move |s| (s, (s + b).min(n)));
    let home = train.device();
    // Shards: one contiguous part per worker, moved there once.
    let ranges: Vec<(usize, usize, Device)> = if workers.is_empty() {
        chunks(m).map(|(s, e)| (s, e, home.clone())).collect()
    } else {
        let w = workers.len();
        if w > m {
            return Err(Error::Parameter(format!(
                "{w} workers for {m} training samples: every shard needs samples"
            )));
        }
        workers
            .iter()
            .enumerate()
            .map(|(i, d)| (i * m / w, (i + 1) * m / w, d.clone()))
            .collect()
    };
    let mut parts = ranges
        .into_iter()
        .map(|(s, e, dev)| {
            let sp = spec(&train.clone().slice([s..e, 0..c_in, 0..t]));
            Ok((
                Spectrum {
                    x: sp.x.to_device(&dev),
                },
                pi.rows(s, e)?.to_device(&dev),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let c = parts.first().map_or(c_in, |(s, _)| s.channels());
    let mut ev: Vec<Vec<Spectrum>> = evals
        .iter()
        .map(|x| {
            let [n, ce, te] = x.dims();
            chunks(n)
                .map(|(s, e)| spec(&x.clone().slice([s..e, 0..ce, 0..te])))
                .collect()
        })
        .collect();
    let mut records = Vec::with_capacity(layers + 1);
    for l in 0..=layers {
        let mut moments = SpectralMoments::new(c, dft.frequencies(), pi.num_classes());
        if workers.is_empty() {
            parts = parts
                .into_iter()
                .map(|(s, p)| Ok((moments.add_owned(s, &p)?, p)))
                .collect::<Result<_>>()?;
        } else {
            // Every shard's sums are queued on its device before any is
            // read back, so that the workers work at once.
            let queued = parts
                .iter()
                .map(|(s, p)| {
                    let mut part = SpectralMoments::new(c, dft.frequencies(), pi.num_classes());
                    part.add(s, p)?;
                    Ok(part)
                })
                .collect::<Result<Vec<_>>>()?;
            for part in queued {
                moments.merge(part.to_device(&home))?;
            }
        }
        // The last stage needs the rates of the features, not a layer.
        let at = |e: Error| e.at(format!("layer {}, construction", l + 1));
        let (layer, rates) = if l == layers {
            (None, moments.rates(cfg, dft).map_err(at)?)
        } else {
            let (layer, rates) = moments.layer(cfg, dft).map_err(at)?;
            (Some(layer), rates)
        };
        if !rates.delta_r.is_finite() {
            return Err(Error::NonFinite(format!("ΔR after layer {l}")));
        }
        let rec = LayerRecord::new(l, rates);
        on_layer(&rec);
        records.push(rec);
        let Some(layer) = layer else {
            break;
        };
        // Each spectrum is handed to the step, which reads it in place.
        parts = parts
            .into_iter()
            .map(|(s, p)| Ok((layer.to_device(&s.x.device())?.step(s, Some(&p)), p)))
            .collect::<Result<_>>()?;
        for set in ev.iter_mut() {
            *set = std::mem::take(set)
                .into_iter()
                .map(|e| layer.step(e, None))
                .collect();
        }
        if let Some(w) = writer.as_deref_mut() {
            w.push(&layer.layer(), SpectralShape::push)?;
        }
    }
    // Back to signals; batch by batch through the host when streamed, so
    // that the spectra and the signals of every sample are never both held.
    let device = train.device();
    let signals = |parts: Vec<Spectrum>| -> Result<Tensor<2>> {
        if parts.len() == 1 {
            let s = parts.into_iter().next().expect("one part");
            return Ok(flatten(dft.signals(s)));
        }
        // Sized up front: a growing vector would hold its old and its
        // doubled buffer at once, the largest moment of a run.
        let values: usize = parts
            .iter()
            .map(|s| s.x.dims()[2] * s.channels() * dft.len())
            .sum();
        let (mut host, mut rows, mut width) = (Vec::with_capacity(values), 0, 0);
        for s in parts {
            let f = flatten(dft.signals(s));
            [_, width] = f.dims();
            rows += f.dims()[0];
            host.extend(to_vec(f)?);
        }
        Ok(tensor(host, [rows, width], &device))
    };
    let parts = parts.into_iter().map(|(s, _)| Spectrum {
        x: s.x.to_device(&home),
    });
    Ok((
        records,
        signals(parts.collect())?,
        ev.into_iter().map(signals).collect::<Result<Vec<_>>>()?,
    ))
}

/// [`crate::run::run`] for configurations on signals (polar transform,
/// lifting, `conv1d` / `conv2d`, or "all shifts" evaluation). Takes the
/// split and the front end that [`crate::run::run_sharded`]'s checks
/// accepted.
pub(crate) fn run(
    cfg: &RunConfig,
    (split, front_cfg): (Split, FrontEndConfig),
    (device, workers): (&Device, &[Device]),
    device_name: &str,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<(Summary, Features)> {
    let (train, test) = (&split.train, &split.test);
    let k = split.classes.len();
    let front = FrontEnd::new(&front_cfg, device)?;
    let train_sig = signals(&front, train, device)?;
    let [m, _, t] = train_sig.dims();
    let c = front_cfg.signal_shape().0;
    // The spectral networks lift their samples batch by batch as they
    // stream them (a lifted copy of every sample at once is the largest
    // buffer of a run); the vector baselines take them lifted.
    let spectral = matches!(cfg.model.kind, ModelKind::Conv1d | ModelKind::Conv2d);
    let lift_now = |x: Tensor<3>| if spectral { x } else { front.lift(x) };
    progress.started(&format!(
        "data: {:?}, {k} classes {:?}, {m} train / {} test signals [{c}, {t}], model {:?}, device {device_name}",
        cfg.data.source,
        split.classes,
        test.len(),
        cfg.model.kind
    ));
    let pi = Memberships::from_labels(&train.labels, k, device)?;
    let layer_cfg = cfg.model.layer_config();
    let layers = cfg.model.layers;
    let on_layer = |rec: &LayerRecord| progress.layer(rec);
    // Evaluation inputs are prepared first and move through each layer as
    // it is built, so no layer has to be kept: a 3500-layer vector network
    // on 1000-d signals would otherwise hold 42 GB of operators.
    let soft_train_pass = layer_cfg.membership == redunet_core::MembershipMode::Labels;
    let test_sig = if test.is_empty() {
        None
    } else {
        Some(signals(&front, test, device)?)
    };
    let mut shift_setup = None;
    if let (Some(ts), Some(stride)) = (&test_sig, cfg.eval.shift_stride) {
        let chosen = crate::report::first_per_class(&test.labels, cfg.eval.shift_test_per_class);
        let base = ts
            .clone()
            .select(0, redunet_core::host::indices(&chosen, device));
        let grid = front.grid(t, stride);
        let shifted: Vec<Tensor<3>> = grid.iter().map(|&s| front.shifted(&base, s)).collect();
        let labels: Vec<usize> = grid
            .iter()
            .flat_map(|_| chosen.iter().map(|&i| test.labels[i]))
            .collect();
        shift_setup = Some((chosen.len(), grid.len(), labels, Tensor::cat(shifted, 0)));
    }
    let mut evals: Vec<Tensor<3>> = Vec::new();
    if soft_train_pass {
        evals.push(lift_now(train_sig.clone()));
    }
    if let Some(ts) = &test_sig {
        evals.push(lift_now(ts.clone()));
    }
    if let Some((_, _, _, all)) = &shift_setup {
        evals.push(lift_now(all.clone()));
    }

    let start = Instant::now();
    let (records, built_features, mut eval_features) = match cfg.model.kind {
        ModelKind::Vector => {
            let (c, t) = front.signal_shape();
            let mut writer = if cfg.model.save {
                let shape = VectorShape::new(c * t, Some(front.config().clone()));
                Some(LayerByLayer::create(&out.join("model"), &front, shape)?)
            } else {
                None
            };
            let streamed = stream_vector(
                &front.lift(train_sig.clone()),
                &pi,
                layers,
                &layer_cfg,
                evals,
                writer.as_mut(),
                on_layer,
            )?;
            if let Some(w) = writer {
                w.finish(Architecture::Vector, cfg)?;
            }
            streamed
        }
        ModelKind::Mlp | ModelKind::Crate | ModelKind::Transformer => {
            return Err(Error::Parameter(format!(
                "model.kind = {:?} is trained, not constructed",
                cfg.model.kind
            )));
        }
        ModelKind::Conv1d | ModelKind::Conv2d => {
            let dft = redunet_vision::network::transform_of(&front, device)?;
            let mut writer = if cfg.model.save {
                let shape = SpectralShape::new(front.config().clone());
                Some(LayerByLayer::create(&out.join("model"), &front, shape)?)
            } else {
                None
            };
            let streamed = stream_spectral(
                &train_sig,
                &|x| front.lift(x),
                &dft,
                Plan {
                    pi: &pi,
                    layers,
                    cfg: &layer_cfg,
                    batch: cfg.model.batch_size,
                    workers,
                },
                evals,
                writer.as_mut(),
                on_layer,
            )?;
            if let Some(w) = writer {
                w.finish(Architecture::Spectral, cfg)?;
            }
            streamed
        }
    };
    to_vec(built_features.clone().slice([0..1, 0..1]))?;
    let construct = start.elapsed().as_secs_f64();

    // Only features are needed from here: the signals go before the
    // classifiers make their normalised copy of the training features.
    let has_test = test_sig.is_some();
    drop((train_sig, test_sig));
    let start = Instant::now();
    let mut eval_features = eval_features.drain(..);
    let train_features = if soft_train_pass {
        drop(built_features);
        eval_features.next().expect("soft train pass")
    } else {
        built_features
    };
    let eval = crate::report::eval_settings(cfg, 10);
    let fitted = Classifiers::fit(&train_features, &train.labels, eval)?;
    let train_acc = crate::report::train_accuracy(&fitted, &train_features, &train.labels, cfg)?;
    let mut test_acc = None;
    let mut shift_acc = None;
    let mut shift_maps = None;
    if has_test {
        let ft = eval_features.next().expect("test features");
        test_acc = Some(fitted.accuracies(&ft, &test.labels)?);
    }
    if let Some((n_chosen, n_grid, labels, all)) = shift_setup {
        let fs = eval_features.next().expect("shifted features");
        shift_acc = Some(fitted.accuracies(&fs, &labels)?);
        // Heat maps of a few samples' shifted copies, before and after.
        let few: Vec<usize> = (0..n_chosen)
            .step_by((n_chosen / 5).max(1))
            .take(5)
            .collect();
        let rows: Vec<usize> = few
            .iter()
            .flat_map(|&i| (0..n_grid).map(move |g| g * n_chosen + i))
            .collect();
        let rank: Vec<usize> = (0..few.len())
            .flat_map(|r| std::iter::repeat_n(r, n_grid))
            .collect();
        let pick = redunet_core::host::indices(&rows, device);
        let before = to_vec(flatten(front.lift(all.select(0, pick.clone()))))?;
        let after = to_vec(fs.select(0, pick))?;
        shift_maps = Some(ShiftCopies {
            before,
            after,
            owner: rank,
            copies: n_grid,
        });
    }
    let evaluate_s = start.elapsed().as_secs_f64();

    let summary = Summary::new(
        cfg,
        device_name,
        &split,
        &records,
        (construct, evaluate_s),
        AccuracyBlock {
            train: train_acc,
            test: test_acc,
            test_all_shifts: shift_acc,
        },
        c * t,
    );

    write_summary(out, &summary, &records)?;
    // The heat map shows the first samples of each class: only those rows
    // come back to the host.
    let shown = crate::report::first_per_class(&train.labels, Some(cfg.eval.heatmap_per_class));
    let features = Features {
        dim: c * t,
        input: None,
        train: to_vec(train_features.select(0, redunet_core::host::indices(&shown, device)))?,
        train_labels: shown.iter().map(|&i| train.labels[i]).collect(),
        test: None,
        test_labels: test.labels.clone(),
        shifts: shift_maps,
    };
    Ok((summary, features))
}
