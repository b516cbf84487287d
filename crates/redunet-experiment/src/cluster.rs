//! `redunet cluster`: clustering without labels (labels, where the data have
//! them, only score the result).
//!
//! - `method = "coding-length"`: clustering by compression (TPAMI 2007) of
//!   the samples as given, optionally swept over ε² to show its phase
//!   transition.
//! - `method = "mcr2"`: an MLP feature extractor trained by self-supervised
//!   MCR² (each image's warped views a class), then its features clustered:
//!   k-means for a start, then coordinate descent on the coding length of
//!   the partition (min over memberships of the compression term). k-means
//!   on the raw pixels of the same images is reported beside it.

use crate::budget::{Estimate, Part};
use crate::config::{DataConfig, ModelConfig, ModelKind};
use crate::plan::Plan;
use crate::report::DataSummary;
use burn::tensor::Device;
use redunet_core::cluster::{CodingLengthClustering, CodingLengthDescent, Scores, scores};
use redunet_core::host::tensor;
use redunet_core::kmeans::KMeans;
use redunet_core::{Error, Result};
use redunet_data::memory::{bytes, human};
use redunet_train::mlp::Mlp;
use redunet_train::selfsup::{SelfSupervisedConfig, Step, fit_self_supervised};
use redunet_train::trainer::{FeatureNet, Trainee};
use redunet_train::{Network, SavedModel};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// How the samples are clustered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterMethod {
    /// Clustering by compression of the samples as given.
    CodingLength,
    /// Self-supervised MCR² features, then the coding length of the
    /// partition minimised over memberships.
    Mcr2,
}

fn default_passes() -> usize {
    30
}

/// The `[cluster]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The method.
    pub method: ClusterMethod,
    /// ε² of the coding lengths the clustering minimises.
    pub eps_sq: f64,
    /// Number of groups: where merging stops (coding-length; optional) or
    /// the groups of the features (mcr2; required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// coding-length: also cluster at each of these ε² (without `k`) and
    /// report the number of groups and the coding length at each: the
    /// phase transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Vec<f64>>,
    /// mcr2: most passes of the descent on the coding length.
    #[serde(default = "default_passes")]
    pub passes: usize,
}

/// A clustering configuration: `[data]` as for `redunet run`, `[cluster]`,
/// and for `method = "mcr2"` the feature extractor (`[model]`, an MLP) and
/// its self-supervised training (`[selfsup]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRunConfig {
    /// Seeds synthetic data, the network's initialisation and k-means.
    #[serde(default)]
    pub seed: u64,
    /// The samples: the training split is clustered.
    pub data: DataConfig,
    /// The clustering.
    pub cluster: ClusterConfig,
    /// mcr2: the feature extractor (`kind = "mlp"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    /// mcr2: its training without labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selfsup: Option<SelfSupervisedConfig>,
}

impl ClusterRunConfig {
    /// Checks every section and their combination.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Parameter(m));
        self.data.validate_labels(false)?;
        if self.data.test_per_class.is_some() || self.data.test_x.is_some() {
            return bad(
                "clustering uses the training split only; remove data.test_per_class / \
                 data.test_x"
                    .into(),
            );
        }
        let c = &self.cluster;
        if !(c.eps_sq.is_finite() && c.eps_sq > 0.0) {
            return bad(format!(
                "cluster.eps_sq = {} must be finite and > 0",
                c.eps_sq
            ));
        }
        if c.k == Some(0) {
            return bad("cluster.k must be at least 1".into());
        }
        if let Some(s) = &c.sweep {
            if s.is_empty() || s.len() > 100 {
                return bad("cluster.sweep must hold 1 to 100 values of ε²".into());
            }
            if let Some(e) = s.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
                return bad(format!("cluster.sweep: ε² = {e} must be finite and > 0"));
            }
        }
        match c.method {
            ClusterMethod::CodingLength => {
                if self.model.is_some() || self.selfsup.is_some() {
                    return bad("[model] and [selfsup] are for cluster.method = \"mcr2\"".into());
                }
            }
            ClusterMethod::Mcr2 => {
                if c.k.is_none() {
                    return bad("cluster.method = \"mcr2\" needs cluster.k".into());
                }
                if c.sweep.is_some() {
                    return bad("cluster.sweep is for cluster.method = \"coding-length\"".into());
                }
                if c.passes == 0 {
                    return bad("cluster.passes must be at least 1".into());
                }
                let Some(model) = &self.model else {
                    return bad("cluster.method = \"mcr2\" needs a [model] (kind = \"mlp\")".into());
                };
                if model.kind != ModelKind::Mlp {
                    return bad(format!(
                        "cluster.method = \"mcr2\" trains an MLP; model.kind = {:?}",
                        model.kind
                    ));
                }
                if model.width == Some(0) || model.out_dim == Some(0) || model.layers > 64 {
                    return bad(
                        "model.width and model.out_dim must be ≥ 1, model.layers ≤ 64".into(),
                    );
                }
                let Some(s) = &self.selfsup else {
                    return bad("cluster.method = \"mcr2\" needs a [selfsup] section".into());
                };
                s.validate()?;
            }
        }
        Ok(())
    }
}

