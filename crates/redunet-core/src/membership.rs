//! Memberships Π `[m, k]`: hard labels (one-hot rows) or soft probabilities.

use crate::host::{tensor, to_vec};
use crate::{Error, Result};
use burn::tensor::{Device, Int, Tensor};

/// α, and per class with members α_j and γ_j (see [`Memberships::scales`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Scales {
    /// α = d/(m ε²).
    pub alpha: f64,
    /// The classes with members, in order.
    pub classes: Vec<usize>,
    /// α_j = d/(m_j ε²) of each class in `classes`.
    pub alphas: Vec<f64>,
    /// γ_j = m_j/m of each class in `classes`.
    pub gammas: Vec<f64>,
}

impl Scales {
    /// The scales for class sizes `counts` (m_j = Σ_i π_ij) of `m` samples:
    /// the same as [`Memberships::scales`], for statistics gathered over
    /// batches.
    pub fn from_counts(counts: &[f64], m: f64, d: usize, eps_sq: f64) -> Self {
        let classes: Vec<usize> = (0..counts.len()).filter(|&j| counts[j] > 1e-9).collect();
        Scales {
            alpha: d as f64 / (m * eps_sq),
            alphas: classes
                .iter()
                .map(|&j| d as f64 / (counts[j] * eps_sq))
                .collect(),
            gammas: classes.iter().map(|&j| counts[j] / m).collect(),
            classes,
        }
    }
}

/// Validated class memberships of `m` samples in `k` classes.
///
/// Hard labels keep the label list, so that per-class work can gather the
/// class's rows instead of weighting all of them.
#[derive(Debug, Clone)]
pub struct Memberships {
    pi: Tensor<2>,
    labels: Option<Vec<usize>>,
    counts: Vec<f64>,
}

impl Memberships {
    /// Hard labels in `0..classes`.
    pub fn from_labels(labels: &[usize], classes: usize, device: &Device) -> Result<Self> {
        if classes == 0 {
            return Err(Error::Parameter(
                "number of classes must be at least 1".into(),
            ));
        }
        if labels.is_empty() {
            return Err(Error::Empty("no labels".into()));
        }
        let mut counts = vec![0f64; classes];
        let mut onehot = vec![0f32; labels.len() * classes];
        for (index, &label) in labels.iter().enumerate() {
            if label >= classes {
                return Err(Error::LabelOutOfRange {
                    index,
                    label,
                    classes,
                });
            }
            counts[label] += 1.0;
            onehot[index * classes + label] = 1.0;
        }
        Ok(Self {
            pi: tensor(onehot, [labels.len(), classes], device),
            labels: Some(labels.to_vec()),
            counts,
        })
    }

    /// Hard labels given as an integer tensor `[m]` on the features' device.
    ///
    /// The labels are read once to the host (the per-class work gathers each
    /// class's rows by index); the one-hot Π is formed on the device, so
    /// nothing is uploaded. With `classes = None` there are one more classes
    /// than the largest label.
    pub fn from_targets(targets: Tensor<1, Int>, classes: Option<usize>) -> Result<Self> {
        let data = targets
            .clone()
            .try_into_data()
            .map_err(|e| Error::Device(format!("{e:?}")))?
            .convert::<i64>();
        let values = data
            .as_slice::<i64>()
            .map_err(|e| Error::Device(format!("{e:?}")))?;
        if values.is_empty() {
            return Err(Error::Empty("no labels".into()));
        }
        let mut labels = Vec::with_capacity(values.len());
        for (index, &v) in values.iter().enumerate() {
            if v < 0 {
                return Err(Error::Memberships(format!(
                    "target {v} at index {index} is negative"
                )));
            }
            labels.push(v as usize);
        }
        let k = match classes {
            Some(0) => {
                return Err(Error::Parameter(
                    "number of classes must be at least 1".into(),
                ));
            }
            Some(k) => k,
            None => labels.iter().max().map_or(1, |&l| l + 1),
        };
        let mut counts = vec![0f64; k];
        for (index, &label) in labels.iter().enumerate() {
            if label >= k {
                return Err(Error::LabelOutOfRange {
                    index,
                    label,
                    classes: k,
                });
            }
            counts[label] += 1.0;
        }
        Ok(Self {
            pi: targets.one_hot_fill::<2>(k, 1.0, 0.0, -1).float(),
            labels: Some(labels),
            counts,
        })
    }

