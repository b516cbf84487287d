//! `redunet train` and `redunet eval`: back-propagation through a ReduNet
//! (initialised by forward construction or at random) or an MLP feature
//! extractor, with the `[train]` section of the configuration.

use super::config::{ModelKind, RunConfig};
use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use redunet_core::host::tensor;
use redunet_core::network::LayerRecord;
use redunet_core::{Memberships, VectorLayerConfig};
use redunet_data::Dataset;
use redunet_data::npy::write_atomic;
use redunet_train::mlp::Mlp;
use redunet_train::spectral::{LiftInit, SpectralReduNet};
use redunet_train::trainer::{
    Accuracies, CheckpointPlan, EpochRecord, EvalSettings, Event, Init, Objective, TrainConfig,
    TrainData, Trainee, corrupt_labels, evaluate, fit,
};
use redunet_train::vector::VectorReduNetModule;
use redunet_train::{Network, SavedModel};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Serialize)]
pub struct TrainAccuracy {
    pub train: Option<Accuracies>,
    pub test: Option<Accuracies>,
    /// Cross-entropy objective: the linear head's test accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_head: Option<f64>,
}

#[derive(Serialize)]
pub struct TrainSeconds {
    /// Forward construction or random initialisation.
    pub init: f64,
    /// Back-propagation epochs and their evaluations.
    pub train: f64,
}

#[derive(Serialize)]
pub struct TrainSummary {
    pub device: String,
    pub seconds: TrainSeconds,
    /// After the last epoch (or of the initial network when epochs = 0).
    pub accuracy: TrainAccuracy,
    /// Mean training loss per epoch (epochs 1…E).
    pub loss: Vec<f64>,
    pub history: Vec<EpochRecord>,
    /// Rates of the forward construction, when the network was built so.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub construction: Vec<LayerRecord>,
    /// Training labels replaced by `train.label_noise`.
    pub noisy_labels: usize,
    pub checkpoint: String,
    /// The trained network, standalone (`redunet transform`, `redunet eval`).
    pub model: String,
    pub data: super::report::DataSummary,
    pub warnings: Vec<String>,
    pub config: RunConfig,
}

fn train_section(cfg: &RunConfig) -> Result<&TrainConfig> {
    cfg.train
        .as_ref()
        .context("the configuration has no [train] section")
}

