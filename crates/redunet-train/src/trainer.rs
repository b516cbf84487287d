//! Training by back-propagation: mini-batches, SGD with momentum or Adam, a
//! learning-rate schedule, evaluation per epoch, atomic checkpoints and
//! resuming from them.
//!
//! The trainer knows networks only through [`FeatureNet`]: a module that
//! maps flattened inputs `[b, n]` to features `[b, d]`. The objective is
//! MCR² on the features ([`crate::Mcr2Loss`]) or cross-entropy
//! through a linear head. Evaluation classifies features by kNN and nearest
//! subspace, as `redunet run` does.

use crate::augment::Augmentation;
use crate::loss::Mcr2LossConfig;
use burn::grad_clipping::GradientClippingConfig;
use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::{ModuleLrScheduler, ModuleLrSchedulerConfig};
use burn::module::{Initializer, Module};
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use redunet_core::classify::{Knn, Micl, NearestSubspace, accuracy};
use redunet_core::network::{commit_dir, staging_dir};
use redunet_core::{Error, Memberships, Result};
use redunet_data::output::{seal, verify};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// A trainable network mapping a flattened input batch `[b, n]` to
/// features `[b, d]`.
pub trait FeatureNet: Module + burn::module::ModuleDisplay {
    /// Differentiable forward pass on the device of the parameters.
    fn features(&self, x: Tensor<2>) -> Tensor<2>;
    /// Features of a large set, without gradients, on `device` (the plain
    /// device the data live on); implementations may take a faster path.
    fn features_eval(&self, x: &Tensor<2>, device: &Device) -> Result<Tensor<2>>;
    /// Length of a feature vector.
    fn feature_dim(&self) -> usize;
}

