//! Clustering by compression (Ma, Derksen, Hong, Wright, TPAMI 2007), and
//! the scores of a clustering against labels.
//!
//! Start from singletons; merge the pair of groups whose union lowers the
//! coding length of the partition `L^c` ([`crate::coding`]) the most; stop
//! when no merge lowers it (or at `k` groups, when asked). The number of
//! groups comes out of the data, and outliers stay in groups of their own.
//!
//! The change of `L^c` when groups A and B merge depends on A and B only,
//! so every pair's change is computed once and kept; a merge computes the
//! new group's change with every other group, all at once, from one
//! factorisation per partner size ([`crate::coding::Grown`]): singletons
//! are a one-number Schur complement each. The first table (all pairs of
//! samples) is closed-form from the samples' inner products.

use crate::coding::{Gram, Grown, gather, gram_bits, length_bits};
use crate::cpu::gemm::matmul_abt_f64;
use crate::{Error, Result};
use burn::tensor::Tensor;
use rayon::prelude::*;

/// Most samples clustered at once: the pair table holds m²/2 values.
pub const MAX_SAMPLES: usize = 10_000;

/// Settings of clustering by compression, checked by [`Self::fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodingLengthClustering {
    /// Distortion ε² of the coding lengths.
    pub eps_sq: f64,
    /// Merge down to this many groups even where merging costs bits
    /// (`None`: stop when no merge lowers the coding length).
    pub k: Option<usize>,
}

/// A clustering: the group of every sample and the coding length.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Group index of every sample (0-based, groups numbered by their
    /// first sample).
    pub assignment: Vec<usize>,
    /// Number of groups.
    pub clusters: usize,
    /// `L^c` of the final partition, bits.
    pub coding_length: f64,
    /// Merges made.
    pub merges: usize,
}

impl CodingLengthClustering {
    /// Clusters the rows of `x: [m, D]` (used as given).
    pub fn fit(&self, x: &Tensor<2>) -> Result<Clustering> {
        if !(self.eps_sq.is_finite() && self.eps_sq > 0.0) {
            return Err(Error::Parameter(format!(
                "eps_sq = {} must be finite and > 0",
                self.eps_sq
            )));
        }
        if self.k == Some(0) {
            return Err(Error::Parameter("k = 0 groups".into()));
        }
        crate::rates::check_features(x, self.eps_sq)?;
        let [m, d] = x.dims();
        if m > MAX_SAMPLES {
            return Err(Error::Parameter(format!(
                "{m} samples: clustering by compression keeps a table of all pairs \
                 and takes at most {MAX_SAMPLES}; subsample, or cluster MCR² features"
            )));
        }
        let rows: Vec<f64> = crate::host::to_vec(x.clone())?
            .iter()
            .map(|&v| v as f64)
            .collect();
        Merger::new(rows, m, d, self.eps_sq).run(self.k)
    }
}

/// The state of the greedy merging.
struct Merger {
    rows: Vec<f64>,
    m: usize,
    d: usize,
    eps_sq: f64,
    /// Members of each live group (slot = the group's first sample's
    /// original index; dead slots are empty).
    members: Vec<Vec<usize>>,
    /// Each live group's share of L^c: L(X_g) + n_g log2(m / n_g).
    bits: Vec<f64>,
    /// Change of L^c when groups a and b merge: the strict upper triangle
    /// of the pair matrix, by rows ([`tri`]).
    delta: Vec<f64>,
    /// Each live group's best partner and that pair's change.
    best: Vec<(usize, f64)>,
    /// The live groups' slots, ascending.
    alive: Vec<usize>,
}

fn tri(m: usize, a: usize, b: usize) -> usize {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    // Row a of the strict upper triangle starts after rows 0..a.
    a * (2 * m - a - 1) / 2 + (b - a - 1)
}

