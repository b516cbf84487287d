//! The statistics a vector layer is built from, summed over batches.
//!
//! Everything [`VectorLayer`] needs from its input `Z` is a sum over
//! samples: the second moments `ZᵀZ` and `Zᵀ diag(π_j) Z`, and the class
//! sizes `m_j = Σ_i π_ij`. Accumulated batch by batch they give the same
//! E, C_j, γ_j and rates as all samples at once (up to f32 round-off in the
//! order of the sums), while only one batch and the `(k+1)` d×d moments are
//! in device memory.

use crate::layer::vector::{VectorLayer, VectorLayerConfig};
use crate::membership::Scales;
use crate::rates::{Rates, weighted_rows};
use crate::{Error, Memberships, Result};
use burn::tensor::Tensor;

/// `ZᵀZ` (soft memberships only: with hard labels it is the sum of the class
/// moments), `Zᵀ diag(π_j) Z` per class and the class sizes, over the
/// batches added so far.
#[derive(Debug, Clone)]
pub struct SecondMoments {
    dim: usize,
    gram: Option<Tensor<2>>,
    class_grams: Vec<Option<Tensor<2>>>,
    counts: Vec<f64>,
    samples: usize,
    hard: Option<bool>,
}

impl SecondMoments {
    /// No samples yet, for features of dimension `dim` in `num_classes` classes.
    pub fn new(dim: usize, num_classes: usize) -> Self {
        Self {
            dim,
            gram: None,
            class_grams: vec![None; num_classes],
            counts: vec![0.0; num_classes],
            samples: 0,
            hard: None,
        }
    }

    /// Adds a batch `z: [b, d]` with its memberships.
    pub fn add(&mut self, z: &Tensor<2>, pi: &Memberships) -> Result<()> {
        let [b, d] = z.dims();
        if d != self.dim || pi.num_classes() != self.counts.len() {
            return Err(Error::Shape(format!(
                "a batch [{b}, {d}] in {} classes added to moments of dimension {} in {} classes",
                pi.num_classes(),
                self.dim,
                self.counts.len()
            )));
        }
        pi.check_samples(b)?;
        let hard = pi.labels().is_some();
        if self.hard.is_some_and(|h| h != hard) {
            return Err(Error::Memberships(
                "batches mix hard and soft memberships".into(),
            ));
        }
        self.hard = Some(hard);
        for j in pi.present() {
            let x = weighted_rows(z, pi, j);
            let g = x.clone().transpose().matmul(x);
            let slot = &mut self.class_grams[j];
            *slot = Some(match slot.take() {
                Some(acc) => acc + g,
                None => g,
            });
        }
        if !hard {
            let g = z.clone().transpose().matmul(z.clone());
            self.gram = Some(match self.gram.take() {
                Some(acc) => acc + g,
                None => g,
            });
        }
        for (c, n) in self.counts.iter_mut().zip(pi.counts()) {
            *c += n;
        }
        self.samples += b;
        Ok(())
    }

    /// The sums moved to `device`: `(k+1)` d×d matrices and the counts,
    /// whatever the number of samples behind them (what a shard's worker
    /// sends its coordinator).
    pub fn to_device(self, device: &burn::tensor::Device) -> Self {
        let mv = |t: Option<Tensor<2>>| t.map(|t| t.to_device(device));
        Self {
            gram: mv(self.gram),
            class_grams: self.class_grams.into_iter().map(mv).collect(),
            ..self
        }
    }

    /// Adds the sums of `other` (e.g. another shard's, on the same device):
    /// the moments of both sets of samples.
    pub fn merge(&mut self, other: Self) -> Result<()> {
        if other.dim != self.dim || other.counts.len() != self.counts.len() {
            return Err(Error::Shape(format!(
                "moments of dimension {} in {} classes merged into dimension {} in {} classes",
                other.dim,
                other.counts.len(),
                self.dim,
                self.counts.len()
            )));
        }
        if other.samples == 0 {
            return Ok(());
        }
        if self.hard.is_some_and(|h| Some(h) != other.hard) {
            return Err(Error::Memberships(
                "batches mix hard and soft memberships".into(),
            ));
        }
        self.hard = other.hard;
        let sum = |a: Option<Tensor<2>>, b: Option<Tensor<2>>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.gram = sum(self.gram.take(), other.gram);
        for (slot, g) in self.class_grams.iter_mut().zip(other.class_grams) {
            *slot = sum(slot.take(), g);
        }
        for (c, n) in self.counts.iter_mut().zip(other.counts) {
            *c += n;
        }
        self.samples += other.samples;
        Ok(())
    }

    /// Samples added so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The layer (and the rates of its input) these moments define.
    pub fn layer(&self, config: &VectorLayerConfig) -> Result<(VectorLayer, Rates)> {
        config.validate()?;
        if self.samples == 0 {
            return Err(Error::Empty("no samples in the moments".into()));
        }
        let scales =
            Scales::from_counts(&self.counts, self.samples as f64, self.dim, config.eps_sq);
        let class_grams: Vec<Tensor<3>> = scales
            .classes
            .iter()
            .map(|&j| {
                self.class_grams[j]
                    .clone()
                    .expect("a present class has moments")
                    .unsqueeze_dim(0)
            })
            .collect();
        let class_grams = Tensor::cat(class_grams, 0);
        // With hard labels the classes partition the rows, so ZᵀZ is the sum
        // of the class moments: half the work of forming it again.
        let gram = match &self.gram {
            Some(g) => g.clone().unsqueeze_dim(0),
            None => class_grams.clone().sum_dim(0),
        };
        VectorLayer::from_moments(gram, class_grams, scales, self.counts.len(), config)
    }
}