/// A network and, for cross-entropy, its linear head (burn-nn's `Linear`
/// without bias, `logits = scale · f W` on unit-norm features `f`): the unit
/// the optimiser steps.
#[derive(Module, Debug)]
pub struct Trainee<M: FeatureNet> {
    /// The feature extractor.
    pub net: M,
    /// The linear head (cross-entropy only).
    pub head: Option<Linear>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// How the network starts before back-propagation.
pub enum Init {
    /// Forward construction (ReduNets) or the network's own default.
    #[default]
    Forward,
    /// Random operators at the scales forward construction would use (ReduNets), or seeded weights.
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// What back-propagation minimises.
pub enum Objective {
    #[default]
    /// Cross-entropy of a linear head on the features.
    CrossEntropy,
    /// −ΔR of the features (MCR², [`crate::Mcr2Loss`]).
    Mcr2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// The optimiser (burn-optim).
pub enum OptimizerKind {
    #[default]
    /// Adam (weight decay added to the gradient).
    Adam,
    /// AdamW (decoupled weight decay).
    #[serde(rename = "adamw")]
    AdamW,
    /// SGD, with momentum when `momentum > 0`.
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
/// The learning rate over the epochs (after `warmup_epochs`, over the
/// rest), as burn-optim's schedulers.
pub enum Schedule {
    #[default]
    /// The same rate every epoch.
    Constant,
    /// lr · ½(1 + cos(π e/E)) at epoch e of E (cosine annealing to 0).
    Cosine,
    /// lr, then lr/10 from half the epochs, lr/100 from three quarters.
    Step,
    /// lr · (1 − e/E): linear decay to 0.
    Linear,
}

fn default_momentum() -> f64 {
    0.9
}
fn default_logit_scale() -> f64 {
    10.0
}
fn default_eps_sq() -> f64 {
    0.5
}
fn default_eval_every() -> usize {
    1
}

/// The `[train]` section of a configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    /// How the network starts.
    pub init: Init,
    /// Epochs of back-propagation; 0 evaluates the initial network only.
    pub epochs: usize,
    #[serde(default)]
    /// What is minimised.
    pub objective: Objective,
    #[serde(default)]
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// Clip each step's gradients to this global ℓ2 norm (absent: no
    /// clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip_norm: Option<f64>,
    /// Learning rate (at the first epoch).
    pub lr: f64,
    /// SGD only.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default)]
    /// Weight decay (0: none).
    pub weight_decay: f64,
    /// Samples per mini-batch (at least 2: MCR² needs a Gram matrix).
    pub batch_size: usize,
    #[serde(default)]
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Epochs of linear warm-up before the schedule: lr·(e+1)/(w+1) at
    /// epoch e < w (0: none; left out of the record then, so that
    /// checkpoints of earlier versions still resume).
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub warmup_epochs: usize,
    /// Cross-entropy: logits are this times `f W` (features have unit norm).
    #[serde(default = "default_logit_scale")]
    pub logit_scale: f64,
    /// MCR²: the distortion ε².
    #[serde(default = "default_eps_sq")]
    pub eps_sq: f64,
    /// Shuffling (and random initialisation).
    #[serde(default)]
    pub seed: u64,
    /// Evaluate every this many epochs (and always after the last).
    #[serde(default = "default_eval_every")]
    pub eval_every: usize,
    /// Write a checkpoint every this many epochs (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Fraction of training labels replaced by a different random class
    /// before training (the label-noise study); the test labels stay clean.
    #[serde(default)]
    pub label_noise: f64,
    /// Image data only: each training image is rotated by a random angle in
    /// ± this many degrees before every pass (0: no rotation).
    #[serde(default)]
    pub augment_rotation: f64,
    /// Image data only: and scaled by a random factor in 1 ± this.
    #[serde(default)]
    pub augment_scale: f64,
    /// Image data only: and translated by up to this many pixels each way
    /// (0: none; left out of the record then, so that checkpoints of
    /// earlier versions still resume).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub augment_shift: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_zero_usize(x: &usize) -> bool {
    *x == 0
}

impl TrainConfig {
    /// Checks every setting (before anything is allocated).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Parameter(what));
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("train.lr must be positive, got {}", self.lr));
        }
        if self.batch_size < 2 {
            return bad(format!(
                "train.batch_size must be at least 2, got {}",
                self.batch_size
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!(
                "train.momentum must be in [0, 1), got {}",
                self.momentum
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "train.weight_decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if !(self.logit_scale.is_finite() && self.logit_scale > 0.0) {
            return bad(format!(
                "train.logit_scale must be positive, got {}",
                self.logit_scale
            ));
        }
        if !(self.eps_sq.is_finite() && self.eps_sq > 0.0) {
            return bad(format!(
                "train.eps_sq must be positive, got {}",
                self.eps_sq
            ));
        }
        if self.eval_every == 0 {
            return bad("train.eval_every must be at least 1".into());
        }
        if let Some(n) = self.grad_clip_norm
            && !(n.is_finite() && n > 0.0)
        {
            return bad(format!("train.grad_clip_norm must be positive, got {n}"));
        }
        if self.epochs > 0 && self.warmup_epochs >= self.epochs {
            return bad(format!(
                "train.warmup_epochs = {} leaves none of the {} epochs to the schedule",
                self.warmup_epochs, self.epochs
            ));
        }
        self.scheduler()?;
        if !(0.0..1.0).contains(&self.label_noise) {
            return bad(format!(
                "train.label_noise must be in [0, 1), got {}",
                self.label_noise
            ));
        }
        if !(self.augment_rotation.is_finite() && (0.0..=180.0).contains(&self.augment_rotation)) {
            return bad(format!(
                "train.augment_rotation must be in [0, 180] degrees, got {}",
                self.augment_rotation
            ));
        }
        if !(self.augment_scale.is_finite() && (0.0..0.5).contains(&self.augment_scale)) {
            return bad(format!(
                "train.augment_scale must be in [0, 0.5), got {}",
                self.augment_scale
            ));
        }
        if !(self.augment_shift.is_finite() && (0.0..=64.0).contains(&self.augment_shift)) {
            return bad(format!(
                "train.augment_shift must be in [0, 64] pixels, got {}",
                self.augment_shift
            ));
        }
        Ok(())
    }

    /// The random warps the settings ask for.
    pub fn augmentation(&self) -> Augmentation {
        Augmentation {
            rotation: self.augment_rotation,
            scale: self.augment_scale,
            shift: self.augment_shift,
        }
    }

    /// The learning-rate schedule as burn-optim's scheduler, stepped once
    /// per epoch (its first step gives epoch 0's rate): the warm-up, then
    /// `schedule` over the remaining epochs.
    pub fn scheduler(&self) -> Result<ModuleLrScheduler> {
        use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
        use burn::lr_scheduler::linear::LinearLrSchedulerConfig;
        use burn::lr_scheduler::sequential::SequentialLrSchedulerConfig;
        let (lr, w) = (self.lr, self.warmup_epochs);
        let rest = self.epochs.saturating_sub(w).max(1);
        // (first epoch, schedule) pieces; the sequential scheduler hands over
        // at each first epoch.
        let mut pieces: Vec<(usize, LrSchedulerConfig)> = Vec::new();
        if w > 0 {
            let start = lr / (w + 1) as f64;
            pieces.push((0, LinearLrSchedulerConfig::new(start, lr, w).into()));
        }
        match self.schedule {
            Schedule::Constant => pieces.push((w, LrSchedulerConfig::Constant(lr))),
            Schedule::Cosine => {
                pieces.push((w, CosineAnnealingLrSchedulerConfig::new(lr, rest).into()))
            }
            Schedule::Linear => {
                pieces.push((w, LinearLrSchedulerConfig::new(lr, 0.0, rest).into()))
            }
            Schedule::Step => {
                // Epoch e of E is at t = e/E: lr/10 from t ≥ ½, lr/100 from
                // t ≥ ¾ (the later one wins where both start together).
                let (half, three_quarters) = (w + rest.div_ceil(2), w + (3 * rest).div_ceil(4));
                pieces.push((w, LrSchedulerConfig::Constant(lr)));
                if half < three_quarters {
                    pieces.push((half, LrSchedulerConfig::Constant(lr * 0.1)));
                }
                pieces.push((three_quarters, LrSchedulerConfig::Constant(lr * 0.01)));
            }
        }
        // A piece that starts with the next one never runs.
        pieces.dedup_by(|next, prev| {
            let same = next.0 == prev.0;
            if same {
                std::mem::swap(next, prev);
            }
            same
        });
        let init = if pieces.len() == 1 {
            ModuleLrSchedulerConfig::new(pieces.remove(0).1).init()
        } else {
            let milestones = pieces[1..].iter().map(|p| p.0).collect();
            let schedulers = pieces.into_iter().map(|p| p.1).collect();
            ModuleLrSchedulerConfig::new(
                SequentialLrSchedulerConfig::new(schedulers, milestones).into(),
            )
            .init()
        };
        init.map_err(|e| Error::Parameter(format!("train.schedule with train.lr = {lr}: {e}")))
    }
}

/// Replaces a `ratio` fraction of `labels` (chosen by `seed`) with a
/// different class drawn uniformly; returns the indices changed.
pub fn corrupt_labels(labels: &mut [usize], classes: usize, ratio: f64, seed: u64) -> Vec<usize> {
    use rand::Rng;
    if classes < 2 || ratio <= 0.0 {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c61_6265_6c73);
    let mut idx: Vec<usize> = (0..labels.len()).collect();
    idx.shuffle(&mut rng);
    idx.truncate((ratio * labels.len() as f64).round() as usize);
    for &i in &idx {
        let shift = rng.random_range(1..classes);
        labels[i] = (labels[i] + shift) % classes;
    }
    idx.sort_unstable();
    idx
}

/// Accuracy of features by kNN, nearest subspace and MICL.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Accuracies {
    /// kNN accuracy.
    pub knn: f64,
    /// Nearest-subspace accuracy.
    pub nearest_subspace: f64,
    /// Accuracy of minimum incremental coding length
    /// ([`redunet_core::classify::Micl`]); `None` when the evaluation
    /// left MICL out ([`EvalSettings::micl_eps_sq`]).
    #[serde(default)]
    pub micl: Option<f64>,
}

/// kNN, nearest subspace and (unless left out) MICL, fitted once to
/// labelled training features, then scoring any number of feature sets.
#[derive(Debug, Clone)]
pub struct Classifiers {
    knn: Knn,
    nearest_subspace: NearestSubspace,
    micl: Option<Micl>,
}

impl Classifiers {
    /// Fits the classifiers to labelled training features (on rows scaled
    /// to unit norm, as the features of every network here are).
    pub fn fit(train: &Tensor<2>, labels: &[usize], eval: EvalSettings) -> Result<Self> {
        // Normalised once, shared by all (a full copy of large features).
        let rows = redunet_core::classify::normalized_rows(train)?;
        Ok(Self {
            nearest_subspace: NearestSubspace::fit_normalized(&rows, labels, eval.n_comp)?,
            micl: eval
                .micl_eps_sq
                .map(|eps_sq| Micl::fit(&rows, labels, eps_sq))
                .transpose()?,
            knn: Knn::fit_normalized(rows, labels, eval.knn_k)?,
        })
    }

