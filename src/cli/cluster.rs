//! `redunet cluster`: the library's clustering, followed on a progress
//! bar, then its plots and summary.

use super::config::ClusterRunConfig;
use super::plots;
use anyhow::Result;
use burn::tensor::Device;
use indicatif::ProgressBar;
use redunet_core::cluster::Scores;
use redunet_experiment::cluster::{ClusterProgress, ClusterSummary};
use redunet_train::selfsup::Step;
use std::path::Path;

struct Bar {
    bar: ProgressBar,
    quiet: bool,
    epochs: usize,
}

impl ClusterProgress for Bar {
    fn started(&mut self, description: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{description}"));
        }
    }
    fn warning(&mut self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }
    fn step(&mut self, s: Step) {
        self.bar.set_length((self.epochs * s.steps) as u64);
        self.bar
            .set_position(((s.epoch - 1) * s.steps + s.step) as u64);
        self.bar.set_message(format!(
            "self-supervised MCR²: epoch {} loss {:.3}",
            s.epoch, s.loss
        ));
    }
    fn stage(&mut self, name: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("done: {name}"));
        }
    }
}

/// Clusters, writes the outputs into `out` and draws the plots.
pub fn cluster(
    cfg: &ClusterRunConfig,
    device: &Device,
    device_name: &str,
    out: &Path,
    quiet: bool,
) -> Result<ClusterSummary> {
    let bar = super::report::step_bar(quiet);
    let epochs = cfg.selfsup.as_ref().map_or(0, |s| s.epochs);
    let mut progress = Bar { bar, quiet, epochs };
    let o = redunet_experiment::cluster::cluster(cfg, device, device_name, out, &mut progress)?;
    progress.bar.finish_and_clear();
    // The largest groups only: singletons (outliers) would make the map
    // as wide as the data.
    let groups = o.summary.clustering.clusters;
    let mut sizes = vec![0usize; groups];
    o.assignment.iter().for_each(|&g| sizes[g] += 1);
    let mut by_size: Vec<usize> = (0..groups).collect();
    by_size.sort_by_key(|&g| std::cmp::Reverse(sizes[g]));
    let mut rank = vec![usize::MAX; groups];
    for (r, &g) in by_size.iter().take(20).enumerate() {
        rank[g] = r;
    }
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for (i, &g) in o.assignment.iter().enumerate() {
        if rank[g] != usize::MAX {
            rows.extend_from_slice(&o.features[i * o.dim..(i + 1) * o.dim]);
            labels.push(rank[g]);
        }
    }
    plots::cosine_heatmap(
        &out.join("heatmap-clusters.png"),
        &rows,
        &labels,
        o.dim,
        50,
        "|cos| between samples of the largest groups, by group",
    )?;
    if !o.summary.sweep.is_empty() {
        let points: Vec<(f64, f64, f64)> = o
            .summary
            .sweep
            .iter()
            .map(|p| (p.eps_sq, p.clusters as f64, p.coding_length))
            .collect();
        plots::phase_transition(&out.join("phase-transition.png"), &points)?;
    }
    Ok(o.summary)
}

/// Prints the result and where it is.
pub fn print_summary(s: &ClusterSummary, out: &Path) {
    let c = &s.clustering;
    println!(
        "clustered {} samples of {} by {:?} (ε² {}) — device {}",
        s.data.train, s.data.source, c.method, c.eps_sq, s.device
    );
    println!(
        "  time: training {:.1} s, clustering {:.1} s, k-means baseline {:.1} s",
        s.seconds.train, s.seconds.cluster, s.seconds.baseline
    );
    let scores = |s: Option<Scores>| {
        s.map_or("no labels to score with".into(), |s| {
            format!("acc {:.4} NMI {:.4} ARI {:.4}", s.acc, s.nmi, s.ari)
        })
    };
    let own = c
        .acc
        .zip(c.nmi)
        .zip(c.ari)
        .map(|((acc, nmi), ari)| Scores { acc, nmi, ari });
    println!(
        "  {} groups, coding length {:.0} bits: {}",
        c.clusters,
        c.coding_length,
        scores(own)
    );
    if let Some(i) = &c.inliers {
        println!(
            "  inliers only: acc {:.4} NMI {:.4} ARI {:.4}",
            i.acc, i.nmi, i.ari
        );
    }
    if let Some(m) = &s.mcr2 {
        println!(
            "  k-means on the learned features: {}",
            scores(m.kmeans_features)
        );
    }
    if s.baseline_kmeans.is_some() {
        println!(
            "  k-means on the samples as given: {}",
            scores(s.baseline_kmeans)
        );
    }
    for p in &s.sweep {
        println!(
            "  ε² {:<8} {:>5} groups  L^c {:>10.0} bits{}",
            p.eps_sq,
            p.clusters,
            p.coding_length,
            p.ari.map_or(String::new(), |a| format!("  ARI {a:.4}"))
        );
    }
    println!("  results in {}", out.display());
}
