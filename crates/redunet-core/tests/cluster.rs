//! Clustering by compression on a union of subspaces with outliers.

use burn::tensor::{Device, Tensor, TensorData};
use redunet_core::cluster::{CodingLengthClustering, CodingLengthDescent, scores};
use redunet_core::coding::partition_coding_length;

/// `per` samples on each of three random subspaces of dimensions 1, 2 and
/// 3 in R^d, then `outliers` Gaussian samples of the whole space; label 3
/// marks the outliers.
fn union_of_subspaces(d: usize, per: usize, outliers: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let data = redunet_data::subspaces::union_of_subspaces(&[1, 2, 3], d, per, outliers, 0.0, seed)
        .unwrap();
    (data.features, data.labels)
}

#[test]
fn recovers_subspaces_of_different_dimensions_with_outliers() {
    let device = Device::default();
    let (d, per, outliers) = (20, 80, 12);
    let (x, labels) = union_of_subspaces(d, per, outliers, 7);
    let m = labels.len();
    let x = Tensor::<2>::from_data(TensorData::new(x, [m, d]), &device);
    let inliers: Vec<usize> = (0..m).filter(|&i| labels[i] < 3).collect();
    for eps_sq in [0.01, 0.03, 0.1] {
        let c = CodingLengthClustering { eps_sq, k: None }.fit(&x).unwrap();
        let got: Vec<usize> = inliers.iter().map(|&i| c.assignment[i]).collect();
        let want: Vec<usize> = inliers.iter().map(|&i| labels[i]).collect();
        let s = scores(&got, &want).unwrap();
        eprintln!(
            "eps_sq {eps_sq}: {} groups, inlier ARI {:.4}",
            c.clusters, s.ari
        );
        assert!(
            s.ari >= 0.95,
            "eps_sq {eps_sq}: ARI {} with {} groups",
            s.ari,
            c.clusters
        );
        // The outliers do not join the subspaces' groups.
        let big: Vec<usize> = (0..3).map(|j| c.assignment[j * per]).collect();
        let joined = (inliers.len()..m)
            .filter(|&i| big.contains(&c.assignment[i]))
            .count();
        assert!(
            joined <= outliers / 4,
            "{joined} outliers joined a subspace"
        );
    }
}

#[test]
fn stops_at_k_groups_when_asked_and_rejects_bad_settings() {
    let device = Device::default();
    let (x, labels) = union_of_subspaces(10, 30, 0, 3);
    let m = labels.len();
    let x = Tensor::<2>::from_data(TensorData::new(x, [m, 10]), &device);
    let c = CodingLengthClustering {
        eps_sq: 0.05,
        k: Some(2),
    }
    .fit(&x)
    .unwrap();
    assert_eq!(c.clusters, 2);
    assert!(
        CodingLengthClustering {
            eps_sq: 0.0,
            k: None
        }
        .fit(&x)
        .is_err()
    );
    assert!(
        CodingLengthClustering {
            eps_sq: 0.1,
            k: Some(0)
        }
        .fit(&x)
        .is_err()
    );
    let nan = Tensor::<2>::from_data(TensorData::new(vec![f32::NAN; 4], [2, 2]), &device);
    assert!(
        CodingLengthClustering {
            eps_sq: 0.1,
            k: None
        }
        .fit(&nan)
        .is_err()
    );
}

#[test]
fn descent_on_the_coding_length_repairs_a_scrambled_partition() {
    let device = Device::default();
    let (d, per) = (20, 100);
    let (x, labels) = union_of_subspaces(d, per, 0, 11);
    let m = labels.len();
    let x = Tensor::<2>::from_data(TensorData::new(x, [m, d]), &device);
    // Every third sample starts in the next group.
    let start: Vec<usize> = (0..m)
        .map(|i| {
            if i % 3 == 0 {
                (labels[i] + 1) % 3
            } else {
                labels[i]
            }
        })
        .collect();
    let eps_sq = 0.1;
    let before = partition_coding_length(&x, &start, eps_sq).unwrap();
    let r = CodingLengthDescent { eps_sq, passes: 20 }
        .fit(&x, &start)
        .unwrap();
    assert!(r.coding_length < before, "{} ≥ {before}", r.coding_length);
    assert_eq!(r.moved.last(), Some(&0), "did not converge: {:?}", r.moved);
    let s = scores(&r.assignment, &labels).unwrap();
    assert!(s.ari >= 0.95, "ARI {} from a third scrambled", s.ari);
    assert!(
        CodingLengthDescent { eps_sq, passes: 1 }
            .fit(&x, &start[1..])
            .is_err()
    );
    assert!(
        CodingLengthDescent {
            eps_sq: -1.0,
            passes: 1
        }
        .fit(&x, &start)
        .is_err()
    );
}