fn image_shape(ds: &Dataset) -> Result<(usize, usize, usize)> {
    match ds.sample_shape.as_slice() {
        [h, w] => Ok((*h, *w, 1)),
        [c, h, w] => Ok((*h, *w, *c)),
        s => bail!("conv2d needs images [H, W] or [C, H, W], got samples of shape {s:?}"),
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
    bar: &ProgressBar,
) -> Result<(Network, Vec<LayerRecord>)> {
    let t = train_section(cfg)?;
    let layer_cfg: VectorLayerConfig = cfg.model.layer_config();
    let layers = cfg.model.layers;
    let on_layer = |r: &LayerRecord| {
        bar.set_message(format!(
            "constructing: layer {} ΔR {:.4}",
            r.layer, r.delta_r
        ));
    };
    Ok(match (cfg.model.kind, t.init) {
        (ModelKind::Vector, Init::Forward) => {
            let (n, rec) = VectorReduNetModule::construct(x, pi, layers, &layer_cfg, on_layer)?;
            (Network::Vector(n), rec)
        }
        (ModelKind::Vector, Init::Random) => (
            Network::Vector(VectorReduNetModule::random(
                x.dims()[1],
                pi,
                layers,
                &layer_cfg,
                t.seed,
                device,
            )?),
            Vec::new(),
        ),
        (ModelKind::Conv2d, init) => {
            if cfg.polar.is_some() {
                bail!("model.kind = conv2d takes images; [polar] is for conv1d");
            }
            let shape = image_shape(train)?;
            let lift = cfg.lift.as_ref().map(|l| LiftInit {
                out_channels: l.out_channels,
                kernel_size: l.kernel_size,
                seed: l.seed,
            });
            match init {
                Init::Forward => {
                    let (n, rec) = SpectralReduNet::construct(
                        x, shape, lift, pi, layers, &layer_cfg, on_layer,
                    )?;
                    (Network::Spectral(n), rec)
                }
                Init::Random => (
                    Network::Spectral(SpectralReduNet::random(
                        shape, lift, pi, layers, &layer_cfg, t.seed, device,
                    )?),
                    Vec::new(),
                ),
            }
        }
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
        (ModelKind::Conv1d, _) => bail!(
            "redunet train supports model.kind = vector, conv2d or mlp (conv1d is not trainable yet)"
        ),
    })
}

struct Prepared {
    split: redunet_data::split::Split,
    labels: Vec<usize>,
    noisy: usize,
    x: Tensor<2>,
    test_x: Option<Tensor<2>>,
    pi: Memberships,
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
    EvalSettings {
        knn_k: cfg.eval.knn_k,
        n_comp: cfg.eval.n_comp.unwrap_or(10),
    }
}

/// The configuration's data on `device`, with the training labels that
/// `train.label_noise` corrupts (none without a `[train]` section).
fn prepare(cfg: &RunConfig, device: &Device) -> Result<Prepared> {
    let split = cfg.data.load(cfg.seed)?;
    let k = split.classes.len();
    let mut labels = split.train.labels.clone();
    let noisy = cfg.train.as_ref().map_or(0, |t| {
        corrupt_labels(&mut labels, k, t.label_noise, t.seed).len()
    });
    let flat = |ds: &Dataset| tensor(ds.features.clone(), [ds.len(), ds.dim()], device);
    let x = flat(&split.train);
    let test_x = (!split.test.is_empty()).then(|| flat(&split.test));
    let pi = Memberships::from_labels(&labels, k, device)?;
    Ok(Prepared {
        split,
        labels,
        noisy,
        x,
        test_x,
        pi,
    })
}

fn bar(quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn fmt_acc(a: &Option<Accuracies>) -> String {
    a.map_or("–".into(), |a| {
        format!("kNN {:.4} NS {:.4}", a.knn, a.nearest_subspace)
    })
}

fn run_fit(
    net: Network,
    t: &TrainConfig,
    data: &TrainData<'_>,
    eval: EvalSettings,
    plan: CheckpointPlan<'_>,
    bar: &ProgressBar,
    quiet: bool,
) -> Result<(Trainee<Network>, Vec<EpochRecord>)> {
    let ckpt = plan.dir.context("a checkpoint directory")?.to_path_buf();
    // The latest accuracy, shown beside the running loss.
    let last = std::cell::RefCell::new(String::new());
    let trained = fit(net, t, data, eval, plan, |e| match e {
        Event::Batch {
            epoch,
            step,
            steps,
            loss,
        } => {
            bar.set_length((t.epochs * steps) as u64);
            bar.set_position(((epoch - 1) * steps + step) as u64);
            bar.set_message(format!("epoch {epoch} loss {loss:.4} {}", last.borrow()));
        }
        Event::Epoch(r) => {
            if let Some(a) = r.test.or(r.train) {
                *last.borrow_mut() = format!(
                    "(last {} kNN {:.3} NS {:.3})",
                    if r.test.is_some() { "test" } else { "train" },
                    a.knn,
                    a.nearest_subspace
                );
            }
            if r.test.is_some() && !quiet {
                bar.suspend(|| {
                    eprintln!(
                        "epoch {}: loss {} test {}{}",
                        r.epoch,
                        r.loss.map_or("–".into(), |l| format!("{l:.4}")),
                        fmt_acc(&r.test),
                        r.test_head
                            .map_or(String::new(), |h| format!(" head {h:.4}"))
                    )
                });
            }
        }
    })?;
    if t.epochs == 0 {
        // No back-propagation: the initial network is the result; keep it
        // as the checkpoint so `redunet eval` can read it.
        let state = redunet_train::trainer::CheckpointState {
            epoch: 0,
            history: trained.history.clone(),
            config: t.clone(),
        };
        redunet_train::trainer::save_checkpoint(&ckpt, &trained.trainee, None, &state)?;
    }
    Ok((trained.trainee, trained.history))
}

/// `redunet train`.
pub fn train(
    cfg: &RunConfig,
    device: &Device,
    device_name: &str,
    out: &Path,
    quiet: bool,
    resume: Option<&Path>,
) -> Result<TrainSummary> {
    let t = train_section(cfg)?.clone();
    let p = prepare(cfg, device)?;
    for w in &p.split.warnings {
        eprintln!("warning: {w}");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let bar = bar(quiet);
    if !quiet {
        eprintln!(
            "data: {:?}, {} classes, {} train / {} test, model {:?}, init {:?}, objective {:?}, {} epochs, device {device_name}",
            cfg.data.source,
            p.split.classes.len(),
            p.split.train.len(),
            p.split.test.len(),
            cfg.model.kind,
            t.init,
            t.objective,
            t.epochs
        );
    }
    let start = Instant::now();
    let (net, construction) = build(cfg, &p.split.train, &p.x, &p.pi, device, &bar)?;
    let init_s = start.elapsed().as_secs_f64();
    let (data, eval) = (p.data(), eval_settings(cfg));
    let ckpt = out.join("checkpoint");
    let plan = || CheckpointPlan {
        dir: Some(&ckpt),
        resume,
    };
    let start = Instant::now();
    let (trainee, history) = run_fit(net, &t, &data, eval, plan(), &bar, quiet)?;
    bar.finish_and_clear();
    SavedModel {
        trainee,
        logit_scale: (t.objective == Objective::CrossEntropy).then_some(t.logit_scale),
        meta: serde_json::to_value(cfg)?,
    }
    .save(&out.join("model"))?;
    let train_s = start.elapsed().as_secs_f64();
    let last = history
        .iter()
        .rev()
        .find(|r| r.train.is_some())
        .context("no evaluation on record")?;
    let summary = TrainSummary {
        device: device_name.to_string(),
        seconds: TrainSeconds {
            init: init_s,
            train: train_s,
        },
        accuracy: TrainAccuracy {
            train: last.train,
            test: last.test,
            test_head: last.test_head,
        },
        loss: history.iter().filter_map(|r| r.loss).collect(),
        history,
        construction,
        noisy_labels: p.noisy,
        checkpoint: "checkpoint".into(),
        model: "model".into(),
        data: super::report::DataSummary {
            source: format!("{:?}", cfg.data.source),
            classes: p.split.classes.clone(),
            train: p.split.train.len(),
            test: p.split.test.len(),
            dim: p.split.train.dim(),
        },
        warnings: p.split.warnings.clone(),
        config: cfg.clone(),
    };
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    Ok(summary)
}

pub fn print_summary(s: &TrainSummary, out: &Path) {
    println!(
        "trained {:?} ({:?} init, {:?}) on {} — device {}",
        s.config.model.kind,
        s.config.train.as_ref().map(|t| t.init),
        s.config.train.as_ref().map(|t| t.objective),
        s.data.source,
        s.device
    );
    println!(
        "  time: init {:.1} s, training {:.1} s",
        s.seconds.init, s.seconds.train
    );
    println!("  train accuracy: {}", fmt_acc(&s.accuracy.train));
    println!("  test accuracy:  {}", fmt_acc(&s.accuracy.test));
    if let Some(h) = s.accuracy.test_head {
        println!("  test accuracy of the linear head: {h:.4}");
    }
    println!("  results in {}", out.display());
}

/// `redunet eval`: a saved model (`OUT/model` of `redunet train` or `redunet
/// run`) evaluated on the configuration's data, as the run evaluated it: kNN
/// and nearest subspace against the training features (with the training
/// labels `train.label_noise` corrupts), and the head on the test set.
pub fn eval(cfg: &RunConfig, model_dir: &Path, device: &Device) -> Result<serde_json::Value> {
    let model = SavedModel::load(model_dir, device)?;
    let p = prepare(cfg, device)?;
    let (train, test, head) = evaluate(
        &model.trainee,
        &p.data(),
        eval_settings(cfg),
        model.logit_scale.unwrap_or(1.0),
    )?;
    Ok(serde_json::json!({
        "accuracy": { "train": train, "test": test, "test_head": head }
    }))
}