impl Merger {
    fn new(rows: Vec<f64>, m: usize, d: usize, eps_sq: f64) -> Self {
        let single = |v: f64| length_bits((1.0 + d as f64 / eps_sq * v).ln(), 1, d);
        let pair_alpha = d as f64 / (2.0 * eps_sq);
        let norms: Vec<f64> = rows
            .chunks(d)
            .map(|r| r.iter().map(|v| v * v).sum())
            .collect();
        let log_m = (m as f64).log2();
        let bits: Vec<f64> = norms.iter().map(|&v| single(v) + log_m).collect();
        let pair_bits = (m as f64 / 2.0).log2() * 2.0;
        // Pairs of samples in closed form, det(I + α[[a, c], [c, b]]) =
        // (1 + αa)(1 + αb) − α²c², from blocks of the inner products.
        let mut delta = vec![0f64; m * m.saturating_sub(1) / 2];
        const BLOCK: usize = 256;
        let mut rest: &mut [f64] = &mut delta;
        for start in (0..m).step_by(BLOCK) {
            let end = (start + BLOCK).min(m);
            let inner = matmul_abt_f64(&rows[start * d..end * d], &rows, end - start, m, d);
            let mut rows_out = Vec::with_capacity(end - start);
            for a in start..end {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(m - a - 1);
                rows_out.push((a, head));
                rest = tail;
            }
            rows_out.into_par_iter().for_each(|(a, row)| {
                let c_row = &inner[(a - start) * m..(a - start + 1) * m];
                for (off, slot) in row.iter_mut().enumerate() {
                    let b = a + 1 + off;
                    let det = (1.0 + pair_alpha * norms[a]) * (1.0 + pair_alpha * norms[b])
                        - pair_alpha * pair_alpha * c_row[b] * c_row[b];
                    let union = length_bits(det.max(1.0).ln(), 2, d) + pair_bits;
                    *slot = union - bits[a] - bits[b];
                }
            });
        }
        let mut merger = Self {
            rows,
            m,
            d,
            eps_sq,
            members: (0..m).map(|i| vec![i]).collect(),
            bits,
            delta,
            best: vec![(usize::MAX, f64::INFINITY); m],
            alive: (0..m).collect(),
        };
        for a in 0..m {
            merger.rescan(a);
        }
        merger
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.alive.iter().copied()
    }

    /// Recomputes group `a`'s best partner from the table.
    fn rescan(&mut self, a: usize) {
        let mut best = (usize::MAX, f64::INFINITY);
        for &b in &self.alive {
            if b != a {
                let v = self.delta[tri(self.m, a, b)];
                if v < best.1 {
                    best = (b, v);
                }
            }
        }
        self.best[a] = best;
    }

    fn run(mut self, k: Option<usize>) -> Result<Clustering> {
        let mut groups = self.m;
        let mut merges = 0;
        while groups > 1 {
            let Some((a, (b, v))) = self
                .live()
                .map(|g| (g, self.best[g]))
                .min_by(|x, y| x.1.1.total_cmp(&y.1.1))
            else {
                break;
            };
            let must = k.is_some_and(|k| groups > k);
            if !(v < 0.0 || must) {
                break;
            }
            self.merge(a.min(b), a.max(b))?;
            groups -= 1;
            merges += 1;
        }
        let total: f64 = self.live().map(|g| self.bits[g]).sum();
        let mut assignment = vec![0usize; self.m];
        let mut clusters = 0;
        for g in 0..self.m {
            if !self.members[g].is_empty() {
                for &i in &self.members[g] {
                    assignment[i] = clusters;
                }
                clusters += 1;
            }
        }
        Ok(Clustering {
            assignment,
            clusters,
            coding_length: total,
            merges,
        })
    }

    /// Merges group `b` into group `a` and updates the table.
    fn merge(&mut self, a: usize, b: usize) -> Result<()> {
        let (m, d) = (self.m, self.d);
        let moved = std::mem::take(&mut self.members[b]);
        self.members[a].extend(moved);
        if let Ok(at) = self.alive.binary_search(&b) {
            self.alive.remove(at);
        }
        let n_a = self.members[a].len();
        let base = gather(&self.rows, d, &self.members[a]);
        // One Gram for the group's own length and every partner size.
        let gram = Gram::of(&base, n_a, d);
        self.bits[a] = gram_bits(&gram, n_a, d, m, self.eps_sq)?;
        self.bits[b] = 0.0;
        // The new group against every other live group, by partner size.
        let others: Vec<usize> = self.live().filter(|&g| g != a).collect();
        let mut by_size: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for &g in &others {
            by_size.entry(self.members[g].len()).or_default().push(g);
        }
        for (&s, gs) in &by_size {
            let idx: Vec<usize> = gs
                .iter()
                .flat_map(|&g| self.members[g].iter().copied())
                .collect();
            let partners = gather(&self.rows, d, &idx);
            let logdets = Grown::with_gram(&base, &gram, d, s, self.eps_sq)?.logdets(&partners)?;
            let n = n_a + s;
            let label_bits = n as f64 * (m as f64 / n as f64).log2();
            for (&g, ld) in gs.iter().zip(logdets) {
                let union = length_bits(ld, n, d) + label_bits;
                self.delta[tri(m, a, g)] = union - self.bits[a] - self.bits[g];
            }
        }
        // Best partners: the new group's from scratch; a group whose best
        // was a or b rescans; any other may now prefer the new group.
        self.rescan(a);
        self.best[b] = (usize::MAX, f64::INFINITY);
        for g in others {
            let (partner, v) = self.best[g];
            let now = self.delta[tri(m, a, g)];
            if now <= v {
                // No other entry of g's row changed: the new group leads.
                self.best[g] = (a, now);
            } else if partner == a || partner == b {
                // Its best pair is gone or got worse: look again.
                self.rescan(g);
            }
        }
        Ok(())
    }
}