    /// Accuracy of the classifiers on `features` with true `labels`.
    pub fn accuracies(&self, features: &Tensor<2>, labels: &[usize]) -> Result<Accuracies> {
        let micl = match &self.micl {
            Some(micl) => {
                let rows = redunet_core::classify::normalized_rows(features)?;
                Some(accuracy(&micl.predict(&rows)?, labels))
            }
            None => None,
        };
        Ok(Accuracies {
            knn: accuracy(&self.knn.predict(features)?, labels),
            nearest_subspace: accuracy(&self.nearest_subspace.predict(features)?, labels),
            micl,
        })
    }
}

/// How evaluation classifies.
#[derive(Debug, Clone, Copy)]
pub struct EvalSettings {
    /// Neighbours of the kNN classifier.
    pub knn_k: usize,
    /// Dimension of each class subspace.
    pub n_comp: usize,
    /// ε² of MICL's coding lengths, or `None` to leave MICL out: its fit
    /// and queries grow with the feature dimension squared per sample
    /// (minutes and gigabytes of f64 products on 12,544-d features).
    pub micl_eps_sq: Option<f64>,
}

/// One epoch on record (epoch 0 is the network before training).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch (0: before training).
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (none for epoch 0).
    pub loss: Option<f64>,
    /// Learning rate of the epoch.
    pub lr: Option<f64>,
    /// Seconds the epoch and its evaluation took.
    pub seconds: f64,
    /// Accuracies on the training features (when evaluated).
    pub train: Option<Accuracies>,
    /// Accuracies on the test features (when evaluated and there is a test set).
    pub test: Option<Accuracies>,
    /// Cross-entropy: accuracy of the linear head on the test set.
    pub test_head: Option<f64>,
}

/// Training and test data on a plain (non-autodiff) device.
pub struct TrainData<'a> {
    /// Training samples, flattened `[m, n]`.
    pub x: &'a Tensor<2>,
    /// Their labels (possibly corrupted by `label_noise`).
    pub labels: &'a [usize],
    /// Test samples, if any.
    pub test_x: Option<&'a Tensor<2>>,
    /// Their labels.
    pub test_labels: &'a [usize],
    /// Number of classes k.
    pub num_classes: usize,
    /// `(height, width, channels)` when the rows are images; needed for
    /// augmentation.
    pub image: Option<(usize, usize, usize)>,
}

