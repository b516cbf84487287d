//! What an experiment reports: the summary written to `summary.json` and
//! `rates.csv`, the features its plots are drawn from, and the [`Progress`]
//! callbacks through which a caller follows it.

use crate::config::RunConfig;
use redunet_core::Result;
use redunet_core::network::LayerRecord;
use redunet_data::npy::write_atomic;
use serde::Serialize;
use std::path::Path;

pub use redunet_train::trainer::{Accuracies, Classifiers, EpochRecord, Event};

/// How a caller follows an experiment; every method does nothing by
/// default.
pub trait Progress {
    /// A one-line description of the data and the model, before the work.
    fn started(&mut self, _description: &str) {}
    /// Something the caller should know (an empty class skipped, …).
    fn warning(&mut self, _message: &str) {}
    /// The rates of stage `record.layer` of a construction (0: the input).
    fn layer(&mut self, _record: &LayerRecord) {}
    /// A training batch or epoch.
    fn training(&mut self, _event: &Event<'_>) {}
}

/// Follows nothing.
pub struct Silent;
impl Progress for Silent {}

/// Host copies of features for plots: rows of `dim` values.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// Values per feature row.
    pub dim: usize,
    /// Normalised input features (2D/3D data only).
    pub input: Option<Vec<f32>>,
    /// Training features (the first `eval.heatmap_per_class` of each class for invariant runs).
    pub train: Vec<f32>,
    /// Their labels.
    pub train_labels: Vec<usize>,
    /// Test features, when plotted.
    pub test: Option<Vec<f32>>,
    /// Test labels.
    pub test_labels: Vec<usize>,
    /// Shifted copies of a few test samples, for the invariance heat maps.
    pub shifts: Option<ShiftCopies>,
}

/// Shifted copies of a few test samples, before and after the network.
#[derive(Debug, Clone, Default)]
pub struct ShiftCopies {
    /// The copies before the network (after the front end).
    pub before: Vec<f32>,
    /// The copies after the network.
    pub after: Vec<f32>,
    /// The sample each row is a copy of (its rank among the few).
    pub owner: Vec<usize>,
    /// Copies per sample.
    pub copies: usize,
}

#[derive(Debug, Clone, Serialize)]
/// Wall-clock seconds of a run.
pub struct Seconds {
    /// Construction of all layers.
    pub construct: f64,
    /// Construction per layer.
    pub per_layer: f64,
    /// Evaluation (features of the evaluation sets and the classifiers).
    pub evaluate: f64,
}

#[derive(Debug, Clone, Serialize)]
/// Accuracies of a run.
pub struct AccuracyBlock {
    /// On the training features (unlabelled forward pass).
    pub train: Accuracies,
    /// On the test features.
    pub test: Option<Accuracies>,
    /// The test samples under every cyclic shift of the stride grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_all_shifts: Option<Accuracies>,
}

#[derive(Debug, Clone, Serialize)]
/// What the data of a run were.
pub struct DataSummary {
    /// The `data.source`.
    pub source: String,
    /// The original labels of the classes, in order.
    pub classes: Vec<usize>,
    /// Training samples.
    pub train: usize,
    /// Test samples.
    pub test: usize,
    /// Values per sample.
    pub dim: usize,
}

#[derive(Debug, Clone, Serialize)]
/// What `redunet run` reports (`summary.json`).
pub struct Summary {
    /// The device name.
    pub device: String,
    /// Timings.
    pub seconds: Seconds,
    /// Rates of the normalised input.
    pub input: LayerRecord,
    /// Rates after each layer.
    pub layers: Vec<LayerRecord>,
    /// Accuracies.
    pub accuracy: AccuracyBlock,
    /// The data.
    pub data: DataSummary,
    /// Warnings of the data selection.
    pub warnings: Vec<String>,
    /// The configuration, as run.
    pub config: RunConfig,
}

impl Summary {
    /// The summary of a run of `cfg` on data `split` whose rate record is
    /// `records` (the input, then each layer), with its timings in seconds.
    pub fn new(
        cfg: &RunConfig,
        device_name: &str,
        split: &redunet_data::split::Split,
        records: &[LayerRecord],
        (construct, evaluate): (f64, f64),
        accuracy: AccuracyBlock,
        dim: usize,
    ) -> Self {
        Self {
            device: device_name.to_string(),
            seconds: Seconds {
                construct,
                per_layer: construct / records.len().saturating_sub(1).max(1) as f64,
                evaluate,
            },
            input: records[0],
            layers: records[1..].to_vec(),
            accuracy,
            data: DataSummary {
                source: format!("{:?}", cfg.data.source),
                classes: split.classes.clone(),
                train: split.train.len(),
                test: split.test.len(),
                dim,
            },
            warnings: split.warnings.clone(),
            config: cfg.clone(),
        }
    }
}

/// Writes `summary.json` and `rates.csv` into `out` (created if needed).
pub fn write_summary(out: &Path, summary: &Summary, records: &[LayerRecord]) -> Result<()> {
    std::fs::create_dir_all(out).map_err(redunet_data::io_error("create", out))?;
    let json = serde_json::to_vec_pretty(summary).expect("summaries serialise");
    write_atomic(&out.join("summary.json"), &json)?;
    let mut csv = String::from("layer,r,r_c,delta_r\n");
    for r in records {
        csv.push_str(&format!("{},{},{},{}\n", r.layer, r.r, r.r_c, r.delta_r));
    }
    write_atomic(&out.join("rates.csv"), csv.as_bytes())?;
    Ok(())
}

/// The first `per_class` samples of each class, in order (all when `None`).
pub fn first_per_class(labels: &[usize], per_class: Option<usize>) -> Vec<usize> {
    let mut seen = std::collections::HashMap::new();
    (0..labels.len())
        .filter(|&i| {
            let n = seen.entry(labels[i]).or_insert(0usize);
            *n += 1;
            per_class.is_none_or(|p| *n <= p)
        })
        .collect()
}

/// How the `[eval]` section classifies: kNN's k, nearest subspace's
/// dimension (`default_comp` unless set) and MICL's ε² (the model's unless
/// set; none when `eval.micl = false`).
pub fn eval_settings(
    cfg: &crate::RunConfig,
    default_comp: usize,
) -> redunet_train::trainer::EvalSettings {
    redunet_train::trainer::EvalSettings {
        knn_k: cfg.eval.knn_k,
        n_comp: cfg.eval.n_comp.unwrap_or(default_comp),
        micl_eps_sq: cfg
            .eval
            .micl
            .then(|| cfg.eval.micl_eps_sq.unwrap_or(cfg.model.eps_sq)),
    }
}

/// Accuracy of the fitted classifiers on the training features, on the
/// first `eval.train_accuracy_per_class` samples of each class (all by
/// default): kNN over every training sample costs m² products, more than
/// the rest of a run on large sets.
pub fn train_accuracy(
    fitted: &Classifiers,
    features: &burn::tensor::Tensor<2>,
    labels: &[usize],
    cfg: &crate::RunConfig,
) -> Result<Accuracies> {
    match cfg.eval.train_accuracy_per_class {
        None => fitted.accuracies(features, labels),
        Some(n) => {
            let rows = first_per_class(labels, Some(n));
            let picked: Vec<usize> = rows.iter().map(|&i| labels[i]).collect();
            let x = features
                .clone()
                .select(0, redunet_core::host::indices(&rows, &features.device()));
            fitted.accuracies(&x, &picked)
        }
    }
}
