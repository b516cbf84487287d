//! The ReduNet paper's Gaussian mixtures: isotropic Gaussian clusters around
//! unit-norm centres, every sample then projected to the unit sphere.

use crate::{DataError, Dataset, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Class centres of the 2D mixture: two directions at 0 and 3π/4 — not
/// orthogonal, so the network has to pull them apart.
pub fn centres_2d() -> Vec<Vec<f32>> {
    let a = 3.0 * std::f32::consts::PI / 4.0;
    vec![vec![1.0, 0.0], vec![a.cos(), a.sin()]]
}

/// Class centres of the 3D mixture: the three coordinate axes.
pub fn centres_3d() -> Vec<Vec<f32>> {
    vec![
        vec![1.0, 0.0, 0.0],
        vec![0.0, 1.0, 0.0],
        vec![0.0, 0.0, 1.0],
    ]
}

/// A standard normal draw (Box–Muller), so that the stream depends only on
/// the seed and this code, not on a distribution crate's version.
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `per_class` samples per centre, `centre + noise * N(0, I)`, normalised,
/// grouped by class.
pub fn mixture(centres: &[Vec<f32>], per_class: usize, noise: f32, seed: u64) -> Result<Dataset> {
    let dim = centres.first().map(Vec::len).unwrap_or(0);
    if dim == 0 || centres.iter().any(|c| c.len() != dim) {
        return Err(DataError::Invalid(
            "centres must be non-empty and of one dimension".into(),
        ));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(DataError::Invalid(format!(
            "noise {noise} must be finite and ≥ 0"
        )));
    }
    // Features and labels, 4 + 8 bytes a coordinate / sample at most.
    crate::memory::check(
        crate::memory::bytes(&[centres.len(), per_class, dim + 2], 4),
        "the Gaussian mixture",
        "lower data.train_per_class or data.test_per_class",
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut features = Vec::with_capacity(centres.len() * per_class * dim);
    let mut labels = Vec::with_capacity(centres.len() * per_class);
    for (j, c) in centres.iter().enumerate() {
        for _ in 0..per_class {
            let x: Vec<f32> = c
                .iter()
                .map(|&ci| ci + noise * normal(&mut rng) as f32)
                .collect();
            let n = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-8);
            features.extend(x.iter().map(|v| v / n));
            labels.push(j);
        }
    }
    Dataset::new(features, vec![dim], labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_normalised_and_grouped() {
        let a = mixture(&centres_3d(), 10, 0.1, 7).unwrap();
        let b = mixture(&centres_3d(), 10, 0.1, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 30);
        assert_eq!(a.labels[10], 1);
        for s in a.features.chunks(3) {
            let n: f32 = s.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
        assert_ne!(a, mixture(&centres_3d(), 10, 0.1, 8).unwrap());
    }
}
