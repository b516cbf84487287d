//! `redunet run`: the library's run, followed on a progress bar, then the
//! plots.

use super::config::RunConfig;
use super::plots;
use super::report::{Terminal, progress_bar};
use anyhow::Result;
use burn::tensor::Device;
use redunet_core::network::LayerRecord;
use redunet_experiment::report::{Features, Summary};
use std::path::Path;

/// Runs a configuration end to end and writes its outputs into `out`.
/// With `workers`, the training samples are sharded over them (see
/// `redunet_experiment::run::run_sharded`).
pub fn run(
    cfg: &RunConfig,
    (device, workers): (&Device, &[Device]),
    device_name: &str,
    out: &Path,
    quiet: bool,
) -> Result<Summary> {
    let mut terminal = Terminal::new(progress_bar(quiet, cfg.model.layers), quiet, None);
    let (summary, features) = redunet_experiment::run::run_sharded(
        cfg,
        device,
        workers,
        device_name,
        out,
        &mut terminal,
    )?;
    terminal.bar.finish();
    let mut records = vec![summary.input];
    records.extend(&summary.layers);
    draw(out, &records, &features, cfg.eval.heatmap_per_class)?;
    Ok(summary)
}

/// `rates.png`, the cosine heat maps and, for 2D/3D data, the scatter plots.
fn draw(out: &Path, records: &[LayerRecord], f: &Features, per: usize) -> Result<()> {
    let dim = f.dim;
    plots::rates(&out.join("rates.png"), records)?;
    let heatmap = |name: &str, v: &[f32], labels: &[usize], per: usize, title: &str| {
        plots::cosine_heatmap(&out.join(name), v, labels, dim, per, title)
    };
    heatmap(
        "heatmap-train.png",
        &f.train,
        &f.train_labels,
        per,
        "|cos| between train features (sorted by class)",
    )?;
    if let Some(t) = &f.test {
        heatmap(
            "heatmap-test.png",
            t,
            &f.test_labels,
            per,
            "|cos| between test features (sorted by class)",
        )?;
    }
    if let Some(s) = &f.shifts {
        heatmap(
            "heatmap-shifts-input.png",
            &s.before,
            &s.owner,
            s.copies,
            "|cos| among shifted copies: input",
        )?;
        heatmap(
            "heatmap-shifts-output.png",
            &s.after,
            &s.owner,
            s.copies,
            "|cos| among shifted copies: output",
        )?;
    }
    if let Some(input) = &f.input {
        plots::scatter(
            &out.join("scatter-input.png"),
            input,
            &f.train_labels,
            dim,
            "input features",
        )?;
        plots::scatter(
            &out.join("scatter-output.png"),
            &f.train,
            &f.train_labels,
            dim,
            "output features",
        )?;
    }
    Ok(())
}