/// What the trainer reports as it goes.
pub enum Event<'a> {
    /// A mini-batch was trained.
    Batch {
        /// Epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// Steps in the epoch.
        steps: usize,
        /// The batch's loss.
        loss: f64,
    },
    /// An epoch ended.
    Epoch(&'a EpochRecord),
}

/// A checkpoint on disk: `trainee.bpk` (parameters), `optimizer.bpk`
/// (its state, absent before the first epoch), `state.json` (epoch,
/// history, configuration, provenance) and `checksums.json` (every file's
/// size and CRC-32, checked before anything is loaded).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointState {
    /// Epochs trained.
    pub epoch: usize,
    /// Every epoch's record (epoch 0 first).
    pub history: Vec<EpochRecord>,
    /// The training settings.
    pub config: TrainConfig,
    /// What the network was trained on, as the caller describes it (e.g. the
    /// model, data and seed settings of the run configuration): resuming
    /// with a different description is refused.
    pub provenance: serde_json::Value,
}

/// Settings that may change between a run and its resumption: how long to
/// train and how often to evaluate or checkpoint. Everything else in
/// [`TrainConfig`] shapes the training and must match.
const RESUMABLE: [&str; 3] = ["epochs", "eval_every", "checkpoint_every"];

/// The dotted paths at which two JSON values differ, with both values.
pub fn json_differences(
    path: &str,
    stored: &serde_json::Value,
    now: &serde_json::Value,
) -> Vec<String> {
    use serde_json::Value;
    match (stored, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    json_differences(
                        &p,
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    )
                })
                .collect()
        }
        (a, b) if a == b => Vec::new(),
        (a, b) => vec![format!("{path}: {a} in the checkpoint, {b} now")],
    }
}

impl CheckpointState {
    /// Checks the state read from checkpoint `dir` for resuming a run of
    /// `cfg` described by `provenance`: it must be consistent in itself,
    /// come from the same setup, and leave epochs to train.
    pub fn check_resume(
        &self,
        dir: &Path,
        cfg: &TrainConfig,
        provenance: &serde_json::Value,
    ) -> Result<()> {
        let corrupt = |reason: String| Error::CorruptModel {
            path: dir.join("state.json"),
            reason,
        };
        let epochs: Vec<usize> = self.history.iter().map(|r| r.epoch).collect();
        if epochs.first() != Some(&0)
            || epochs.windows(2).any(|w| w[1] != w[0] + 1)
            || epochs.last() != Some(&self.epoch)
        {
            return Err(corrupt(format!(
                "epoch {} with a history of epochs {epochs:?}",
                self.epoch
            )));
        }
        let strip = |c: &TrainConfig| {
            let mut v = serde_json::to_value(c).expect("configurations serialise");
            if let Some(o) = v.as_object_mut() {
                for k in RESUMABLE {
                    o.remove(k);
                }
            }
            v
        };
        let mut diff = json_differences("", &self.provenance, provenance);
        diff.extend(json_differences("train", &strip(&self.config), &strip(cfg)));
        if !diff.is_empty() {
            return Err(Error::Parameter(format!(
                "cannot resume from {}: it was trained with other settings ({})",
                dir.display(),
                diff.join("; ")
            )));
        }
        if cfg.epochs <= self.epoch {
            return Err(Error::Parameter(format!(
                "the checkpoint {} is already at epoch {}; train.epochs = {} leaves nothing to \
                 train (set train.epochs above {} to continue)",
                dir.display(),
                self.epoch,
                cfg.epochs,
                self.epoch
            )));
        }
        Ok(())
    }
}