    /// Soft memberships: each row non-negative, finite, summing to 1 (within
    /// 1e-3).
    pub fn soft(pi: Tensor<2>) -> Result<Self> {
        let [m, k] = pi.dims();
        if m == 0 || k == 0 {
            return Err(Error::Empty(format!("memberships of shape [{m}, {k}]")));
        }
        let values = to_vec(pi.clone())?;
        let mut counts = vec![0f64; k];
        for (i, row) in values.chunks(k).enumerate() {
            if row.iter().any(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!("membership row {i}")));
            }
            if row.iter().any(|&v| v < 0.0) {
                return Err(Error::Memberships(format!("row {i} has a negative entry")));
            }
            let sum: f64 = row.iter().map(|&v| v as f64).sum();
            if (sum - 1.0).abs() > 1e-3 {
                return Err(Error::Memberships(format!("row {i} sums to {sum}, not 1")));
            }
            for (c, &v) in counts.iter_mut().zip(row) {
                *c += v as f64;
            }
        }
        Ok(Self {
            pi,
            labels: None,
            counts,
        })
    }

    /// Π as a `[m, k]` tensor.
    pub fn pi(&self) -> &Tensor<2> {
        &self.pi
    }

    /// The hard labels, when these memberships are hard.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// Number of samples m.
    pub fn num_samples(&self) -> usize {
        self.pi.dims()[0]
    }

    /// Number of classes k (some may be empty).
    pub fn num_classes(&self) -> usize {
        self.pi.dims()[1]
    }

    /// `m_j = Σ_i π_ij`, the (soft) size of each class.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }

    /// Classes with members; an empty class contributes nothing anywhere.
    pub fn present(&self) -> Vec<usize> {
        (0..self.counts.len())
            .filter(|&j| self.counts[j] > 1e-9)
            .collect()
    }

    /// The scales of the coding rates for features of dimension `d` (the
    /// channels C of spectral networks): α = d/(m ε²) and, for each class
    /// with members, α_j = d/(m_j ε²) and γ_j = m_j/m.
    pub fn scales(&self, d: usize, eps_sq: f64) -> Scales {
        Scales::from_counts(&self.counts, self.num_samples() as f64, d, eps_sq)
    }

    /// Row indices of class `j` (hard memberships only).
    pub fn members(&self, j: usize) -> Option<Vec<usize>> {
        self.labels
            .as_ref()
            .map(|l| (0..l.len()).filter(|&i| l[i] == j).collect())
    }

    pub(crate) fn check_samples(&self, m: usize) -> Result<()> {
        if self.num_samples() != m {
            return Err(Error::LabelCount {
                expected: m,
                got: self.num_samples(),
            });
        }
        Ok(())
    }

    /// The memberships of rows `start..end` (a batch of the samples).
    pub fn rows(&self, start: usize, end: usize) -> Result<Self> {
        if start >= end || end > self.num_samples() {
            return Err(Error::Shape(format!(
                "rows {start}..{end} of {} samples",
                self.num_samples()
            )));
        }
        match &self.labels {
            Some(l) => Self::from_labels(&l[start..end], self.num_classes(), &self.pi.device()),
            None => Self::soft(self.pi.clone().slice([start..end, 0..self.num_classes()])),
        }
    }

    /// The same memberships on another device.
    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            pi: self.pi.clone().to_device(device),
            labels: self.labels.clone(),
            counts: self.counts.clone(),
        }
    }
}
