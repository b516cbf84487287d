//! The statistics a vector layer is built from, summed over batches.
//!
//! Everything [`VectorLayer`] needs from its input `Z` is a sum over
//! samples: the second moments `ZᵀZ` and `Zᵀ diag(π_j) Z`, and the class
//! sizes `m_j = Σ_i π_ij`. Accumulated batch by batch they give the same
//! E, C_j, γ_j and rates as all samples at once (up to f32 round-off in the
//! order of the sums), while only one batch and the `(k+1)` d×d moments are
//! in device memory.

use crate::cpu::gemm::{View, grams};
use crate::host::{tensor, to_vec};
use crate::layer::vector::{VectorLayer, VectorLayerConfig};
use crate::membership::Scales;
use crate::rates::{Rates, weighted_rows};
use crate::{Error, Memberships, Result};
use burn::tensor::Tensor;

/// The class moments `Zᵀ diag(π_j) Z` of the present classes and, for soft
/// memberships, `ZᵀZ`, as symmetric rank-k products on the host (see
/// [`weighted_rows`] for the rows each class contributes).
fn host_grams(z: &Tensor<2>, pi: &Memberships) -> Result<ClassGrams<Tensor<2>>> {
    let [b, d] = z.dims();
    let device = z.device();
    let soft = match pi.labels() {
        Some(_) => None,
        None => Some(to_vec(pi.pi().clone())?),
    };
    let (class_grams, total) = grams_of(&to_vec(z.clone())?, b, d, pi, soft.as_deref());
    let t = |g: Vec<f32>| tensor(g, [d, d], &device);
    Ok((
        class_grams.into_iter().map(|(j, g)| (j, t(g))).collect(),
        total.map(t),
    ))
}

/// [`host_grams`] of the rows `values: [b, d]` (row-major) with the soft
/// memberships `soft: [b, k]` where `pi` has no labels: per present class
/// its `d × d` moment, and `ZᵀZ` for soft memberships.
pub(crate) fn grams_of(
    values: &[f32],
    b: usize,
    d: usize,
    pi: &Memberships,
    soft: Option<&[f32]>,
) -> ClassGrams<Vec<f32>> {
    let gram_of = |x: View<'_>| grams(&[x]).pop().expect("one Gram");
    let k = pi.num_classes();
    let present = pi.present();
    // Classes whose rows are contiguous (as our splits group them) need no
    // gather, and their Grams are formed together, the tiles of all of
    // them side by side; the others one at a time, each from its copy.
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; present.len()];
    let mut grouped = Vec::new();
    for (slot, &j) in slots.iter_mut().zip(&present) {
        match (pi.members(j), soft) {
            (Some(rows), _) if rows.last().is_some_and(|&l| l + 1 - rows[0] == rows.len()) => {
                grouped.push(View::strided(values, rows[0] * d, rows.len(), d, d, 1));
            }
            (Some(rows), _) => {
                let x: Vec<f32> = rows
                    .iter()
                    .flat_map(|&i| values[i * d..(i + 1) * d].iter().copied())
                    .collect();
                *slot = Some(gram_of(View::new(&x, rows.len(), d)));
            }
            (None, Some(p)) => {
                let x: Vec<f32> = (0..b)
                    .flat_map(|i| {
                        let w = p[i * k + j].sqrt();
                        values[i * d..(i + 1) * d].iter().map(move |&v| v * w)
                    })
                    .collect();
                *slot = Some(gram_of(View::new(&x, b, d)));
            }
            (None, None) => unreachable!("memberships are hard or soft"),
        }
    }
    let mut together = grams(&grouped).into_iter();
    let class_grams = present
        .into_iter()
        .zip(slots)
        .map(|(j, g)| {
            (
                j,
                g.unwrap_or_else(|| together.next().expect("a grouped class")),
            )
        })
        .collect();
    let total = soft.is_some().then(|| gram_of(View::new(values, b, d)));
    (class_grams, total)
}