/// The trained network and its record.
pub struct Trained<M: FeatureNet> {
    /// The trained network and head.
    pub trainee: Trainee<M>,
    /// Every epoch's record.
    pub history: Vec<EpochRecord>,
}

/// The optimiser `cfg` asks for (burn-optim's).
pub fn optimizer(cfg: &TrainConfig) -> burn::optim::ModuleOptimizer {
    let decay = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    let clip = cfg
        .grad_clip_norm
        .map(|n| GradientClippingConfig::Norm(n as f32));
    match cfg.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_weight_decay(decay)
            .with_grad_clipping(clip)
            .init(),
        // Decoupled weight decay: train.weight_decay as it is (0: none).
        OptimizerKind::AdamW => AdamWConfig::new()
            .with_weight_decay(cfg.weight_decay as f32)
            .with_grad_clipping(clip)
            .init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_weight_decay(decay)
            .with_gradient_clipping(clip)
            .with_momentum((cfg.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(cfg.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}

/// One optimiser step of the trainer: the objective of a batch, its
/// gradients and the update, on `device.autodiff()`. What [`fit`] does for
/// every batch, and what the `train_step` benchmark times.
pub struct Stepper {
    objective: Objective,
    logit_scale: f64,
    num_classes: usize,
    mcr2: crate::Mcr2Loss,
    ad: Device,
}

impl Stepper {
    /// Steps with the settings of `cfg` for `num_classes` classes, the data
    /// on `device`.
    pub fn new(cfg: &TrainConfig, num_classes: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            objective: cfg.objective,
            logit_scale: cfg.logit_scale,
            num_classes,
            mcr2: Mcr2LossConfig::new()
                .with_eps_sq(cfg.eps_sq)
                .with_num_classes(Some(num_classes))
                .try_init()?,
            ad: device.clone().autodiff(),
        })
    }

    /// One step on the batch `x: [b, n]` (on the plain device) with
    /// `labels`, at learning rate `lr`: the updated model and the batch's
    /// loss (not read back). Cross-entropy through the head where the model
    /// has one, else −ΔR of the features.
    pub fn step<M: FeatureNet>(
        &self,
        model: Trainee<M>,
        optim: &mut burn::optim::ModuleOptimizer,
        x: Tensor<2>,
        labels: &[usize],
        lr: f64,
    ) -> Result<(Trainee<M>, Tensor<1>)> {
        let f = model.net.features(x.to_device(&self.ad));
        let loss = match (&model.head, self.objective) {
            (Some(h), _) => {
                let logits = h.forward(f).mul_scalar(self.logit_scale);
                (log_softmax(logits, 1) * one_hot(labels, self.num_classes, &self.ad))
                    .sum()
                    .neg()
                    .div_scalar(labels.len() as f32)
            }
            (None, _) => {
                let pi = Memberships::from_labels(labels, self.num_classes, &self.ad)?;
                self.mcr2.try_forward(&f, &pi)?.loss
            }
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        Ok((optim.step(lr, model, grads), loss))
    }
}

fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        v[i * classes + l] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), classes]), device)
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let f = redunet_data::io_error(action, path);
    move |e| Error::Data(f(e))
}

