//! What a run will do, known before it does anything: the checks every run
//! makes before its first allocation (configuration, data, sizes, memory,
//! disk), and the plan they give — what `--dry-run` prints. A run goes
//! through the same checks, so a plan that is accepted is a run that starts,
//! and a refused plan gives the error the run would give.

use crate::budget::Estimate;
use redunet_data::split::Split;

/// A run's plan: what it reads, builds and writes, and the resources it
/// will hold.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What the run does ("forward construction", "training", "clustering").
    pub job: String,
    /// The data, one line each (source, classes, samples, sample shape).
    pub data: Vec<String>,
    /// The network or method, one line each.
    pub model: Vec<String>,
    /// The files it writes into the output directory, one line each.
    pub outputs: Vec<String>,
    /// Memory and disk.
    pub estimate: Estimate,
    /// Warnings of the data selection.
    pub warnings: Vec<String>,
}

impl Plan {
    /// The plan as lines for people.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("plan: {}", self.job)];
        let mut section = |name: &str, lines: &[String]| {
            if !lines.is_empty() {
                out.push(format!("{name}:"));
                out.extend(lines.iter().map(|l| format!("  {l}")));
            }
        };
        section("data", &self.data);
        section("model", &self.model);
        section("writes", &self.outputs);
        section("warnings", &self.warnings);
        out.extend(self.estimate.lines());
        out
    }
}

/// The data lines of a plan: source, classes and the samples of a split.
pub(crate) fn data_lines(source: impl std::fmt::Debug, split: &Split) -> Vec<String> {
    vec![
        format!("source {source:?}, classes {:?}", split.classes),
        format!(
            "{} training and {} test samples of shape {:?}",
            split.train.len(),
            split.test.len(),
            split.train.sample_shape
        ),
    ]
}

/// The plan's line for a front end: samples, polar transform, lifting, and
/// the signals it makes.
pub(crate) fn front_line(f: &redunet_vision::front::FrontEndConfig) -> String {
    let (c, t) = f.signal_shape();
    let polar = f.polar.as_ref().map_or(String::new(), |p| {
        format!(", polar {} radii × {} angles", p.radii, p.angles)
    });
    let lift = f.lift.as_ref().map_or(String::new(), |l| {
        format!(
            ", lifted to {} channels by kernels of {}",
            l.out_channels, l.kernel_size
        )
    });
    format!(
        "front end: samples {:?}{polar}{lift} → signals of {c} channels × {t}",
        f.sample_shape
    )
}
