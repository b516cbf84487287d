//! Correctness of the SPD linear algebra, the rates, the gradient and the
//! layer, against f64 references computed here on the host.

use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redunet_core::host::{tensor, to_vec};
use redunet_core::linalg::{cholesky_f64, spd_inverse_logdet};
use redunet_core::{
    Error, MembershipMode, Memberships, VectorLayer, VectorLayerConfig, VectorReduNet, coding_rate,
    compressed_coding_rate, rate_reduction, rate_reduction_gradient,
};

fn dev() -> Device {
    Device::default()
}

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// An n×n SPD matrix Q diag(λ) Qᵀ with eigenvalues log-spaced in [1, cond],
/// rounded to f32 (the reference works on exactly the f32 values).
fn spd_with_condition(n: usize, cond: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut q: Vec<f64> = (0..n * n).map(|_| gauss(rng)).collect();
    for c in 0..n {
        for p in 0..c {
            let dot: f64 = (0..n).map(|i| q[i * n + c] * q[i * n + p]).sum();
            for i in 0..n {
                q[i * n + c] -= dot * q[i * n + p];
            }
        }
        let norm = (0..n).map(|i| q[i * n + c].powi(2)).sum::<f64>().sqrt();
        for i in 0..n {
            q[i * n + c] /= norm;
        }
    }
    let lam: Vec<f64> = (0..n)
        .map(|i| cond.powf(i as f64 / (n - 1) as f64))
        .collect();
    let mut a = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..=i {
            let v: f64 = (0..n).map(|k| q[i * n + k] * lam[k] * q[j * n + k]).sum();
            a[i * n + j] = v as f32;
            a[j * n + i] = v as f32;
        }
    }
    a
}

fn f64_reference(a: &[f32], n: usize) -> (Vec<f64>, f64) {
    let a: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    redunet_core::linalg::spd_inverse_f64(&a, n).unwrap()
}

fn rel_fro(x: &[f32], y: &[f64]) -> f64 {
    let num: f64 = x.iter().zip(y).map(|(&a, &b)| (a as f64 - b).powi(2)).sum();
    let den: f64 = y.iter().map(|b| b * b).sum();
    (num / den).sqrt()
}

#[test]
fn spd_logdet_and_inverse_match_f64_up_to_condition_1e6() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // n = 300 goes through several levels of the blocked recursion.
    let n = 300;
    for cond in [1e2, 1e4, 1e6] {
        let a = spd_with_condition(n, cond, &mut rng);
        let (inv_ref, ld_ref) = f64_reference(&a, n);
        let (inv, ld) = spd_inverse_logdet(tensor(a.clone(), [1, n, n], &dev())).unwrap();
        let inv = to_vec(inv).unwrap();
        let ld_rel = (ld[0] - ld_ref).abs() / ld_ref.abs();
        let inv_rel = rel_fro(&inv, &inv_ref);
        eprintln!(
            "cond {cond:e}: logdet rel err {ld_rel:.2e}, inverse rel err (Frobenius) {inv_rel:.2e}"
        );
        assert!(ld_rel < 1e-4, "cond {cond}: logdet {} vs {ld_ref}", ld[0]);
        // An f32 inverse cannot beat cond·ε in forward error (ε = 1.2e-7);
        // the blocked algorithm must stay within that.
        let bound = (1e-4f64).max(cond * f32::EPSILON as f64);
        assert!(inv_rel < bound, "cond {cond}: inverse rel err {inv_rel}");
    }
}