fn record_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::CorruptModel {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The head of the cross-entropy objective (zero-initialised), or none.
pub fn new_head(cfg: &TrainConfig, dim: usize, classes: usize, device: &Device) -> Option<Linear> {
    (cfg.objective == Objective::CrossEntropy).then(|| head(dim, classes, device))
}

/// A zero-initialised linear head `[dim] → [classes]` without bias.
pub fn head(dim: usize, classes: usize, device: &Device) -> Linear {
    LinearConfig::new(dim, classes)
        .with_bias(false)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// Writes a checkpoint directory atomically (staged, then swapped in); the
/// optimiser state is absent for a network that was never trained.
pub fn save_checkpoint<M: FeatureNet>(
    dir: &Path,
    trainee: &Trainee<M>,
    optim: Option<&burn::optim::ModuleOptimizer>,
    state: &CheckpointState,
) -> Result<()> {
    let tmp = staging_dir(dir)?;
    let model = tmp.join("trainee.bpk");
    trainee
        .clone()
        .save_file(&model)
        .map_err(|e| record_error(&model, e))?;
    if let Some(optim) = optim {
        let opt = tmp.join("optimizer.bpk");
        optim.save(&opt).map_err(|e| record_error(&opt, e))?;
    }
    let json = serde_json::to_vec_pretty(state).expect("checkpoint state serialises");
    let st = tmp.join("state.json");
    std::fs::write(&st, json).map_err(io("write", &st))?;
    seal(&tmp)?;
    commit_dir(&tmp, dir)
}

/// Reads a checkpoint's state (the parameters are loaded by [`fit`]) after
/// checking every file of the checkpoint against its checksums.
pub fn read_checkpoint_state(dir: &Path) -> Result<CheckpointState> {
    verify(dir, &["state.json", "trainee.bpk"])?;
    let st = dir.join("state.json");
    let bytes = std::fs::read(&st).map_err(io("read", &st))?;
    let state: CheckpointState =
        serde_json::from_slice(&bytes).map_err(|e| record_error(&st, e))?;
    state.config.validate().map_err(|e| record_error(&st, e))?;
    if state.epoch > 0 && !dir.join("optimizer.bpk").is_file() {
        return Err(record_error(
            &dir.join("optimizer.bpk"),
            format!("missing: the checkpoint is at epoch {}", state.epoch),
        ));
    }
    Ok(state)
}

/// Loads the parameters of a checkpoint into `trainee` (which must have the
/// same structure, e.g. built by the same configuration).
pub fn load_checkpoint_params<M: FeatureNet>(
    dir: &Path,
    trainee: Trainee<M>,
) -> Result<Trainee<M>> {
    let model = dir.join("trainee.bpk");
    if !model.is_file() {
        return Err(io("read", &model)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        )));
    }
    trainee
        .try_load_file(&model)
        .map_err(|e| record_error(&model, e))
}

/// Called after each checkpoint is written, with the trained network and
/// the checkpoint's state (e.g. to publish a whole result directory).
pub type OnCheckpoint<'a, M> = &'a mut dyn FnMut(&Trainee<M>, &CheckpointState) -> Result<()>;

/// Where checkpoints go and whether to resume from one.
pub struct CheckpointPlan<'a, M: FeatureNet> {
    /// Where checkpoints are written (none: not written).
    pub dir: Option<&'a Path>,
    /// Resume from this checkpoint directory (written by an earlier run).
    pub resume: Option<&'a Path>,
    /// What this run trains on (stored in each checkpoint; a resumed run's
    /// must equal the checkpoint's).
    pub provenance: serde_json::Value,
    /// Called after each checkpoint.
    pub on_checkpoint: Option<OnCheckpoint<'a, M>>,
}

impl<M: FeatureNet> CheckpointPlan<'_, M> {
    /// No checkpoints, no resuming.
    pub fn none() -> Self {
        Self {
            dir: None,
            resume: None,
            provenance: serde_json::Value::Null,
            on_checkpoint: None,
        }
    }
}

/// kNN and nearest subspace of `trainee`'s features on the training and
/// test data, and its head's test accuracy (cross-entropy models).
pub fn evaluate<M: FeatureNet>(
    trainee: &Trainee<M>,
    data: &TrainData<'_>,
    eval: EvalSettings,
    logit_scale: f64,
) -> Result<(Accuracies, Option<Accuracies>, Option<f64>)> {
    let device = data.x.device();
    let head = trainee.head.as_ref().map(|h| (h, logit_scale));
    evaluate_features(|x| trainee.net.features_eval(x, &device), head, data, eval)
}

/// [`evaluate`] of any feature map `features` (e.g. a network applied layer
/// by layer from its files) and its optional head `(W, logit scale)`.
pub fn evaluate_features(
    features: impl Fn(&Tensor<2>) -> Result<Tensor<2>>,
    head: Option<(&Linear, f64)>,
    data: &TrainData<'_>,
    eval: EvalSettings,
) -> Result<(Accuracies, Option<Accuracies>, Option<f64>)> {
    let device = data.x.device();
    let ftr = features(data.x)?;
    let fitted = Classifiers::fit(&ftr, data.labels, eval)?;
    let classify = |f: &Tensor<2>, labels: &[usize]| fitted.accuracies(f, labels);
    let train = classify(&ftr, data.labels)?;
    let (mut test, mut head_acc) = (None, None);
    if let Some(tx) = data.test_x {
        let fte = features(tx)?;
        test = Some(classify(&fte, data.test_labels)?);
        if let Some((h, logit_scale)) = head {
            let w = h.weight.val().to_device(&device);
            let logits = fte.matmul(w).mul_scalar(logit_scale);
            let pred = redunet_core::host::to_vec(logits.argmax(1).float())?;
            let pred: Vec<usize> = pred.iter().map(|&p| p as usize).collect();
            head_acc = Some(accuracy(&pred, data.test_labels));
        }
    }
    Ok((train, test, head_acc))
}