/// Coordinate descent on the coding length of a partition into a fixed
/// number of groups (min over memberships of `L^c`, the lectures' "minimise
/// the compression term over Π"): in each pass every sample moves to the
/// group whose coding length grows least when it joins, δL of
/// [`crate::classify::Micl`] against the groups of the pass before (a
/// sample's own group counts it already, which makes staying slightly
/// cheaper: passes move few samples back and forth). It stops when no
/// sample moves or after `passes` passes. A group may empty out; the
/// others are renumbered in order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodingLengthDescent {
    /// Distortion ε² of the coding lengths.
    pub eps_sq: f64,
    /// Most passes.
    pub passes: usize,
}

/// The result of [`CodingLengthDescent::fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Descent {
    /// Group of every sample (0-based, no empty groups).
    pub assignment: Vec<usize>,
    /// Samples moved in each pass (the last is 0 when it converged).
    pub moved: Vec<usize>,
    /// `L^c` of the final partition, bits.
    pub coding_length: f64,
}

impl CodingLengthDescent {
    /// Refines the partition `start` (a group per row of `x: [m, D]`).
    pub fn fit(&self, x: &Tensor<2>, start: &[usize]) -> Result<Descent> {
        if !(self.eps_sq.is_finite() && self.eps_sq > 0.0) {
            return Err(Error::Parameter(format!(
                "eps_sq = {} must be finite and > 0",
                self.eps_sq
            )));
        }
        let [m, _] = x.dims();
        if start.len() != m {
            return Err(Error::LabelCount {
                expected: m,
                got: start.len(),
            });
        }
        let mut assignment = renumber(start);
        let mut moved = Vec::new();
        for _ in 0..self.passes {
            let next = crate::classify::Micl::fit(x, &assignment, self.eps_sq)?.predict(x)?;
            let n = next.iter().zip(&assignment).filter(|(a, b)| a != b).count();
            moved.push(n);
            assignment = renumber(&next);
            if n == 0 {
                break;
            }
        }
        let coding_length = crate::coding::partition_coding_length(x, &assignment, self.eps_sq)?;
        Ok(Descent {
            assignment,
            moved,
            coding_length,
        })
    }
}

/// Groups numbered 0.. in order of their first sample.
fn renumber(groups: &[usize]) -> Vec<usize> {
    let mut map = std::collections::HashMap::new();
    groups
        .iter()
        .map(|&g| {
            let next = map.len();
            *map.entry(g).or_insert(next)
        })
        .collect()
}

/// How well a clustering matches labels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Accuracy under the best one-to-one matching of clusters to classes
    /// (unmatched clusters count as wrong).
    pub acc: f64,
    /// Normalised mutual information (arithmetic-mean normalisation).
    pub nmi: f64,
    /// Adjusted Rand index.
    pub ari: f64,
}

