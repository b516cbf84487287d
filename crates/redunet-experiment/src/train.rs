//! Training and evaluating saved models: back-propagation through a ReduNet
//! (initialised by forward construction or at random) or an MLP feature
//! extractor, with the `[train]` section of the configuration (REDUNET.md
//! §6); the trained network is saved as a standalone model.

use crate::apply::AnyModel;
use crate::budget::{Estimate, Job};
use crate::config::{ModelKind, RunConfig};
use crate::plan::Plan;
use crate::report::{DataSummary, Progress};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use redunet_core::host::tensor;
use redunet_core::network::LayerRecord;
use redunet_core::{Error, Memberships, Result, VectorLayerConfig, VectorReduNet};
use redunet_data::Dataset;
use redunet_data::memory::human;
use redunet_data::npy::write_atomic;
use redunet_data::output::OutputDir;
use redunet_data::split::Split;
use redunet_train::mlp::Mlp;
use redunet_train::trainer::{
    Accuracies, CheckpointPlan, CheckpointState, EpochRecord, EvalSettings, Init, Objective,
    TrainConfig, TrainData, Trainee, corrupt_labels, evaluate_features, fit, read_checkpoint_state,
    save_checkpoint,
};
use redunet_train::transformer::{LayerRates, Mixer, TransformerShape};
use redunet_train::{Network, SavedModel};
use redunet_vision::front::{FrontEnd, FrontEndConfig};
use redunet_vision::network::SpectralReduNet;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
/// Accuracies of a trained (or saved) model.
pub struct TrainAccuracy {
    /// kNN and nearest subspace on the training features.
    pub train: Option<Accuracies>,
    /// kNN and nearest subspace on the test features.
    pub test: Option<Accuracies>,
    /// Cross-entropy objective: the linear head's test accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_head: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
/// Wall-clock seconds of a training run.
pub struct TrainSeconds {
    /// Forward construction or random initialisation.
    pub init: f64,
    /// Back-propagation epochs and their evaluations.
    pub train: f64,
}

#[derive(Debug, Clone, Serialize)]
/// What `redunet train` reports (`summary.json`).
pub struct TrainSummary {
    /// The device name.
    pub device: String,
    /// Timings.
    pub seconds: TrainSeconds,
    /// Epochs of back-propagation behind this result (below `train.epochs`
    /// while a run is still going: each checkpoint publishes a whole result).
    pub epochs_completed: usize,
    /// After the last epoch (or of the initial network when epochs = 0).
    pub accuracy: TrainAccuracy,
    /// Mean training loss per epoch (epochs 1…E).
    pub loss: Vec<f64>,
    /// Every epoch's record (epoch 0 first).
    pub history: Vec<EpochRecord>,
    /// Rates of the forward construction, when the network was built so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub construction: Vec<LayerRecord>,
    /// CRATE: per layer, the coding rate of the tokens against the layer's
    /// subspaces before and after its compression step, and the sparsity
    /// of its output, on up to 1,000 test samples (with ε² = model.eps_sq).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerRates>,
    /// The same measurements of the network before training.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers_init: Vec<LayerRates>,
    /// Parameters of the network and head.
    pub parameters: usize,
    /// Training labels replaced by `train.label_noise`.
    pub noisy_labels: usize,
    /// The checkpoint directory, relative to the output.
    pub checkpoint: String,
    /// The trained network, standalone (`redunet transform`, `redunet eval`).
    pub model: String,
    /// The data.
    pub data: DataSummary,
    /// Warnings of the data selection.
    pub warnings: Vec<String>,
    /// The configuration, as run.
    pub config: RunConfig,
}

fn train_section(cfg: &RunConfig) -> Result<&TrainConfig> {
    cfg.train
        .as_ref()
        .ok_or_else(|| Error::Parameter("the configuration has no [train] section".into()))
}

/// (H, W, C) of image samples `[H, W]` or `[C, H, W]`.
pub(crate) fn image_shape(ds: &Dataset) -> Result<(usize, usize, usize)> {
    match ds.sample_shape.as_slice() {
        [h, w] => Ok((*h, *w, 1)),
        [c, h, w] => Ok((*h, *w, *c)),
        s => Err(Error::Shape(format!(
            "the network takes images [H, W] or [C, H, W]; the samples have shape {s:?}"
        ))),
    }
}

/// The network a configuration describes, on `device`, initialised as
/// `train.init` says; returns the construction's rate record too.
fn build(
    cfg: &RunConfig,
    train: &Dataset,
    x: &Tensor<2>,
    pi: &Memberships,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Network, Vec<LayerRecord>)> {
    let t = train_section(cfg)?;
    let layer_cfg: VectorLayerConfig = cfg.model.layer_config();
    let layers = cfg.model.layers;
    let on_layer = |r: &LayerRecord| progress.layer(r);
    Ok(match (cfg.model.kind, t.init) {
        (ModelKind::Vector, Init::Forward) => {
            let built = VectorReduNet::construct(x, pi, layers, &layer_cfg, on_layer)?;
            (Network::Vector(built.network), built.records)
        }
        (ModelKind::Vector, Init::Random) => (
            Network::Vector(VectorReduNet::random(
                x.dims()[1],
                pi,
                layers,
                &layer_cfg,
                t.seed,
                device,
            )?),
            Vec::new(),
        ),
        (ModelKind::Conv2d | ModelKind::Conv1d, init) => {
            if cfg.model.kind == ModelKind::Conv2d && cfg.polar.is_some() {
                return Err(Error::Parameter(
                    "model.kind = conv2d takes images; [polar] is for conv1d".into(),
                ));
            }
            let front = FrontEnd::new(
                &crate::invariant::front_config(cfg, &train.sample_shape),
                device,
            )?;
            // Kernels at the scale of an ordinary CNN's weights (see
            // `FrontEnd::with_lift_scale`): the features do not change.
            let front = match front.lift_fan() {
                Some(fan) => front.with_lift_scale(1.0 / fan),
                None => front,
            };
            match init {
                Init::Forward => {
                    let (n, rec) =
                        SpectralReduNet::construct(x, front, pi, layers, &layer_cfg, on_layer)?;
                    (Network::Spectral(n), rec)
                }
                Init::Random => (
                    Network::Spectral(SpectralReduNet::random(
                        front, pi, layers, &layer_cfg, t.seed, device,
                    )?),
                    Vec::new(),
                ),
            }
        }
        (ModelKind::Crate | ModelKind::Transformer, _) => (
            Network::Transformer(
                transformer_shape(cfg, &train.sample_shape)?.init(t.seed, device)?,
            ),
            Vec::new(),
        ),
        (ModelKind::Mlp, _) => (
            Network::Mlp(Mlp::new(
                x.dims()[1],
                layers,
                cfg.model.width.unwrap_or(512),
                cfg.model.out_dim.unwrap_or(128),
                t.seed,
                device,
            )),
            Vec::new(),
        ),
    })
}

/// The transformer a configuration describes on images of `sample_shape`
/// (`[H, W]` or `[C, H, W]`), with the `[model]` defaults: width 64, 4
/// heads, patches of 7, an MLP of 4 × width, ISTA η = λ = 0.1.
pub(crate) fn transformer_shape(
    cfg: &RunConfig,
    sample_shape: &[usize],
) -> Result<TransformerShape> {
    let m = &cfg.model;
    let image = match sample_shape {
        [h, w] => [1, *h, *w],
        [c, h, w] => [*c, *h, *w],
        s => {
            return Err(Error::Shape(format!(
                "model.kind = {:?} takes images [H, W] or [C, H, W]; the samples have shape {s:?}",
                m.kind
            )));
        }
    };
    let dim = m.width.unwrap_or(64);
    let mixer = match m.kind {
        ModelKind::Crate => Mixer::Crate {
            step: m.ista_step.unwrap_or(0.1),
            lambda: m.ista_lambda.unwrap_or(0.1),
        },
        _ => Mixer::Softmax {
            mlp_width: m.mlp_width.unwrap_or(4 * dim),
        },
    };
    let shape = TransformerShape {
        mixer,
        image,
        patch: m.patch.unwrap_or(7),
        dim,
        depth: m.layers,
        heads: m.heads.unwrap_or(4),
    };
    shape
        .validate()
        .map_err(|e| Error::Parameter(format!("model: {e}")))?;
    Ok(shape)
}

/// At most this many samples (the first of each class of the test set,
/// else of the training set) are measured layer by layer.
const RATES_SAMPLES: usize = 1000;

/// Per CRATE layer, its rates on the test samples (or the training
/// samples without a test set); empty for other networks.
fn layer_rates(cfg: &RunConfig, net: &Network, p: &Prepared) -> Result<Vec<LayerRates>> {
    let Network::Transformer(t) = net else {
        return Ok(Vec::new());
    };
    let (x, ds) = match &p.test_x {
        Some(x) => (x, &p.split.test),
        None => (&p.x, &p.split.train),
    };
    let per_class = RATES_SAMPLES.div_ceil(p.split.classes.len().max(1));
    let rows = crate::report::first_per_class(&ds.labels, Some(per_class));
    let idx = redunet_core::host::indices(&rows, &x.device());
    t.layer_rates(&x.clone().select(0, idx), cfg.model.eps_sq)
}

struct Prepared {
    split: redunet_data::split::Split,
    labels: Vec<usize>,
    noisy: usize,
    x: Tensor<2>,
    test_x: Option<Tensor<2>>,
}

impl Prepared {
    fn data(&self) -> TrainData<'_> {
        TrainData {
            x: &self.x,
            labels: &self.labels,
            test_x: self.test_x.as_ref(),
            test_labels: &self.split.test.labels,
            num_classes: self.split.classes.len(),
            image: image_shape(&self.split.train).ok(),
        }
    }
}

