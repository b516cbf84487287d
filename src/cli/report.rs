//! How the command line shows a run: the progress bar and the readable
//! summary on stdout.

use indicatif::{ProgressBar, ProgressStyle};
use redunet_core::network::LayerRecord;
use redunet_experiment::report::{Accuracies, Event, Progress, Summary};
use std::path::Path;

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

/// A progress bar over training steps, its length set as they come
/// (hidden when quiet).
pub fn step_bar(quiet: bool) -> ProgressBar {
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

/// Shows a rate record on the progress bar.
pub fn show_record(bar: &ProgressBar, rec: &LayerRecord) {
    bar.set_position(rec.layer as u64);
    bar.set_message(format!(
        "ΔR {:.4}  R {:.4}  R_c {:.4}",
        rec.delta_r, rec.r, rec.r_c
    ));
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
        "  train accuracy: kNN {:.4}, nearest subspace {:.4}, MICL {}",
        s.accuracy.train.knn,
        s.accuracy.train.nearest_subspace,
        fmt_micl(s.accuracy.train.micl)
    );
    if let Some(t) = &s.accuracy.test {
        println!(
            "  test accuracy:  kNN {:.4}, nearest subspace {:.4}, MICL {}",
            t.knn,
            t.nearest_subspace,
            fmt_micl(t.micl)
        );
    }
    if let Some(t) = &s.accuracy.test_all_shifts {
        println!(
            "  all shifts:     kNN {:.4}, nearest subspace {:.4}, MICL {}",
            t.knn,
            t.nearest_subspace,
            fmt_micl(t.micl)
        );
    }
    println!("  results in {}", out.display());
}

/// Progress on the terminal: warnings always; unless quiet, the data line,
/// and a bar over the layers of a construction (`run`) or over all batches
/// of training, with the running loss, the latest accuracy and a line per
/// evaluated epoch.
pub struct Terminal {
    /// The bar (hidden when quiet).
    pub bar: ProgressBar,
    quiet: bool,
    /// Training: the epochs, and the latest accuracy shown beside the loss.
    epochs: Option<usize>,
    last: String,
}

impl Terminal {
    /// Progress on `bar`; `epochs` for training runs.
    pub fn new(bar: ProgressBar, quiet: bool, epochs: Option<usize>) -> Self {
        Self {
            bar,
            quiet,
            epochs,
            last: String::new(),
        }
    }
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
        if self.epochs.is_some() {
            self.bar.set_message(format!(
                "constructing: layer {} ΔR {:.4}",
                r.layer, r.delta_r
            ));
        } else {
            show_record(&self.bar, r);
        }
    }

    fn training(&mut self, event: &Event<'_>) {
        match event {
            Event::Batch {
                epoch,
                step,
                steps,
                loss,
            } => {
                self.bar
                    .set_length((self.epochs.unwrap_or(0) * steps) as u64);
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

/// An accuracy to four places, or "–" when MICL was left out.
fn fmt_micl(a: Option<f64>) -> String {
    a.map_or("–".into(), |a| format!("{a:.4}"))
}

/// "kNN 0.9230 NS 0.9250 MICL 0.9100", or "–" when there is none.
pub fn fmt_acc(a: &Option<Accuracies>) -> String {
    a.map_or("–".into(), |a| {
        format!(
            "kNN {:.4} NS {:.4} MICL {}",
            a.knn,
            a.nearest_subspace,
            fmt_micl(a.micl)
        )
    })
}