/// The clustering part of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct ClusteringSummary {
    /// The method.
    pub method: ClusterMethod,
    /// ε².
    pub eps_sq: f64,
    /// Number of groups found.
    pub clusters: usize,
    /// `L^c` of the partition (bits), of the samples clustered (the
    /// features for mcr2).
    pub coding_length: f64,
    /// Clustering accuracy (best one-to-one matching of groups to classes;
    /// data with labels only, as the next two).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc: Option<f64>,
    /// Normalised mutual information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nmi: Option<f64>,
    /// Adjusted Rand index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ari: Option<f64>,
    /// The scores on the subspaces' own samples, without the outliers
    /// (synthetic subspaces with outliers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inliers: Option<Scores>,
}

/// One point of the phase transition.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SweepPoint {
    /// ε².
    pub eps_sq: f64,
    /// Groups found.
    pub clusters: usize,
    /// `L^c`, bits.
    pub coding_length: f64,
    /// Adjusted Rand index against the labels (data with labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ari: Option<f64>,
}

/// What self-supervised training and the stages before the final
/// clustering gave (mcr2).
#[derive(Debug, Clone, Serialize)]
pub struct Mcr2Stages {
    /// Mean `−ΔR` per epoch of the self-supervised training (nats).
    pub loss: Vec<f64>,
    /// k-means on the features, the descent's start (data with labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kmeans_features: Option<Scores>,
    /// Samples moved in each pass of the descent.
    pub moved: Vec<usize>,
    /// The trained feature extractor (`redunet transform`), relative to the
    /// output (none with `model.save = false`).
    pub model: Option<String>,
}

/// Wall-clock seconds.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSeconds {
    /// Self-supervised training (mcr2).
    pub train: f64,
    /// The clustering (sweep included).
    pub cluster: f64,
    /// The k-means baseline.
    pub baseline: f64,
}

/// What `redunet cluster` reports (`summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    /// The device name.
    pub device: String,
    /// Timings.
    pub seconds: ClusterSeconds,
    /// The result.
    pub clustering: ClusteringSummary,
    /// k-means with the same number of groups on the samples as given (raw
    /// pixels for images), 10 restarts (data with labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_kmeans: Option<Scores>,
    /// The phase transition (coding-length with `cluster.sweep`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepPoint>,
    /// mcr2: training and intermediate results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcr2: Option<Mcr2Stages>,
    /// The data.
    pub data: DataSummary,
    /// Warnings of the data selection.
    pub warnings: Vec<String>,
    /// The configuration, as run.
    pub config: ClusterRunConfig,
}

/// What the plots are drawn from.
#[derive(Debug, Clone)]
pub struct ClusterOutput {
    /// The summary.
    pub summary: ClusterSummary,
    /// Group of every sample, in input order.
    pub assignment: Vec<usize>,
    /// The features clustered (rows of `dim`), for the heat map.
    pub features: Vec<f32>,
    /// Their dimension.
    pub dim: usize,
}

/// Progress of a clustering run.
pub trait ClusterProgress {
    /// One line about the data and method, before the work.
    fn started(&mut self, _description: &str) {}
    /// A warning of the data selection.
    fn warning(&mut self, _message: &str) {}
    /// A step of self-supervised training.
    fn step(&mut self, _step: Step) {}
    /// A stage finished (its name).
    fn stage(&mut self, _name: &str) {}
}