fn eval_settings(cfg: &RunConfig) -> EvalSettings {
    crate::report::eval_settings(cfg, 10)
}

/// The configuration's data on `device`, with the training labels that
/// `train.label_noise` corrupts (none without a `[train]` section).
fn prepare(cfg: &RunConfig, split: Split, device: &Device) -> Result<Prepared> {
    let k = split.classes.len();
    let mut labels = split.train.labels.clone();
    let noisy = cfg.train.as_ref().map_or(0, |t| {
        corrupt_labels(&mut labels, k, t.label_noise, t.seed).len()
    });
    let flat = |ds: &Dataset| tensor(ds.features.clone(), [ds.len(), ds.dim()], device);
    let x = flat(&split.train);
    let test_x = (!split.test.is_empty()).then(|| flat(&split.test));
    Ok(Prepared {
        split,
        labels,
        noisy,
        x,
        test_x,
    })
}

/// What a checkpoint records about the run that trained it: the model, data,
/// front end and seed settings (the `[train]` section is compared by the
/// trainer itself; evaluation settings do not change the training).
fn provenance(cfg: &RunConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(cfg).expect("configurations serialise");
    if let Some(o) = v.as_object_mut() {
        o.remove("train");
        o.remove("eval");
        if let Some(m) = o.get_mut("model").and_then(|m| m.as_object_mut()) {
            m.remove("save");
        }
    }
    v
}