/// Trains `net` (on the plain device of the data) by back-propagation on
/// `device.autodiff()`. Epoch 0 of the history is the network as given.
pub fn fit<M: FeatureNet>(
    net: M,
    cfg: &TrainConfig,
    data: &TrainData<'_>,
    eval: EvalSettings,
    mut checkpoints: CheckpointPlan<'_, M>,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Trained<M>> {
    cfg.validate()?;
    let device = data.x.device();
    let [m, _] = data.x.dims();
    if m != data.labels.len() {
        return Err(Error::LabelCount {
            expected: m,
            got: data.labels.len(),
        });
    }
    if let Some((index, &label)) = data
        .labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l >= data.num_classes)
    {
        return Err(Error::LabelOutOfRange {
            index,
            label,
            classes: data.num_classes,
        });
    }
    let augment = cfg.augmentation();
    let image = match (augment.is_identity(), data.image) {
        (true, _) => None,
        (false, Some(shape)) if shape.0 * shape.1 * shape.2 == data.x.dims()[1] => Some(shape),
        (false, _) => {
            return Err(Error::Parameter(
                "train.augment_rotation, augment_scale and augment_shift need image data".into(),
            ));
        }
    };
    let head = new_head(cfg, net.feature_dim(), data.num_classes, &device);
    let mut trainee = Trainee { net, head };
    let mut optim = optimizer(cfg);
    let mut history = Vec::new();
    let mut first_epoch = 0;
    if let Some(dir) = checkpoints.resume {
        let state = read_checkpoint_state(dir)?;
        state.check_resume(dir, cfg, &checkpoints.provenance)?;
        trainee = load_checkpoint_params(dir, trainee)?;
        let opt = dir.join("optimizer.bpk");
        if opt.is_file() {
            // burn-optim panics on some malformed records; the checksums
            // make that unreachable for damaged files, and this keeps a
            // forged one an error too.
            let (current, path) = (optim, &opt);
            let loaded =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || current.load(path)))
                    .map_err(|_| record_error(&opt, "malformed optimizer record"))?;
            optim = loaded.map_err(|e| record_error(&opt, e))?;
        }
        first_epoch = state.epoch;
        history = state.history;
    } else {
        let start = Instant::now();
        // The head is untrained (zero) before the first epoch.
        let (train, test, _) = evaluate(&trainee, data, eval, cfg.logit_scale)?;
        let rec = EpochRecord {
            epoch: 0,
            loss: None,
            lr: None,
            seconds: start.elapsed().as_secs_f64(),
            train: Some(train),
            test,
            test_head: None,
        };
        on_event(Event::Epoch(&rec));
        history.push(rec);
    }
    if cfg.epochs == 0 {
        return Ok(Trained { trainee, history });
    }
    let stepper = Stepper::new(cfg, data.num_classes, &device)?;
    let mut model = trainee.train();
    let x_all = data.x.clone();
    // Stepped once per epoch; a resumed run first steps past the epochs
    // done (the schedule is a function of the epoch alone).
    let mut schedule = cfg.scheduler()?;
    for _ in 0..first_epoch {
        schedule.step();
    }
    for epoch in first_epoch..cfg.epochs {
        let start = Instant::now();
        let lr = schedule.step().base();
        // One stream per epoch, so that a resumed run sees the batches an
        // uninterrupted one would.
        let mut rng =
            ChaCha8Rng::seed_from_u64(cfg.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
        let mut order: Vec<usize> = (0..m).collect();
        order.shuffle(&mut rng);
        let batches: Vec<&[usize]> = order
            .chunks(cfg.batch_size)
            .filter(|b| b.len() >= 2)
            .collect();
        let steps = batches.len();
        let mut total = 0.0;
        for (step, b) in batches.into_iter().enumerate() {
            let idx = Tensor::<1, Int>::from_data(
                TensorData::new(b.iter().map(|&i| i as i64).collect::<Vec<_>>(), [b.len()]),
                &device,
            );
            let mut x = x_all.clone().select(0, idx);
            if let Some(shape) = image {
                // Drawn from the epoch's stream after the shuffle, so a
                // resumed run warps the same way.
                let mut v = redunet_core::host::to_vec(x)?;
                augment.apply(&mut v, shape, &mut rng);
                x = Tensor::from_data(
                    TensorData::new(v, [b.len(), shape.0 * shape.1 * shape.2]),
                    &device,
                );
            }
            let labels: Vec<usize> = b.iter().map(|&i| data.labels[i]).collect();
            let loss;
            (model, loss) = stepper.step(model, &mut optim, x, &labels, lr)?;
            let value = redunet_core::host::to_vec(loss.clone().detach())?[0] as f64;
            if !value.is_finite() {
                return Err(Error::NonFinite(format!(
                    "training loss at epoch {} step {}",
                    epoch + 1,
                    step + 1
                )));
            }
            total += value;
            on_event(Event::Batch {
                epoch: epoch + 1,
                step: step + 1,
                steps,
                loss: value,
            });
        }
        let done = epoch + 1;
        let evaluate_now = done % cfg.eval_every == 0 || done == cfg.epochs;
        let (train, test, head) = if evaluate_now {
            let (a, b, c) = evaluate(&model.valid(), data, eval, cfg.logit_scale)?;
            (Some(a), b, c)
        } else {
            (None, None, None)
        };
        let rec = EpochRecord {
            epoch: done,
            loss: Some(total / steps.max(1) as f64),
            lr: Some(lr),
            seconds: start.elapsed().as_secs_f64(),
            train,
            test,
            test_head: head,
        };
        on_event(Event::Epoch(&rec));
        history.push(rec);
        let due = cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0;
        if let Some(dir) = checkpoints.dir
            && (due || done == cfg.epochs)
        {
            let state = CheckpointState {
                epoch: done,
                history: history.clone(),
                config: cfg.clone(),
                provenance: checkpoints.provenance.clone(),
            };
            let valid = model.valid();
            save_checkpoint(dir, &valid, Some(&optim), &state)?;
            if let Some(f) = checkpoints.on_checkpoint.as_mut() {
                f(&valid, &state)?;
            }
        }
    }
    Ok(Trained {
        trainee: model.valid(),
        history,
    })
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    fn config(schedule: Schedule, epochs: usize, warmup_epochs: usize) -> TrainConfig {
        serde_json::from_value(serde_json::json!({
            "epochs": epochs, "lr": 0.003, "batch_size": 10,
            "schedule": schedule, "warmup_epochs": warmup_epochs,
        }))
        .unwrap()
    }

    fn rates(cfg: &TrainConfig) -> Vec<f64> {
        let mut s = cfg.scheduler().unwrap();
        (0..cfg.epochs).map(|_| s.step().base()).collect()
    }

    /// burn-optim's schedulers give the closed forms the trainer used to
    /// compute by hand, bit for bit: a run's learning rates do not move.
    #[test]
    fn schedules_are_the_closed_forms_bit_for_bit() {
        for epochs in 1..=64 {
            for schedule in [Schedule::Constant, Schedule::Cosine, Schedule::Step] {
                let cfg = config(schedule, epochs, 0);
                let want: Vec<f64> = (0..epochs)
                    .map(|e| {
                        let t = e as f64 / epochs as f64;
                        match schedule {
                            Schedule::Cosine => {
                                cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
                            }
                            Schedule::Step if t >= 0.75 => cfg.lr * 0.01,
                            Schedule::Step if t >= 0.5 => cfg.lr * 0.1,
                            _ => cfg.lr,
                        }
                    })
                    .collect();
                assert_eq!(rates(&cfg), want, "{schedule:?} over {epochs} epochs");
            }
        }
    }

    #[test]
    fn linear_decay_and_warm_up() {
        let r = rates(&config(Schedule::Linear, 4, 0));
        let want = [0.003, 0.00225, 0.0015, 0.00075];
        assert!(
            r.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{r:?}"
        );
        // Three warm-up epochs to lr, then cosine over the remaining four.
        let r = rates(&config(Schedule::Cosine, 7, 3));
        let want = [0.00075, 0.0015, 0.00225, 0.003];
        assert!(
            r[..4].iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{r:?}"
        );
        assert!(r[4] < 0.003 && r[6] > 0.0 && r[6] < r[5], "{r:?}");
        // Refused: no epoch left to the schedule, a rate burn-optim's
        // schedules do not take.
        let mut c = config(Schedule::Cosine, 3, 3);
        assert!(c.validate().is_err());
        c.warmup_epochs = 0;
        c.lr = 2.0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("train.schedule"), "{e}");
    }
}