#[test]
fn spd_batch_matches_per_matrix_and_rejects_indefinite() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let n = 150;
    let a = spd_with_condition(n, 1e3, &mut rng);
    let b = spd_with_condition(n, 10.0, &mut rng);
    let batch: Vec<f32> = a.iter().chain(&b).copied().collect();
    let (_, ld) = spd_inverse_logdet(tensor(batch, [2, n, n], &dev())).unwrap();
    let (_, la) = f64_reference(&a, n);
    let (_, lb) = f64_reference(&b, n);
    assert!((ld[0] - la).abs() / la.abs() < 1e-4);
    assert!((ld[1] - lb).abs() / lb.abs() < 1e-4);

    let mut bad = b.clone();
    for i in 0..n {
        bad[i * n + i] -= 20.0;
    }
    let both: Vec<f32> = a.iter().chain(&bad).copied().collect();
    match spd_inverse_logdet(tensor(both, [2, n, n], &dev())) {
        Err(Error::NotPositiveDefinite { index, .. }) => assert_eq!(index, 1),
        other => panic!("expected NotPositiveDefinite, got {other:?}"),
    }
    let mut nan = a.clone();
    nan[5] = f32::NAN;
    assert!(matches!(
        spd_inverse_logdet(tensor(nan, [1, n, n], &dev())),
        Err(Error::NonFinite(_))
    ));
    assert!(cholesky_f64(&[1.0, 2.0, 2.0, 1.0], 2).is_err());
}

fn random_features(m: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut z: Vec<f32> = (0..m * d).map(|_| gauss(&mut rng) as f32).collect();
    for row in z.chunks_mut(d) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= n);
    }
    z
}

/// ½ logdet(I + a Σ_rows z zᵀ) in f64 on the host.
fn rate_f64(z: &[f32], rows: &[usize], d: usize, a: f64) -> f64 {
    let mut g = vec![0f64; d * d];
    for &i in rows {
        for p in 0..d {
            for q in 0..d {
                g[p * d + q] += a * z[i * d + p] as f64 * z[i * d + q] as f64;
            }
        }
    }
    for p in 0..d {
        g[p * d + p] += 1.0;
    }
    0.5 * redunet_core::linalg::spd_inverse_f64(&g, d).unwrap().1
}

#[test]
fn rates_match_f64_on_both_gram_sides() {
    for (m, d) in [(40, 12), (12, 40)] {
        let z = random_features(m, d, 3);
        let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
        let zt = tensor(z.clone(), [m, d], &dev());
        let pi = Memberships::from_labels(&labels, 3, &dev()).unwrap();
        let eps = 0.1;
        let r_ref = rate_f64(
            &z,
            &(0..m).collect::<Vec<_>>(),
            d,
            d as f64 / (m as f64 * eps),
        );
        let mut rc_ref = 0.0;
        for j in 0..3 {
            let rows: Vec<usize> = (0..m).filter(|&i| labels[i] == j).collect();
            let mj = rows.len() as f64;
            rc_ref += mj / m as f64 * rate_f64(&z, &rows, d, d as f64 / (mj * eps));
        }
        let r = coding_rate(&zt, eps).unwrap();
        let rc = compressed_coding_rate(&zt, &pi, eps).unwrap();
        assert!(
            (r - r_ref).abs() < 1e-4 * r_ref,
            "m {m} d {d}: R {r} vs {r_ref}"
        );
        assert!(
            (rc - rc_ref).abs() < 1e-4 * rc_ref,
            "m {m} d {d}: R_c {rc} vs {rc_ref}"
        );
        // Construction computes the same rates from its d×d factorisations.
        let (_, rates) = VectorLayer::construct(&zt, &pi, &VectorLayerConfig::default()).unwrap();
        assert!((rates.r - r_ref).abs() < 1e-4 * r_ref);
        assert!((rates.r_c - rc_ref).abs() < 1e-4 * rc_ref);
    }
}