impl ClusterProgress for crate::report::Silent {}

/// Clusters the configuration's data on `device` and writes into `out`
/// (a staging directory) `clusters.npy`, `summary.json` and, for mcr2, the
/// trained feature extractor `model/`.
pub fn cluster(
    cfg: &ClusterRunConfig,
    device: &Device,
    device_name: &str,
    out: &Path,
    progress: &mut dyn ClusterProgress,
) -> Result<ClusterOutput> {
    let Checked {
        split, labelled, k, ..
    } = checked(cfg, out)?;
    let score = |a: &[usize]| -> Result<Option<Scores>> {
        labelled.then(|| scores(a, &split.train.labels)).transpose()
    };
    for w in &split.warnings {
        progress.warning(w);
    }
    let data = &split.train;
    let labels = &data.labels;
    let m = data.len();
    let k_classes = split.classes.len();
    progress.started(&format!(
        "data: {:?}, {m} samples of dimension {}, {k_classes} classes; method {:?}, ε² {}, device {device_name}",
        cfg.data.source,
        data.dim(),
        cfg.cluster.method,
        cfg.cluster.eps_sq
    ));
    let x = tensor(data.features.clone(), [m, data.dim()], device);
    let t = Instant::now();
    let baseline_kmeans = if labelled && k > 0 {
        let baseline = KMeans {
            seed: cfg.seed,
            ..KMeans::new(k)
        }
        .fit(&x)?;
        progress.stage("k-means baseline");
        score(&baseline.assignment)?
    } else {
        None
    };
    let baseline_s = t.elapsed().as_secs_f64();
    // Outliers of synthetic subspaces are the last class.
    let inlier_mask = (cfg.data.source == redunet_data::source::Source::Subspaces
        && cfg.data.outliers.unwrap_or(0) > 0)
        .then(|| {
            let last = k_classes - 1;
            labels.iter().map(|&l| l != last).collect::<Vec<bool>>()
        });
    let (assignment, coding_length, sweep, mcr2, features, train_s, cluster_s) =
        match cfg.cluster.method {
            ClusterMethod::CodingLength => {
                let t = Instant::now();
                let c = CodingLengthClustering {
                    eps_sq: cfg.cluster.eps_sq,
                    k: cfg.cluster.k,
                }
                .fit(&x)?;
                progress.stage("clustering by compression");
                let mut sweep = Vec::new();
                for &eps_sq in cfg.cluster.sweep.as_deref().unwrap_or(&[]) {
                    let s = CodingLengthClustering { eps_sq, k: None }.fit(&x)?;
                    sweep.push(SweepPoint {
                        eps_sq,
                        clusters: s.clusters,
                        coding_length: s.coding_length,
                        ari: score(&s.assignment)?.map(|s| s.ari),
                    });
                    progress.stage(&format!("ε² = {eps_sq}: {} groups", s.clusters));
                }
                let secs = t.elapsed().as_secs_f64();
                let f = data.features.clone();
                (c.assignment, c.coding_length, sweep, None, f, 0.0, secs)
            }
            ClusterMethod::Mcr2 => {
                let (model, selfsup) = (
                    cfg.model.as_ref().expect("validated"),
                    cfg.selfsup.as_ref().expect("validated"),
                );
                let image = crate::train::image_shape(data)?;
                let net = Mlp::new(
                    data.dim(),
                    model.layers,
                    model.width.unwrap_or(MLP_WIDTH),
                    model.out_dim.unwrap_or(MLP_OUT),
                    cfg.seed,
                    device,
                );
                let t = Instant::now();
                let (net, loss) =
                    fit_self_supervised(net, &x, image, selfsup, |s| progress.step(s))?;
                let train_s = t.elapsed().as_secs_f64();
                let t = Instant::now();
                let f = net.features_eval(&x, device)?;
                let start = KMeans {
                    seed: cfg.seed,
                    ..KMeans::new(k)
                }
                .fit(&f)?;
                let kmeans_features = score(&start.assignment)?;
                progress.stage("k-means on the features");
                let d = CodingLengthDescent {
                    eps_sq: cfg.cluster.eps_sq,
                    passes: cfg.cluster.passes,
                }
                .fit(&f, &start.assignment)?;
                progress.stage("descent on the coding length");
                let cluster_s = t.elapsed().as_secs_f64();
                if model.save {
                    SavedModel {
                        trainee: Trainee {
                            net: Network::Mlp(net),
                            head: None,
                        },
                        logit_scale: None,
                        meta: serde_json::to_value(cfg).expect("configurations serialise"),
                    }
                    .save(&out.join("model"))?;
                }
                let stages = Mcr2Stages {
                    loss,
                    kmeans_features,
                    moved: d.moved,
                    model: model.save.then(|| "model".into()),
                };
                let features = redunet_core::host::to_vec(f)?;
                (
                    d.assignment,
                    d.coding_length,
                    Vec::new(),
                    Some(stages),
                    features,
                    train_s,
                    cluster_s,
                )
            }
        };
    let s = score(&assignment)?;
    let inliers = match &inlier_mask {
        Some(mask) => {
            let pick = |v: &[usize]| -> Vec<usize> {
                v.iter()
                    .zip(mask)
                    .filter(|(_, k)| **k)
                    .map(|(a, _)| *a)
                    .collect()
            };
            Some(scores(&pick(&assignment), &pick(labels))?)
        }
        None => None,
    };
    let clusters = assignment.iter().max().map_or(0, |&g| g + 1);
    let ids: Vec<i64> = assignment.iter().map(|&g| g as i64).collect();
    redunet_data::npy::write_npy_i64(&out.join("clusters.npy"), &[m], &ids)?;
    let dim = features.len() / m.max(1);
    let summary = ClusterSummary {
        device: device_name.to_string(),
        seconds: ClusterSeconds {
            train: train_s,
            cluster: cluster_s,
            baseline: baseline_s,
        },
        clustering: ClusteringSummary {
            method: cfg.cluster.method,
            eps_sq: cfg.cluster.eps_sq,
            clusters,
            coding_length,
            acc: s.map(|s| s.acc),
            nmi: s.map(|s| s.nmi),
            ari: s.map(|s| s.ari),
            inliers,
        },
        baseline_kmeans,
        sweep,
        mcr2,
        data: DataSummary {
            source: format!("{:?}", cfg.data.source),
            classes: split.classes.clone(),
            train: m,
            test: 0,
            dim: data.dim(),
        },
        warnings: split.warnings.clone(),
        config: cfg.clone(),
    };
    let json = serde_json::to_vec_pretty(&summary).expect("summaries serialise");
    redunet_data::npy::write_atomic(&out.join("summary.json"), &json)?;
    Ok(ClusterOutput {
        summary,
        assignment,
        features,
        dim,
    })
}