/// What the summary of a (possibly partial) training run is assembled from.
struct Report<'a> {
    cfg: &'a RunConfig,
    device_name: &'a str,
    prepared: &'a Prepared,
    construction: &'a [LayerRecord],
    layers_init: Vec<LayerRates>,
    init_s: f64,
    start: Instant,
}

impl Report<'_> {
    fn summary(
        &self,
        trainee: &Trainee<Network>,
        history: &[EpochRecord],
        epochs_completed: usize,
    ) -> Result<TrainSummary> {
        let p = self.prepared;
        let last = history
            .iter()
            .rev()
            .find(|r| r.train.is_some())
            .ok_or_else(|| Error::Empty("no evaluation on record".into()))?;
        Ok(TrainSummary {
            device: self.device_name.to_string(),
            seconds: TrainSeconds {
                init: self.init_s,
                train: self.start.elapsed().as_secs_f64(),
            },
            epochs_completed,
            accuracy: TrainAccuracy {
                train: last.train,
                test: last.test,
                test_head: last.test_head,
            },
            loss: history.iter().filter_map(|r| r.loss).collect(),
            history: history.to_vec(),
            construction: self.construction.to_vec(),
            layers: layer_rates(self.cfg, &trainee.net, p)?,
            layers_init: self.layers_init.clone(),
            parameters: trainee.num_params(),
            noisy_labels: p.noisy,
            checkpoint: "checkpoint".into(),
            model: "model".into(),
            data: DataSummary {
                source: format!("{:?}", self.cfg.data.source),
                classes: p.split.classes.clone(),
                train: p.split.train.len(),
                test: p.split.test.len(),
                dim: p.split.train.dim(),
            },
            warnings: p.split.warnings.clone(),
            config: self.cfg.clone(),
        })
    }

    /// Writes the model and the summary beside the checkpoint already in
    /// the stage, and publishes the three together.
    fn publish(
        &self,
        out: &mut OutputDir,
        trainee: &Trainee<Network>,
        state: &CheckpointState,
    ) -> Result<TrainSummary> {
        let t = train_section(self.cfg)?;
        SavedModel {
            trainee: trainee.clone(),
            logit_scale: (t.objective == Objective::CrossEntropy).then_some(t.logit_scale),
            meta: serde_json::to_value(self.cfg).expect("configurations serialise"),
        }
        .save(&out.stage().join("model"))?;
        let summary = self.summary(trainee, &state.history, state.epoch)?;
        let json = serde_json::to_vec_pretty(&summary).expect("summaries serialise");
        write_atomic(&out.stage().join("summary.json"), &json)?;
        out.commit()?;
        Ok(summary)
    }
}

