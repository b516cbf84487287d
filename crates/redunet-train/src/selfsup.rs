//! Self-supervised MCR² (the lectures' "learning representation to
//! cluster"): no labels. Each batch draws `images` images and warps each of
//! them `views` times; the views of one image form one class of the MCR²
//! loss. Maximising ΔR then spreads the batch's images apart (R) while it
//! pulls every image's views together (R_c): the features learn to ignore
//! the warps and to keep what tells images apart.

use crate::augment::Augmentation;
use crate::loss::Mcr2LossConfig;
use crate::trainer::FeatureNet;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use redunet_core::host::to_vec;
use redunet_core::{Error, Memberships, Result};
use serde::{Deserialize, Serialize};

fn default_images() -> usize {
    20
}
fn default_views() -> usize {
    50
}
fn default_eps_sq() -> f64 {
    0.5
}
fn default_lr() -> f64 {
    1e-3
}
// The warps of `configs/cluster-mnist.toml`: on the built-in MNIST, 6
// epochs, k-means on the features went 0.64 → 0.74 from (15°, 0.15, 3 px)
// to (25°, 0.2, 5 px), and no further at (30°, 0.25, 6 px).
fn default_rotation() -> f64 {
    25.0
}
fn default_scale() -> f64 {
    0.2
}
fn default_shift() -> f64 {
    5.0
}

/// How a feature extractor is trained without labels (the `[selfsup]`
/// settings of a clustering configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfSupervisedConfig {
    /// Images per batch, k (each its own class; the lectures use 20).
    #[serde(default = "default_images")]
    pub images: usize,
    /// Warped views of each image per batch, n (the lectures use 50).
    #[serde(default = "default_views")]
    pub views: usize,
    /// ε² of the loss (the lectures use 0.5).
    #[serde(default = "default_eps_sq")]
    pub eps_sq: f64,
    /// Passes over the images (one pass: every image in one batch).
    pub epochs: usize,
    /// Adam's learning rate, cosine-annealed to 0 over the epochs.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Adam's weight decay (0: none).
    #[serde(default)]
    pub weight_decay: f64,
    /// Largest rotation of a view, in degrees.
    #[serde(default = "default_rotation")]
    pub rotation: f64,
    /// Largest relative change of scale of a view.
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Largest translation of a view along each axis, in pixels.
    #[serde(default = "default_shift")]
    pub shift: f64,
    /// Seeds the batches and the warps.
    #[serde(default)]
    pub seed: u64,
}

