//! How the command line shows a run: the progress bar and the readable
//! summary on stdout.

use indicatif::{ProgressBar, ProgressStyle};
use redunet_core::network::LayerRecord;
use redunet_experiment::report::Summary;
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
