//! `redunet train` and `redunet eval`: the library's training, followed on a
//! progress bar, and its summary.

use super::config::RunConfig;
use super::report::{Terminal, fmt_acc};
use anyhow::Result;
use burn::tensor::Device;
use redunet_data::output::OutputDir;
use redunet_experiment::train::TrainSummary;
use std::path::Path;

/// `redunet train`.
pub fn train(
    cfg: &RunConfig,
    device: &Device,
    device_name: &str,
    out: &mut OutputDir,
    quiet: bool,
    resume: Option<&Path>,
) -> Result<TrainSummary> {
    let bar = super::report::step_bar(quiet);
    let epochs = cfg.train.as_ref().map_or(0, |t| t.epochs);
    let mut terminal = Terminal::new(bar, quiet, Some(epochs));
    let summary =
        redunet_experiment::train::train(cfg, device, device_name, out, resume, &mut terminal)?;
    terminal.bar.finish_and_clear();
    if !summary.layers.is_empty() {
        super::plots::token_layers(
            &out.dir().join("layers.png"),
            &summary.layers,
            &summary.layers_init,
        )?;
    }
    Ok(summary)
}

/// `redunet eval`: the accuracies of a saved model, as JSON.
pub fn eval(cfg: &RunConfig, model_dir: &Path, device: &Device) -> Result<serde_json::Value> {
    let accuracy = redunet_experiment::train::eval(cfg, model_dir, device)?;
    Ok(serde_json::json!({ "accuracy": accuracy }))
}

/// Prints a training summary and where the results are.
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
    println!("  parameters: {}", s.parameters);
    for (l, r) in s.layers.iter().enumerate() {
        println!(
            "  layer {}: R^c {:.2} → {:.2} (compression step), sparsity {:.3}",
            l + 1,
            r.compression_in,
            r.compression,
            r.sparsity
        );
    }
    println!("  results in {}", out.display());
}