impl SelfSupervisedConfig {
    /// The defaults of the lectures with `epochs` passes.
    pub fn new(epochs: usize) -> Self {
        Self {
            images: default_images(),
            views: default_views(),
            eps_sq: default_eps_sq(),
            epochs,
            lr: default_lr(),
            weight_decay: 0.0,
            rotation: default_rotation(),
            scale: default_scale(),
            shift: default_shift(),
            seed: 0,
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Parameter(m));
        if self.images < 2 {
            return bad(format!(
                "selfsup.images must be at least 2 (a batch needs two classes), got {}",
                self.images
            ));
        }
        if self.views < 2 {
            return bad(format!(
                "selfsup.views must be at least 2, got {}",
                self.views
            ));
        }
        if self
            .images
            .checked_mul(self.views)
            .is_none_or(|b| b > 1 << 20)
        {
            return bad("selfsup.images × selfsup.views is larger than 2^20".into());
        }
        if !(self.eps_sq.is_finite() && self.eps_sq > 0.0) {
            return bad(format!("selfsup.eps_sq must be > 0, got {}", self.eps_sq));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            return bad(format!("selfsup.lr must be in (0, 1], got {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "selfsup.weight_decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if !(self.rotation.is_finite() && (0.0..=180.0).contains(&self.rotation)) {
            return bad(format!(
                "selfsup.rotation must be in [0, 180] degrees, got {}",
                self.rotation
            ));
        }
        if !(self.scale.is_finite() && (0.0..0.5).contains(&self.scale)) {
            return bad(format!(
                "selfsup.scale must be in [0, 0.5), got {}",
                self.scale
            ));
        }
        if !(self.shift.is_finite() && self.shift >= 0.0) {
            return bad(format!("selfsup.shift must be ≥ 0, got {}", self.shift));
        }
        Ok(())
    }

    /// The warps that make the views.
    pub fn augmentation(&self) -> Augmentation {
        Augmentation {
            rotation: self.rotation,
            scale: self.scale,
            shift: self.shift,
        }
    }
}

/// Progress of [`fit_self_supervised`].
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// 1-based epoch.
    pub epoch: usize,
    /// 1-based step within the epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// `−ΔR` of the batch (nats).
    pub loss: f64,
}

/// Trains `net` without labels on the images `x` (`[m, C·H·W]`, rows
/// `[C, H, W]` of shape `image` = (H, W, C)) by self-supervised MCR², on
/// the autodiff version of `x`'s device. Returns the trained network and
/// each epoch's mean loss.
///
/// Images are drawn without replacement within an epoch, `images` at a
/// time; a last group smaller than two images is skipped.
pub fn fit_self_supervised<M>(
    net: M,
    x: &Tensor<2>,
    image: (usize, usize, usize),
    cfg: &SelfSupervisedConfig,
    mut on_step: impl FnMut(Step),
) -> Result<(M, Vec<f64>)>
where
    M: FeatureNet,
{
    cfg.validate()?;
    let [m, n] = x.dims();
    let (h, w, c) = image;
    if h * w * c != n {
        return Err(Error::Shape(format!(
            "images of {h}×{w}×{c} need rows of {}, got [{m}, {n}]",
            h * w * c
        )));
    }
    if m < 2 {
        return Err(Error::Parameter(format!(
            "self-supervised training needs at least 2 images, got {m}"
        )));
    }
    redunet_core::host::check_finite(x, "training images")?;
    let device = x.device();
    let ad = device.clone().autodiff();
    let pixels = to_vec(x.clone())?;
    let loss = Mcr2LossConfig::new()
        .with_eps_sq(cfg.eps_sq)
        .with_num_classes(Some(cfg.images))
        .try_init()?;
    let decay = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    let mut optim = AdamConfig::new().with_weight_decay(decay).init();
    let augment = cfg.augmentation();
    let mut model = net.train();
    let mut history = Vec::with_capacity(cfg.epochs);
    let groups = m.div_ceil(cfg.images);
    let steps = groups - usize::from(m % cfg.images == 1);
    let total = (cfg.epochs * steps).max(1);
    let mut schedule = CosineAnnealingLrSchedulerConfig::new(cfg.lr, total)
        .init()
        .map_err(|e| Error::Parameter(format!("selfsup.lr = {}: {e}", cfg.lr)))?;
    for epoch in 0..cfg.epochs {
        let mut rng =
            ChaCha8Rng::seed_from_u64(cfg.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
        let mut order: Vec<usize> = (0..m).collect();
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for (step, group) in order
            .chunks(cfg.images)
            .filter(|g| g.len() >= 2)
            .enumerate()
        {
            let b = group.len() * cfg.views;
            let mut batch = Vec::with_capacity(b * n);
            let mut labels = Vec::with_capacity(b);
            for (class, &i) in group.iter().enumerate() {
                for _ in 0..cfg.views {
                    batch.extend_from_slice(&pixels[i * n..(i + 1) * n]);
                    labels.push(class);
                }
            }
            augment.apply(&mut batch, image, &mut rng);
            let xb = Tensor::<2>::from_data(TensorData::new(batch, [b, n]), &ad);
            let pi = Memberships::from_labels(&labels, cfg.images, &ad)?;
            let out = loss.try_forward(&model.features(xb), &pi)?;
            let value = to_vec(out.loss.clone().detach())?[0] as f64;
            if !value.is_finite() {
                return Err(Error::NonFinite(format!(
                    "self-supervised loss at epoch {} step {}",
                    epoch + 1,
                    step + 1
                )));
            }
            sum += value;
            on_step(Step {
                epoch: epoch + 1,
                step: step + 1,
                steps,
                loss: value,
            });
            // Cosine annealing per step, to 0 at the end of the last epoch.
            let lr = schedule.step().base();
            let grads = GradientsParams::from_grads(out.loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        history.push(sum / steps.max(1) as f64);
    }
    Ok((model.valid(), history))
}