/// `I + a·M` for `ZᵀZ` and every class moment (`class_grams`, of
/// `scales.classes` in order), each `d × d` in the moment's own buffer, and
/// the factors `a` (α, then each α_j) in f32. `gram` is `ZᵀZ` where it was
/// formed apart from the class moments.
fn regularised(
    gram: Option<Vec<f32>>,
    class_grams: Vec<Vec<f32>>,
    scales: &Scales,
    d: usize,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    use rayon::prelude::*;
    let mut factors = vec![scales.alpha as f32];
    factors.extend(scales.alphas.iter().map(|&a| a as f32));
    // With hard labels the classes partition the rows, so ZᵀZ is the sum
    // of the class moments: half the work of forming it again.
    let summed = gram.is_none();
    let mut batch = Vec::with_capacity(factors.len());
    batch.push(gram.unwrap_or_else(|| vec![0f32; d * d]));
    batch.extend(class_grams);
    // In place (a batch-sized copy costs fresh memory at every layer), a
    // block of rows of every matrix per task: the sum reads the class
    // moments' rows before they are scaled, while they are in cache. Each
    // element is summed in class order and then scaled, as one matrix at a
    // time would.
    const ROWS: usize = 16;
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..d.div_ceil(ROWS)).map(|_| Vec::new()).collect();
    for moment in batch.iter_mut() {
        for (block, rows) in blocks.iter_mut().zip(moment.chunks_mut((ROWS * d).max(1))) {
            block.push(rows);
        }
    }
    blocks
        .into_par_iter()
        .enumerate()
        .for_each(|(b, mut block)| {
            if summed {
                let (sum, classes) = block.split_first_mut().expect("ZᵀZ and its classes");
                sum.copy_from_slice(&classes[0][..]);
                for g in &classes[1..] {
                    sum.iter_mut().zip(g.iter()).for_each(|(s, v)| *s += v);
                }
            }
            for (rows, &a) in block.iter_mut().zip(&factors) {
                rows.iter_mut().for_each(|v| *v *= a);
                for r in 0..rows.len() / d {
                    rows[r * d + b * ROWS + r] += 1.0;
                }
            }
        });
    (batch, factors)
}

/// The operators of a layer from its moments on the host: `I + a·M` for
/// every moment, their factorisation, and E `[d, d]` and `[C_1 | …]`
/// `[d, k' d]` laid out as the layer keeps them, each in one pass over
/// host memory; also the rates of the layer's input. `class_grams` are
/// the moments of `scales.classes`, in order; `gram` is `ZᵀZ` where it was
/// formed apart from them. The same arithmetic as the tensor path.
pub(crate) fn host_operators(
    gram: Option<Vec<f32>>,
    class_grams: Vec<Vec<f32>>,
    scales: &Scales,
    d: usize,
) -> Result<(Vec<f32>, Vec<f32>, Rates)> {
    let k = scales.classes.len();
    let (mut inverses, factors) = regularised(gram, class_grams, scales, d);
    let logdets = crate::cpu::spd::invert_apart(&mut inverses, d)?;
    let e: Vec<f32> = inverses[0].iter().map(|&v| v * factors[0]).collect();
    let mut c_cat = vec![0f32; d * k * d];
    for r in 0..d {
        for j in 0..k {
            let dst = &mut c_cat[(r * k + j) * d..(r * k + j + 1) * d];
            let src = &inverses[j + 1][r * d..(r + 1) * d];
            dst.iter_mut()
                .zip(src)
                .for_each(|(o, &v)| *o = v * factors[j + 1]);
        }
    }
    let rates = crate::layer::vector::rates_of(&logdets, &scales.gammas);
    Ok((e, c_cat, rates))
}

/// The rates [`host_operators`] gives for the same moments, from the
/// log-determinants alone (no inverses): the record of a stage that builds
/// no layer, equal bit for bit to the one the next layer would report.
pub(crate) fn host_rates(
    gram: Option<Vec<f32>>,
    class_grams: Vec<Vec<f32>>,
    scales: &Scales,
    d: usize,
) -> Result<Rates> {
    let (batch, _) = regularised(gram, class_grams, scales, d);
    let logdets = crate::cpu::spd::logdets_apart(&batch, d)?;
    Ok(crate::layer::vector::rates_of(&logdets, &scales.gammas))
}

