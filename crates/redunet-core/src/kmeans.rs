//! k-means (Lloyd's iterations from k-means++ seeds, best of several
//! restarts): the baseline that clustering by compression is compared
//! with, and a starting partition for it.

use crate::cpu::gemm::matmul_abt_f64;
use crate::{Error, Result};
use burn::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Settings of k-means, checked by [`Self::fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeans {
    /// Number of clusters.
    pub k: usize,
    /// Independent k-means++ starts; the lowest inertia wins.
    pub restarts: usize,
    /// Most Lloyd iterations per start (they stop earlier when no sample
    /// changes cluster).
    pub iterations: usize,
    /// Seeds the starts.
    pub seed: u64,
}

impl KMeans {
    /// `k` clusters, 10 restarts of at most 300 iterations (scikit-learn's
    /// defaults), seed 0.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            restarts: 10,
            iterations: 300,
            seed: 0,
        }
    }
}

/// A k-means fit.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// Cluster of every sample.
    pub assignment: Vec<usize>,
    /// The centres, `[k, D]` row-major.
    pub centres: Vec<f64>,
    /// Sum of squared distances of the samples to their centres.
    pub inertia: f64,
}

impl KMeans {
    /// Clusters the rows of `x: [m, D]` (used as given).
    pub fn fit(&self, x: &Tensor<2>) -> Result<KMeansFit> {
        let [m, d] = x.dims();
        if self.k == 0 || self.restarts == 0 || self.iterations == 0 {
            return Err(Error::Parameter(format!(
                "k-means needs k, restarts and iterations ≥ 1, got {}, {}, {}",
                self.k, self.restarts, self.iterations
            )));
        }
        if self.k > m {
            return Err(Error::Parameter(format!(
                "k-means: k = {} clusters of {m} samples",
                self.k
            )));
        }
        crate::host::check_finite(x, "k-means input")?;
        let rows: Vec<f64> = crate::host::to_vec(x.clone())?
            .iter()
            .map(|&v| v as f64)
            .collect();
        let norms: Vec<f64> = rows.chunks(d.max(1)).map(|r| dot(r, r)).collect();
        let mut best: Option<KMeansFit> = None;
        for restart in 0..self.restarts {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed ^ (restart as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            let centres = plus_plus(&rows, &norms, (m, d), self.k, &mut rng);
            let fit = lloyd(&rows, &norms, (m, d), centres, self.iterations);
            if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
                best = Some(fit);
            }
        }
        Ok(best.expect("at least one restart"))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// k-means++ seeding: each next centre is a sample drawn with probability
/// proportional to its squared distance to the nearest centre so far.
fn plus_plus(
    rows: &[f64],
    norms: &[f64],
    (m, d): (usize, usize),
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let first = rng.random_range(0..m);
    let mut centres = rows[first * d..(first + 1) * d].to_vec();
    let mut nearest: Vec<f64> = (0..m)
        .map(|i| {
            (norms[i] - 2.0 * dot(&rows[i * d..(i + 1) * d], &centres) + norms[first]).max(0.0)
        })
        .collect();
    for _ in 1..k {
        let total: f64 = nearest.iter().sum();
        let pick = if total > 0.0 {
            let mut u = rng.random_range(0.0..total);
            nearest
                .iter()
                .position(|&w| {
                    u -= w;
                    u < 0.0
                })
                .unwrap_or(m - 1)
        } else {
            // Every sample sits on a centre: any sample will do.
            rng.random_range(0..m)
        };
        let c = &rows[pick * d..(pick + 1) * d];
        let cn = norms[pick];
        nearest.par_iter_mut().enumerate().for_each(|(i, w)| {
            let dist = (norms[i] - 2.0 * dot(&rows[i * d..(i + 1) * d], c) + cn).max(0.0);
            *w = w.min(dist);
        });
        centres.extend_from_slice(c);
    }
    centres
}

/// Lloyd's iterations from `centres`; an emptied cluster takes the sample
/// farthest from its centre.
fn lloyd(
    rows: &[f64],
    norms: &[f64],
    (m, d): (usize, usize),
    mut centres: Vec<f64>,
    iterations: usize,
) -> KMeansFit {
    let k = centres.len() / d.max(1);
    let mut assignment = vec![usize::MAX; m];
    let mut inertia = f64::INFINITY;
    for _ in 0..iterations {
        let products = matmul_abt_f64(rows, &centres, m, k, d);
        let cn: Vec<f64> = centres.chunks(d.max(1)).map(|c| dot(c, c)).collect();
        let nearest: Vec<(usize, f64)> = (0..m)
            .into_par_iter()
            .map(|i| {
                (0..k)
                    .map(|j| (j, (norms[i] - 2.0 * products[i * k + j] + cn[j]).max(0.0)))
                    .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a })
            })
            .collect();
        let changed = nearest.iter().zip(&assignment).any(|(n, &a)| n.0 != a);
        inertia = nearest.iter().map(|n| n.1).sum();
        for (a, n) in assignment.iter_mut().zip(&nearest) {
            *a = n.0;
        }
        if !changed {
            break;
        }
        let mut sums = vec![0f64; k * d];
        let mut counts = vec![0usize; k];
        for (i, &a) in assignment.iter().enumerate() {
            counts[a] += 1;
            for (s, v) in sums[a * d..(a + 1) * d]
                .iter_mut()
                .zip(&rows[i * d..(i + 1) * d])
            {
                *s += v;
            }
        }
        let mut far: Vec<usize> = (0..m).collect();
        far.sort_by(|&a, &b| nearest[b].1.total_cmp(&nearest[a].1));
        let mut far = far.into_iter();
        for j in 0..k {
            let c = &mut centres[j * d..(j + 1) * d];
            if counts[j] > 0 {
                for (c, s) in c.iter_mut().zip(&sums[j * d..(j + 1) * d]) {
                    *c = s / counts[j] as f64;
                }
            } else if let Some(i) = far.next() {
                c.copy_from_slice(&rows[i * d..(i + 1) * d]);
            }
        }
    }
    KMeansFit {
        assignment,
        centres,
        inertia,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn separated_blobs_are_found_and_fits_are_seeded() {
        let device = Device::default();
        let noise = crate::host::normals(3 * 40 * 2, 3);
        let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let mut v = Vec::new();
        let mut labels = Vec::new();
        for (j, (cx, cy)) in centres.iter().enumerate() {
            for i in 0..40 {
                v.push(cx + noise[(j * 40 + i) * 2]);
                v.push(cy + noise[(j * 40 + i) * 2 + 1]);
                labels.push(j);
            }
        }
        let x = Tensor::<2>::from_data(TensorData::new(v, [120, 2]), &device);
        let fit = KMeans::new(3).fit(&x).unwrap();
        let s = crate::cluster::scores(&fit.assignment, &labels).unwrap();
        assert_eq!(s.acc, 1.0);
        assert_eq!(fit, KMeans::new(3).fit(&x).unwrap());
        assert!(KMeans::new(121).fit(&x).is_err());
        assert!(KMeans::new(0).fit(&x).is_err());
    }
}