/// The MLP's hidden width and feature dimension when `[model]` leaves them
/// out.
const MLP_WIDTH: usize = 1024;
const MLP_OUT: usize = 128;

/// What a clustering has checked before it allocates.
struct Checked {
    split: redunet_data::split::Split,
    labelled: bool,
    /// The number of groups (0: none given and no labels to count).
    k: usize,
    estimate: Estimate,
    /// Bytes of the saved feature extractor (mcr2 with `model.save`).
    model_bytes: Option<u64>,
}

/// Every check `redunet cluster` makes before its first allocation: the
/// configuration, the data, the number of groups against the samples, the
/// samples' shape for mcr2's warped views, and the memory and disk the run
/// will take against what the machine and the disk of `out` have.
fn checked(cfg: &ClusterRunConfig, out: &Path) -> Result<Checked> {
    cfg.validate()?;
    let (split, labelled) = cfg.data.load_unlabelled(cfg.seed)?;
    let m = split.train.len();
    let dim = split.train.dim();
    let k = match (cfg.cluster.k, labelled) {
        (Some(k), _) => k,
        (None, true) => split.classes.len(),
        // No labels and no k: k-means has nothing to go by.
        (None, false) => 0,
    };
    if k > m {
        return Err(Error::Parameter(format!(
            "cluster.k = {k} groups of {m} samples"
        )));
    }
    let mut memory = vec![Part {
        what: "the samples (host and device copies)",
        bytes: bytes(&[m, dim, 2], 4),
        hint: "lower data.train_per_class",
    }];
    let mut model_bytes = None;
    let mut disk = vec![Part {
        what: "clusters.npy",
        bytes: bytes(&[m], 8),
        hint: "lower data.train_per_class",
    }];
    match cfg.cluster.method {
        ClusterMethod::CodingLength => {
            if m > redunet_core::cluster::MAX_SAMPLES {
                return Err(Error::Parameter(format!(
                    "{m} samples: clustering by compression takes at most {} (lower \
                     data.train_per_class)",
                    redunet_core::cluster::MAX_SAMPLES
                )));
            }
            memory.push(Part {
                what: "the table of the coding lengths of all pairs",
                bytes: bytes(&[m, m], 8),
                hint: "lower data.train_per_class",
            });
        }
        ClusterMethod::Mcr2 => {
            crate::train::image_shape(&split.train)?;
            let model = cfg.model.as_ref().expect("validated");
            let selfsup = cfg.selfsup.as_ref().expect("validated");
            let width = model.width.unwrap_or(MLP_WIDTH);
            let out_dim = model.out_dim.unwrap_or(MLP_OUT);
            let params = crate::budget::mlp_bytes(dim, model.layers, width, out_dim);
            memory.push(Part {
                what: "the MLP's weights, gradients and optimiser state",
                bytes: params.saturating_mul(4),
                hint: "lower model.width, model.out_dim or model.layers",
            });
            let batch = selfsup.images.saturating_mul(selfsup.views);
            memory.push(Part {
                what: "the activations of a batch of views",
                bytes: bytes(&[batch, dim.max(width), model.layers + 1, 3], 4),
                hint: "lower selfsup.images, selfsup.views or model.width",
            });
            memory.push(Part {
                what: "the features of every sample",
                bytes: bytes(&[m, out_dim, 3], 4),
                hint: "lower data.train_per_class or model.out_dim",
            });
            if model.save {
                model_bytes = Some(params);
                disk.push(Part {
                    what: "the feature extractor (model/)",
                    bytes: params,
                    hint: "set model.save = false, or lower model.width",
                });
            }
        }
    }
    let estimate = Estimate { memory, disk };
    estimate.check(out)?;
    Ok(Checked {
        split,
        labelled,
        k,
        estimate,
        model_bytes,
    })
}