/// Per present class its moment, and `ZᵀZ` when formed separately.
pub(crate) type ClassGrams<T> = (Vec<(usize, T)>, Option<T>);

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
        let (class_grams, gram) = if crate::cpu::on_host(&z.device()) {
            host_grams(z, pi)?
        } else {
            let class_grams = pi
                .present()
                .into_iter()
                .map(|j| {
                    let x = weighted_rows(z, pi, j);
                    (j, x.clone().transpose().matmul(x))
                })
                .collect();
            let gram = (!hard).then(|| z.clone().transpose().matmul(z.clone()));
            (class_grams, gram)
        };
        for (j, g) in class_grams {
            let slot = &mut self.class_grams[j];
            *slot = Some(match slot.take() {
                Some(acc) => acc + g,
                None => g,
            });
        }
        if let Some(g) = gram {
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
        if let Some(g) = self.class_grams.iter().flatten().next()
            && crate::cpu::on_host(&g.device())
        {
            return self.layer_host(scales, config);
        }
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

    /// [`Self::layer`] on the host ([`host_operators`]).
    fn layer_host(
        &self,
        scales: Scales,
        config: &VectorLayerConfig,
    ) -> Result<(VectorLayer, Rates)> {
        let d = self.dim;
        let k = scales.classes.len();
        let device = self
            .class_grams
            .iter()
            .flatten()
            .next()
            .expect("a present class has moments")
            .device();
        let class_grams = scales
            .classes
            .iter()
            .map(|&j| {
                to_vec(
                    self.class_grams[j]
                        .clone()
                        .expect("a present class has moments"),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let gram = self.gram.clone().map(to_vec).transpose()?;
        let (e, c_cat, rates) = host_operators(gram, class_grams, &scales, d)?;
        let layer = VectorLayer::from_operators(
            tensor(e, [d, d], &device),
            tensor(c_cat, [d, k * d], &device),
            scales.gammas,
            scales.classes,
            self.counts.len(),
            *config,
        );
        Ok((layer, rates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::gemm::gram;
    use burn::tensor::Device;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn class_grams_gathered_or_together_are_each_classs_gram_bit_for_bit() {
        // Class 1 contiguous (formed with the others side by side), classes
        // 0 and 3 scattered (gathered), class 2 absent.
        let labels = [0, 3, 1, 1, 1, 1, 0, 3, 0, 3, 0];
        let (b, d) = (labels.len(), 131);
        let values = crate::host::normals(b * d, 11);
        let pi = Memberships::from_labels(&labels, 4, &Device::default()).unwrap();
        let (class_grams, total) = grams_of(&values, b, d, &pi, None);
        assert!(total.is_none());
        let classes: Vec<usize> = class_grams.iter().map(|(j, _)| *j).collect();
        assert_eq!(classes, [0, 1, 3]);
        for (j, g) in &class_grams {
            let rows: Vec<f32> = (0..b)
                .filter(|&i| labels[i] == *j)
                .flat_map(|i| values[i * d..(i + 1) * d].iter().copied())
                .collect();
            let mut want = vec![0f32; d * d];
            gram(&mut want, View::new(&rows, rows.len() / d, d));
            assert_eq!(bits(g), bits(&want), "class {j}");
        }
    }

    #[test]
    fn regularised_moments_are_summed_in_class_order_then_scaled() {
        // d not a multiple of the row blocks, so the last block is short.
        let (d, k) = (37, 3);
        let class_grams: Vec<Vec<f32>> = (0..k)
            .map(|j| crate::host::normals(d * d, j as u64 + 1))
            .collect();
        let scales = Scales::from_counts(&[3.0, 5.0, 4.0], 12.0, d, 0.5);
        let (got, factors) = regularised(None, class_grams.clone(), &scales, d);
        let mut sum = class_grams[0].clone();
        for g in &class_grams[1..] {
            sum.iter_mut().zip(g).for_each(|(s, v)| *s += v);
        }
        let mut want = vec![sum];
        want.extend(class_grams);
        assert_eq!(factors[0], scales.alpha as f32);
        for ((w, g), &a) in want.iter_mut().zip(&got).zip(&factors) {
            w.iter_mut().for_each(|v| *v *= a);
            (0..d).for_each(|i| w[i * (d + 1)] += 1.0);
            assert_eq!(bits(g), bits(w));
        }
    }
}