/// Builds the network the configuration describes (forward construction or
/// random start), trains it by back-propagation on `device.autodiff()`, and
/// publishes into `out` the summary, the standalone trained model
/// (`model/`) and the resume checkpoint (`checkpoint/`, continued from
/// `resume` when given) — as one unit at every checkpoint, so that a crash
/// leaves the last whole result.
///
/// Resuming checks the checkpoint first (its files' checksums, that it was
/// trained with the same model, data, seed and training settings, and that
/// `train.epochs` goes past it), before anything is built.
pub fn train(
    cfg: &RunConfig,
    device: &Device,
    device_name: &str,
    out: &mut OutputDir,
    resume: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<TrainSummary> {
    let t = train_section(cfg)?.clone();
    let provenance = provenance(cfg);
    let Checked { split, .. } = checked(cfg, resume, out.stage())?;
    let p = prepare(cfg, split, device)?;
    for w in &p.split.warnings {
        progress.warning(w);
    }
    progress.started(&format!(
        "data: {:?}, {} classes, {} train / {} test, model {:?}, init {:?}, objective {:?}, {} epochs, device {device_name}",
        cfg.data.source,
        p.split.classes.len(),
        p.split.train.len(),
        p.split.test.len(),
        cfg.model.kind,
        t.init,
        t.objective,
        t.epochs
    ));
    let start = Instant::now();
    // The construction's memberships (the possibly corrupted labels).
    let pi = Memberships::from_labels(&p.labels, p.split.classes.len(), device)?;
    let (net, construction) = build(cfg, &p.split.train, &p.x, &pi, device, progress)?;
    let report = Report {
        cfg,
        device_name,
        prepared: &p,
        construction: &construction,
        layers_init: layer_rates(cfg, &net, &p)?,
        init_s: start.elapsed().as_secs_f64(),
        start: Instant::now(),
    };
    let (data, eval) = (p.data(), eval_settings(cfg));
    // The stage keeps its path across commits.
    let ckpt = out.stage().join("checkpoint");
    let mut last = None;
    let mut on_checkpoint = |trainee: &Trainee<Network>, state: &CheckpointState| {
        last = Some(report.publish(out, trainee, state)?);
        Ok(())
    };
    let trained = fit(
        net,
        &t,
        &data,
        eval,
        CheckpointPlan {
            dir: Some(&ckpt),
            resume,
            provenance: provenance.clone(),
            on_checkpoint: Some(&mut on_checkpoint),
        },
        |e| progress.training(&e),
    )?;
    if let Some(s) = last {
        return Ok(s);
    }
    // No back-propagation (epochs = 0): the initial network is the result,
    // and its checkpoint is what `--resume` continues from.
    let state = CheckpointState {
        epoch: 0,
        history: trained.history,
        config: t.clone(),
        provenance,
    };
    save_checkpoint(&ckpt, &trained.trainee, None, &state)?;
    report.publish(out, &trained.trainee, &state)
}

/// `redunet eval`: a saved model (`OUT/model` of `redunet train` or `redunet
/// run`) evaluated on the configuration's data, as the run
/// evaluated it: kNN and nearest subspace against the training features
/// (with the training labels `train.label_noise` corrupts), and the head on
/// the test set. Data of another shape than the model's are refused.
pub fn eval(cfg: &RunConfig, model_dir: &Path, device: &Device) -> Result<TrainAccuracy> {
    let model = AnyModel::load(model_dir, device)?;
    let p = prepare(cfg, cfg.data.load(cfg.seed)?, device)?;
    model.check_samples(&p.split.train.sample_shape)?;
    if let Some((h, _)) = model.head() {
        let classes = h.weight.val().dims()[1];
        if classes != p.split.classes.len() {
            return Err(Error::Shape(format!(
                "the model's head predicts {classes} classes, the data have {} ({:?})",
                p.split.classes.len(),
                p.split.classes
            )));
        }
    }
    let (train, test, test_head) = evaluate_features(
        |x| model.features(x),
        model.head(),
        &p.data(),
        eval_settings(cfg),
    )?;
    Ok(TrainAccuracy {
        train: Some(train),
        test,
        test_head,
    })
}

/// What training has checked before it allocates: the data, the front end
/// of an invariant network, and the resources.
struct Checked {
    split: Split,
    front: Option<FrontEndConfig>,
    estimate: Estimate,
}

/// Every check `redunet train` makes before its first allocation: the
/// configuration and its combination with training (settings that training
/// would not use are refused, not ignored), the checkpoint to resume, the
/// data, the front end, and the memory and disk the run will take against
/// what the machine and the disk of `out` have.
fn checked(cfg: &RunConfig, resume: Option<&Path>, out: &Path) -> Result<Checked> {
    cfg.validate()?;
    let t = train_section(cfg)?;
    let bad = |m: String| Err(Error::Parameter(m));
    let kind = cfg.model.kind;
    let invariant = matches!(kind, ModelKind::Conv1d | ModelKind::Conv2d);
    if cfg.model.batch_size.is_some() {
        return bad(
            "model.batch_size: `redunet train` constructs its initial network all at once".into(),
        );
    }
    if !cfg.model.save {
        return bad(
            "model.save = false: `redunet train` always writes the trained model (model/) \
             beside its checkpoint; remove the setting"
                .into(),
        );
    }
    if !invariant && (cfg.polar.is_some() || cfg.lift.is_some()) {
        return bad(format!(
            "[polar] and [lift] are front ends of the invariant networks (conv1d, conv2d); \
             `redunet train` of model.kind = {kind:?} takes the samples as they are"
        ));
    }
    if cfg.eval.shift_stride.is_some() || cfg.eval.shift_test_per_class.is_some() {
        return bad(
            "eval.shift_stride and eval.shift_test_per_class: the all-shifts evaluation is \
             `redunet run`'s; `redunet train` evaluates the test set as it is"
                .into(),
        );
    }
    if let Some(dir) = resume {
        read_checkpoint_state(dir)?.check_resume(dir, t, &provenance(cfg))?;
    }
    let split = cfg.data.load(cfg.seed)?;
    let front = if invariant {
        let f = crate::invariant::front_config(cfg, &split.train.sample_shape);
        f.validate()?;
        let (h, w) = f.transform_shape();
        if redunet_vision::spectral::Dft::uses_fft_for(h, w) {
            return bad(format!(
                "signals of {} samples are transformed by FFT, which is not differentiable: \
                 networks on them are constructed (`redunet run`), not trained (at most {} samples)",
                f.signal_shape().1,
                redunet_vision::spectral::FFT_MIN_LEN - 1
            ));
        }
        Some(f)
    } else {
        None
    };
    if kind.is_transformer() {
        transformer_shape(cfg, &split.train.sample_shape)?;
    }
    let estimate = crate::budget::check_run(cfg, &split, front.as_ref(), Job::Train, out)?;
    Ok(Checked {
        split,
        front,
        estimate,
    })
}

/// The plan of [`train`] (resuming `resume` if given), writing into `out`:
/// every check the run makes before it starts, nothing built or trained.
/// The error the run would give where it would refuse.
pub fn plan(cfg: &RunConfig, resume: Option<&Path>, out: &Path) -> Result<Plan> {
    let Checked {
        split,
        front,
        estimate,
    } = checked(cfg, resume, out)?;
    let t = train_section(cfg)?;
    let m = &cfg.model;
    let mut model = vec![match m.kind {
        ModelKind::Vector | ModelKind::Conv1d | ModelKind::Conv2d => format!(
            "{:?}, {} layers, {:?} initialisation",
            m.kind, m.layers, t.init
        ),
        ModelKind::Mlp => format!(
            "MLP, {} hidden layers of {}, {} features",
            m.layers,
            m.width.unwrap_or(512),
            m.out_dim.unwrap_or(128)
        ),
        ModelKind::Crate | ModelKind::Transformer => {
            let s = transformer_shape(cfg, &split.train.sample_shape)?;
            format!(
                "{:?}, {} layers of width {}, {} heads, {}×{} patches",
                m.kind, s.depth, s.dim, s.heads, s.patch, s.patch
            )
        }
    }];
    if let Some(f) = &front {
        model.push(crate::plan::front_line(f));
    }
    model.push(format!(
        "{:?} objective, {} epochs of batches of {}, learning rate {}{}",
        t.objective,
        t.epochs,
        t.batch_size,
        t.lr,
        resume.map_or(String::new(), |d| format!(", resumed from {}", d.display()))
    ));
    let model_bytes = estimate.disk.first().map_or(0, |p| p.bytes);
    let outputs = vec![
        "summary.json (and layers.png for CRATE)".to_string(),
        format!("model/: the trained network, {}", human(model_bytes)),
        "checkpoint/: parameters, optimiser state and history for --resume".to_string(),
    ];
    Ok(Plan {
        job: "training by back-propagation (`redunet train`)".into(),
        data: crate::plan::data_lines(cfg.data.source, &split),
        model,
        outputs,
        estimate,
        warnings: split.warnings,
    })
}