/// The plan of [`cluster`], writing into `out`: every check the run makes
/// before it starts, nothing trained or clustered. The error the run would
/// give where it would refuse.
pub fn plan(cfg: &ClusterRunConfig, out: &Path) -> Result<Plan> {
    let Checked {
        split,
        labelled,
        k,
        estimate,
        model_bytes,
    } = checked(cfg, out)?;
    let c = &cfg.cluster;
    let mut model = vec![format!(
        "{:?}, ε² {}, {}",
        c.method,
        c.eps_sq,
        match c.k {
            Some(k) => format!("{k} groups"),
            None if labelled => format!("merging down to at most {k} groups"),
            None => "merging while the coding length falls".into(),
        }
    )];
    if let Some(s) = &c.sweep {
        model.push(format!("phase transition over ε² = {s:?}"));
    }
    if let (Some(m), Some(s)) = (&cfg.model, &cfg.selfsup) {
        model.push(format!(
            "MLP of {} hidden layers of {}, {} features; self-supervised MCR², {} epochs of \
             {} images × {} views; then k-means and at most {} passes of the descent",
            m.layers,
            m.width.unwrap_or(MLP_WIDTH),
            m.out_dim.unwrap_or(MLP_OUT),
            s.epochs,
            s.images,
            s.views,
            c.passes
        ));
    }
    if !labelled {
        model.push("no labels: the result is not scored".into());
    }
    let mut outputs = vec!["summary.json, clusters.npy and the plots".to_string()];
    if let Some(b) = model_bytes {
        outputs.push(format!("model/: the feature extractor, {}", human(b)));
    }
    Ok(Plan {
        job: "clustering without labels (`redunet cluster`)".into(),
        data: crate::plan::data_lines(cfg.data.source, &split),
        model,
        outputs,
        estimate,
        warnings: split.warnings,
    })
}
