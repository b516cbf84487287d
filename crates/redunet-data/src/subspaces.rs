//! A union of linear subspaces of different dimensions, with outliers: the
//! data clustering by compression was made for (TPAMI 2007).

use crate::gaussian::normal;
use crate::{DataError, Dataset, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Default subspace dimensions.
pub const DEFAULT_DIMS: [usize; 3] = [1, 2, 3];
/// Default ambient dimension.
pub const DEFAULT_AMBIENT: usize = 20;

/// For each subspace dimension `dims[j]`, `per_subspace` points of a random
/// `dims[j]`-dimensional subspace of R^ambient (orthonormal basis from
/// Gaussian draws, coefficients N(0, 1/dims[j]), so E‖x‖² = 1), each plus
/// N(0, noise²/ambient) per coordinate; then `outliers` points drawn
/// N(0, 1/ambient) per coordinate from the whole space. Labels: subspace j
/// is class j, the outliers are class `dims.len()`. Grouped by class.
pub fn union_of_subspaces(
    dims: &[usize],
    ambient: usize,
    per_subspace: usize,
    outliers: usize,
    noise: f32,
    seed: u64,
) -> Result<Dataset> {
    if dims.is_empty() || dims.iter().any(|&p| p == 0 || p > ambient) {
        return Err(DataError::Invalid(format!(
            "subspace dimensions {dims:?} must be non-empty, each in 1..={ambient} \
             (the ambient dimension)"
        )));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(DataError::Invalid(format!(
            "noise {noise} must be finite and ≥ 0"
        )));
    }
    let m = dims
        .len()
        .checked_mul(per_subspace)
        .and_then(|n| n.checked_add(outliers))
        .ok_or_else(|| DataError::Invalid("too many samples".into()))?;
    crate::memory::check(
        crate::memory::bytes(&[m, ambient + 2], 4),
        "the union of subspaces",
        "lower data.train_per_class, data.test_per_class or data.outliers",
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut features = Vec::with_capacity(m * ambient);
    let mut labels = Vec::with_capacity(m);
    let sd = noise as f64 / (ambient as f64).sqrt();
    for (j, &p) in dims.iter().enumerate() {
        // Gram–Schmidt on Gaussian draws; p ≤ ambient makes a rank-deficient
        // draw a probability-zero event, redrawn if it happens.
        let mut basis: Vec<Vec<f64>> = Vec::with_capacity(p);
        while basis.len() < p {
            let mut v: Vec<f64> = (0..ambient).map(|_| normal(&mut rng)).collect();
            for b in &basis {
                let c: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= c * y);
            }
            let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n > 1e-6 {
                basis.push(v.into_iter().map(|x| x / n).collect());
            }
        }
        for _ in 0..per_subspace {
            let mut x: Vec<f64> = (0..ambient).map(|_| sd * normal(&mut rng)).collect();
            for b in &basis {
                let c = normal(&mut rng) / (p as f64).sqrt();
                x.iter_mut().zip(b).for_each(|(x, y)| *x += c * y);
            }
            features.extend(x.iter().map(|&v| v as f32));
            labels.push(j);
        }
    }
    let s = 1.0 / (ambient as f64).sqrt();
    for _ in 0..outliers {
        features.extend((0..ambient).map(|_| (s * normal(&mut rng)) as f32));
        labels.push(dims.len());
    }
    Dataset::new(features, vec![ambient], labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_lie_on_their_subspaces() {
        let d = union_of_subspaces(&[1, 2], 6, 5, 3, 0.0, 4).unwrap();
        assert_eq!(d.len(), 13);
        assert_eq!(d.labels[12], 2);
        assert_eq!(d, union_of_subspaces(&[1, 2], 6, 5, 3, 0.0, 4).unwrap());
        // Points of the line are multiples of each other.
        let (a, b) = (&d.features[0..6], &d.features[6..12]);
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let (na, nb): (f32, f32) = (
            a.iter().map(|x| x * x).sum::<f32>().sqrt(),
            b.iter().map(|x| x * x).sum::<f32>().sqrt(),
        );
        assert!((dot.abs() / (na * nb) - 1.0).abs() < 1e-5);
        assert!(union_of_subspaces(&[7], 6, 5, 0, 0.0, 1).is_err());
        assert!(union_of_subspaces(&[], 6, 5, 0, 0.0, 1).is_err());
    }
}
