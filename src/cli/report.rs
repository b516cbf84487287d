//! What `redunet run` reports for any network kind: the summary written to
//! `summary.json` and `rates.csv`, the progress bar, and the readable
//! summary on stdout.

use super::config::RunConfig;
use anyhow::{Context, Result};
use burn::tensor::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use redunet_core::classify::{accuracy, knn_predict, nearest_subspace_predict};
use redunet_core::network::LayerRecord;
use redunet_data::npy::write_atomic;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
pub struct Accuracies {
    pub knn: f64,
    pub nearest_subspace: f64,
}

#[derive(Serialize)]
pub struct Seconds {
    pub construct: f64,
    pub per_layer: f64,
    pub evaluate: f64,
}

#[derive(Serialize)]
pub struct AccuracyBlock {
    pub train: Accuracies,
    pub test: Option<Accuracies>,
    /// The test samples under every cyclic shift of the stride grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_all_shifts: Option<Accuracies>,
}

#[derive(Serialize)]
pub struct DataSummary {
    pub source: String,
    pub classes: Vec<usize>,
    pub train: usize,
    pub test: usize,
    pub dim: usize,
}

#[derive(Serialize)]
pub struct Summary {
    pub device: String,
    pub seconds: Seconds,
    pub input: LayerRecord,
    pub layers: Vec<LayerRecord>,
    pub accuracy: AccuracyBlock,
    pub data: DataSummary,
    pub warnings: Vec<String>,
    pub config: RunConfig,
}

pub fn evaluate(
    train: &Tensor<2>,
    train_labels: &[usize],
    test: &Tensor<2>,
    test_labels: &[usize],
    k: usize,
    n_comp: usize,
) -> Result<Accuracies> {
    Ok(Accuracies {
        knn: accuracy(&knn_predict(train, train_labels, test, k)?, test_labels),
        nearest_subspace: accuracy(
            &nearest_subspace_predict(train, train_labels, test, n_comp)?,
            test_labels,
        ),
    })
}

/// A progress bar over the layers of a construction (hidden when quiet).
pub fn progress_bar(quiet: bool, layers: usize) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(layers as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} layer {pos}/{len} [{bar:30}] {msg} ({elapsed}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Shows a rate record on the progress bar.
pub fn show_record(bar: &ProgressBar, rec: &LayerRecord) {
    bar.set_position(rec.layer as u64);
    bar.set_message(format!(
        "ΔR {:.4}  R {:.4}  R_c {:.4}",
        rec.delta_r, rec.r, rec.r_c
    ));
}

/// Writes `summary.json` and `rates.csv` into `out` (created if needed).
pub fn write_summary(out: &Path, summary: &Summary, records: &[LayerRecord]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_atomic(
        &out.join("summary.json"),
        &serde_json::to_vec_pretty(summary)?,
    )?;
    let mut csv = String::from("layer,r,r_c,delta_r\n");
    for r in records {
        csv.push_str(&format!("{},{},{},{}\n", r.layer, r.r, r.r_c, r.delta_r));
    }
    write_atomic(&out.join("rates.csv"), csv.as_bytes())?;
    Ok(())
}
/// Prints a readable summary.
pub fn print_summary(s: &Summary, out: &Path) {
    println!(
        "ReduNet ({} layers) on {} — device {}",
        s.layers.len(),
        s.data.source,
        s.device
    );
    println!(
        "  rates: input ΔR {:.4} → layer {} ΔR {:.4} (R {:.4}, R_c {:.4})",
        s.input.delta_r,
        s.layers.len(),
        s.layers.last().map_or(f64::NAN, |l| l.delta_r),
        s.layers.last().map_or(f64::NAN, |l| l.r),
        s.layers.last().map_or(f64::NAN, |l| l.r_c),
    );
    println!(
        "  time: construct {:.2} s ({:.2} ms/layer), evaluate {:.2} s",
        s.seconds.construct,
        1e3 * s.seconds.per_layer,
        s.seconds.evaluate
    );
    println!(
        "  train accuracy: kNN {:.4}, nearest subspace {:.4}",
        s.accuracy.train.knn, s.accuracy.train.nearest_subspace
    );
    if let Some(t) = &s.accuracy.test {
        println!(
            "  test accuracy:  kNN {:.4}, nearest subspace {:.4}",
            t.knn, t.nearest_subspace
        );
    }
    if let Some(t) = &s.accuracy.test_all_shifts {
        println!(
            "  all shifts:     kNN {:.4}, nearest subspace {:.4}",
            t.knn, t.nearest_subspace
        );
    }
    println!("  results in {}", out.display());
}