#[test]
fn orthogonal_classes_have_block_structure() {
    // Two classes in orthogonal coordinate blocks: R splits into per-class
    // terms with the global α, as REDUNET.md §2 says.
    let (m, d) = (20, 6);
    let mut z = vec![0f32; m * d];
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let labels: Vec<usize> = (0..m).map(|i| i % 2).collect();
    for i in 0..m {
        let off = 3 * labels[i];
        for c in 0..3 {
            z[i * d + off + c] = gauss(&mut rng) as f32;
        }
    }
    let zt = tensor(z.clone(), [m, d], &dev());
    let eps = 0.5;
    let alpha = d as f64 / (m as f64 * eps);
    let blocks: f64 = (0..2)
        .map(|j| {
            let rows: Vec<usize> = (0..m).filter(|&i| labels[i] == j).collect();
            rate_f64(&z, &rows, d, alpha)
        })
        .sum();
    let r = coding_rate(&zt, eps).unwrap();
    assert!(
        (r - blocks).abs() < 1e-4 * blocks,
        "R {r} vs Σ blocks {blocks}"
    );
}

#[test]
fn delta_r_is_nonnegative_for_soft_memberships_and_empty_classes_are_harmless() {
    let (m, d, k) = (30, 8, 4);
    let z = tensor(random_features(m, d, 5), [m, d], &dev());
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut pi = vec![0f32; m * k];
    for row in pi.chunks_mut(k) {
        // Class 3 stays empty.
        let w: Vec<f32> = (0..3).map(|_| rng.random::<f32>() + 0.01).collect();
        let s: f32 = w.iter().sum();
        for c in 0..3 {
            row[c] = w[c] / s;
        }
    }
    let soft = Memberships::soft(tensor(pi, [m, k], &dev())).unwrap();
    let rates = rate_reduction(&z, &soft, 0.1).unwrap();
    assert!(
        rates.delta_r.is_finite() && rates.delta_r >= 0.0,
        "{rates:?}"
    );
    let labels: Vec<usize> = (0..m).map(|i| i % 2).collect(); // classes 2, 3 empty
    let hard = Memberships::from_labels(&labels, 4, &dev()).unwrap();
    let rates = rate_reduction(&z, &hard, 0.1).unwrap();
    assert!(rates.delta_r.is_finite() && rates.delta_r >= 0.0);
    let (layer, _) = VectorLayer::construct(&z, &hard, &VectorLayerConfig::default()).unwrap();
    assert_eq!(layer.classes(), &[0, 1]);
    let p = to_vec(layer.soft_membership(&z).unwrap()).unwrap();
    for row in p.chunks(4) {
        assert!(row.iter().all(|v| v.is_finite()));
        assert_eq!(row[2], 0.0);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let (m, d) = (16, 5);
    let z0 = random_features(m, d, 7);
    let labels: Vec<usize> = (0..m).map(|i| i % 2).collect();
    let pi = Memberships::from_labels(&labels, 2, &dev()).unwrap();
    let eps = 0.5;
    let delta_r = |z: &[f32]| {
        rate_reduction(&tensor(z.to_vec(), [m, d], &dev()), &pi, eps)
            .unwrap()
            .delta_r
    };
    let grad =
        to_vec(rate_reduction_gradient(&tensor(z0.clone(), [m, d], &dev()), &pi, eps).unwrap())
            .unwrap();
    let h = 1e-2f32;
    let mut worst = 0f64;
    let mut flipped = 0f64;
    for idx in [0, 7, 23, 40, 61, 79] {
        let mut zp = z0.clone();
        let mut zm = z0.clone();
        zp[idx] += h;
        zm[idx] -= h;
        let fd = (delta_r(&zp) - delta_r(&zm)) / (2.0 * h as f64);
        let g = grad[idx] as f64;
        let scale = fd.abs().max(0.05);
        worst = worst.max((g - fd).abs() / scale);
        flipped = flipped.max((-g - fd).abs() / scale);
    }
    eprintln!(
        "gradient vs finite differences: worst rel err {worst:.2e}; sign flipped {flipped:.2e}"
    );
    assert!(
        worst < 2e-2,
        "closed-form gradient disagrees with finite differences: {worst}"
    );
    // The tolerance is tight enough that a wrong gradient fails it.
    assert!(flipped > 2e-2);
}

#[test]
fn construction_raises_delta_r_and_keeps_features_on_the_sphere() {
    let (m, d) = (60, 10);
    let labels: Vec<usize> = (0..m).map(|i| i % 3).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut z = vec![0f32; m * d];
    for i in 0..m {
        for c in 0..d {
            let centre = if c == labels[i] { 1.0 } else { 0.0 };
            z[i * d + c] = centre + 0.3 * gauss(&mut rng) as f32;
        }
    }
    let zt = tensor(z, [m, d], &dev());
    let pi = Memberships::from_labels(&labels, 3, &dev()).unwrap();
    for mode in [MembershipMode::Labels, MembershipMode::Soft] {
        let cfg = VectorLayerConfig {
            membership: mode,
            ..Default::default()
        };
        let built = VectorReduNet::construct(&zt, &pi, 15, &cfg, |_| {}).unwrap();
        let first = built.records[0].delta_r;
        let last = built.records.last().unwrap().delta_r;
        assert!(last > first + 0.1, "{mode:?}: ΔR {first} -> {last}");
        for row in to_vec(built.features.clone()).unwrap().chunks(d) {
            let n: f32 = row.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-4);
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let d = dev();
    let z = tensor(random_features(10, 4, 9), [10, 4], &d);
    assert!(matches!(
        Memberships::from_labels(&[0, 1, 5], 3, &d),
        Err(Error::LabelOutOfRange {
            index: 2,
            label: 5,
            ..
        })
    ));
    let pi = Memberships::from_labels(&[0, 1, 0], 2, &d).unwrap();
    assert!(matches!(
        rate_reduction(&z, &pi, 0.1),
        Err(Error::LabelCount { .. })
    ));
    let mut bad = random_features(10, 4, 9);
    bad[3] = f32::INFINITY;
    let pi10 = Memberships::from_labels(&[0; 10], 1, &d).unwrap();
    assert!(matches!(
        rate_reduction(&tensor(bad, [10, 4], &d), &pi10, 0.1),
        Err(Error::NonFinite(_))
    ));
    assert!(matches!(coding_rate(&z, 0.0), Err(Error::Parameter(_))));
    assert!(matches!(
        Memberships::soft(tensor(vec![0.5, 0.2], [1, 2], &d)),
        Err(Error::Memberships(_))
    ));
    let (layer, _) = VectorLayer::construct(&z, &pi10, &VectorLayerConfig::default()).unwrap();
    assert!(matches!(
        layer.forward(&Tensor::<2>::zeros([3, 5], &d)),
        Err(Error::Shape(_))
    ));
    let cfg = VectorLayerConfig {
        eta: f64::NAN,
        ..Default::default()
    };
    assert!(matches!(
        VectorLayer::construct(&z, &pi10, &cfg),
        Err(Error::Parameter(_))
    ));
}

#[test]
fn classifiers_recover_separated_classes() {
    use redunet_core::classify::{accuracy, knn_predict, nearest_subspace_predict};
    let d = dev();
    let dim = 8;
    let labels: Vec<usize> = (0..60).map(|i| i % 3).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let make = |rng: &mut ChaCha8Rng, labels: &[usize]| {
        let mut z = vec![0f32; labels.len() * dim];
        for (i, &l) in labels.iter().enumerate() {
            // Each class lives in its own 2-D coordinate subspace.
            z[i * dim + 2 * l] = gauss(rng) as f32;
            z[i * dim + 2 * l + 1] = gauss(rng) as f32;
            z[i * dim + 7] = 0.05 * gauss(rng) as f32;
        }
        tensor(z, [labels.len(), dim], &d)
    };
    let train = make(&mut rng, &labels);
    let test_labels: Vec<usize> = (0..30).map(|i| (i * 7) % 3).collect();
    let test = make(&mut rng, &test_labels);
    let knn = knn_predict(&train, &labels, &test, 5).unwrap();
    let ns = nearest_subspace_predict(&train, &labels, &test, 2).unwrap();
    assert!(accuracy(&knn, &test_labels) > 0.9);
    assert_eq!(accuracy(&ns, &test_labels), 1.0);
}