/// Scores `assignment` (cluster per sample) against `labels`.
pub fn scores(assignment: &[usize], labels: &[usize]) -> Result<Scores> {
    let n = labels.len();
    if assignment.len() != n {
        return Err(Error::LabelCount {
            expected: n,
            got: assignment.len(),
        });
    }
    if n == 0 {
        return Err(Error::Empty("no samples to score".into()));
    }
    let kc = assignment.iter().max().map_or(0, |&v| v + 1);
    let kl = labels.iter().max().map_or(0, |&v| v + 1);
    let mut table = vec![0f64; kc * kl];
    for (&c, &l) in assignment.iter().zip(labels) {
        table[c * kl + l] += 1.0;
    }
    let rows: Vec<f64> = (0..kc)
        .map(|c| table[c * kl..(c + 1) * kl].iter().sum())
        .collect();
    let cols: Vec<f64> = (0..kl)
        .map(|l| (0..kc).map(|c| table[c * kl + l]).sum())
        .collect();
    let nf = n as f64;
    // Mutual information and entropies (nats).
    let h = |v: &[f64]| -> f64 {
        v.iter()
            .filter(|&&x| x > 0.0)
            .map(|&x| -(x / nf) * (x / nf).ln())
            .sum()
    };
    let mut mi = 0.0;
    for c in 0..kc {
        for l in 0..kl {
            let x = table[c * kl + l];
            if x > 0.0 {
                mi += x / nf * (x * nf / (rows[c] * cols[l])).ln();
            }
        }
    }
    let (hc, hl) = (h(&rows), h(&cols));
    let nmi = if hc + hl > 0.0 {
        2.0 * mi / (hc + hl)
    } else {
        1.0
    };
    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = table.iter().map(|&x| pairs(x)).sum();
    let (sr, sc) = (
        rows.iter().map(|&x| pairs(x)).sum::<f64>(),
        cols.iter().map(|&x| pairs(x)).sum::<f64>(),
    );
    let expected = sr * sc / pairs(nf).max(1.0);
    let max_index = (sr + sc) / 2.0;
    let ari = if (max_index - expected).abs() < 1e-12 {
        1.0
    } else {
        (index - expected) / (max_index - expected)
    };
    let matched = max_matching(&table, kc, kl);
    Ok(Scores {
        acc: matched / nf,
        nmi,
        ari,
    })
}

/// The largest total weight of a one-to-one matching of the rows to the
/// columns of `w: [r, c]` (Hungarian algorithm on the square padding, as
/// a minimum-cost assignment of the negated weights).
fn max_matching(w: &[f64], r: usize, c: usize) -> f64 {
    let n = r.max(c);
    let cost = |i: usize, j: usize| if i < r && j < c { -w[i * c + j] } else { 0.0 };
    // Potentials u (rows), v (columns), 1-based with column 0 a sentinel.
    let (mut u, mut v) = (vec![0f64; n + 1], vec![0f64; n + 1]);
    let mut owner = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        owner[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if owner[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    (1..=n)
        .filter(|&j| owner[j] > 0)
        .map(|j| -cost(owner[j] - 1, j - 1))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_of_a_relabelled_clustering_are_perfect() {
        let labels = [0, 0, 1, 1, 2, 2, 2];
        let s = scores(&[2, 2, 0, 0, 1, 1, 1], &labels).unwrap();
        assert!((s.acc - 1.0).abs() < 1e-12 && (s.nmi - 1.0).abs() < 1e-12);
        assert!((s.ari - 1.0).abs() < 1e-12);
        // One sample off: 6 of 7 matched; ARI and NMI below 1.
        let s = scores(&[2, 2, 0, 0, 1, 1, 0], &labels).unwrap();
        assert!((s.acc - 6.0 / 7.0).abs() < 1e-12);
        assert!(s.ari < 1.0 && s.nmi < 1.0 && s.ari > 0.0);
        // More clusters than classes: unmatched clusters count as wrong.
        let s = scores(&[0, 1, 2, 3, 4, 5, 6], &labels).unwrap();
        assert!((s.acc - 3.0 / 7.0).abs() < 1e-12);
        assert!(scores(&[0], &labels).is_err());
    }

    #[test]
    fn hungarian_finds_the_best_matching() {
        // Greedy (taking 9 first) gives 9 + 1 = 10; the best is 8 + 7 = 15.
        let w = [9.0, 8.0, 7.0, 1.0];
        assert_eq!(max_matching(&w, 2, 2), 15.0);
        let w = [1.0, 5.0, 2.0, 4.0, 3.0, 0.0];
        assert_eq!(max_matching(&w, 3, 2), 5.0 + 3.0);
    }

    #[test]
    fn pair_table_indexing_covers_the_upper_triangle_once() {
        let m = 7;
        let mut seen = vec![false; m * (m - 1) / 2];
        for a in 0..m {
            for b in a + 1..m {
                let i = tri(m, a, b);
                assert!(!seen[i]);
                seen[i] = true;
                assert_eq!(i, tri(m, b, a));
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
