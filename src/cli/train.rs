//! `redunet train` and `redunet eval`: the library's training, followed on a
//! progress bar, and its summary.

use super::config::RunConfig;
use anyhow::Result;
use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use redunet_core::network::LayerRecord;
use redunet_experiment::report::{Accuracies, Event, Progress};
use redunet_experiment::train::TrainSummary;
use std::path::Path;

/// Training progress on the terminal: a bar over all batches with the
/// running loss and the latest accuracy, a line per evaluated epoch.
struct Terminal {
    bar: ProgressBar,
    quiet: bool,
    last: String,
    epochs: usize,
}

impl Progress for Terminal {
    fn started(&mut self, description: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{description}"));
        }
    }

    fn warning(&mut self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }

    fn layer(&mut self, r: &LayerRecord) {
        self.bar.set_message(format!(
            "constructing: layer {} ΔR {:.4}",
            r.layer, r.delta_r
        ));
    }

    fn training(&mut self, event: &Event<'_>) {
        match event {
            Event::Batch {
                epoch,
                step,
                steps,
                loss,
            } => {
                self.bar.set_length((self.epochs * steps) as u64);
                self.bar.set_position(((epoch - 1) * steps + step) as u64);
                self.bar
                    .set_message(format!("epoch {epoch} loss {loss:.4} {}", self.last));
            }
            Event::Epoch(r) => {
                if let Some(a) = r.test.or(r.train) {
                    self.last = format!(
                        "(last {} kNN {:.3} NS {:.3})",
                        if r.test.is_some() { "test" } else { "train" },
                        a.knn,
                        a.nearest_subspace
                    );
                }
                if r.test.is_some() && !self.quiet {
                    self.bar.suspend(|| {
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
        }
    }
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
    let epochs = cfg.train.as_ref().map_or(0, |t| t.epochs);
    let mut terminal = Terminal {
        bar,
        quiet,
        last: String::new(),
        epochs,
    };
    let summary =
        redunet_experiment::train::train(cfg, device, device_name, out, resume, &mut terminal)?;
    terminal.bar.finish_and_clear();
    Ok(summary)
}

/// `redunet eval`: the accuracies of a saved model, as JSON.
pub fn eval(cfg: &RunConfig, model_dir: &Path, device: &Device) -> Result<serde_json::Value> {
    let accuracy = redunet_experiment::train::eval(cfg, model_dir, device)?;
    Ok(serde_json::json!({ "accuracy": accuracy }))
}

fn fmt_acc(a: &Option<Accuracies>) -> String {
    a.map_or("–".into(), |a| {
        format!("kNN {:.4} NS {:.4}", a.knn, a.nearest_subspace)
    })
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
