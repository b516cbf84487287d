//! Streamed construction: layers built from second moments summed over
//! batches equal the all-at-once construction (f32 round-off), with hard
//! and soft memberships, batches that do not follow the classes, and
//! scale-safe input normalisation.

use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redunet_core::host::{tensor, to_vec};
use redunet_core::{MembershipMode, Memberships, VectorLayerConfig, VectorReduNet};

fn data(m: usize, d: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Shuffled labels: batches cut across classes.
    let labels: Vec<usize> = (0..m).map(|_| rng.random_range(0..3)).collect();
    let x = (0..m * d)
        .map(|i| {
            (labels[i / d] as f32 + 1.0) * (i % d == labels[i / d]) as u8 as f32
                + rng.random::<f32>()
                - 0.5
        })
        .collect();
    (x, labels)
}

fn compare(membership: MembershipMode, batch: usize, sharded: bool) {
    let device = Device::default();
    let (m, d, k) = (90, 8, 3);
    let (x, labels) = data(m, d, 7);
    let z = tensor(x, [m, d], &device);
    let pi = Memberships::from_labels(&labels, k, &device).unwrap();
    let cfg = VectorLayerConfig {
        membership,
        ..Default::default()
    };
    let whole = VectorReduNet::construct(&z, &pi, 4, &cfg, |_| {}).unwrap();
    let batches = (0..m)
        .step_by(batch)
        .map(|s| {
            let e = (s + batch).min(m);
            (
                z.clone().slice([s..e, 0..d]),
                Memberships::from_labels(&labels[s..e], k, &device).unwrap(),
            )
        })
        .collect();
    let streamed = if sharded {
        // Shards that stay where they are (here all on one device): moments
        // summed across shards, operators sent back.
        VectorReduNet::construct_sharded(batches, 4, &cfg, &device, |_| {}).unwrap()
    } else {
        VectorReduNet::construct_batched(batches, 4, &cfg, &device, |_| {}).unwrap()
    };
    for (a, b) in whole.records.iter().zip(&streamed.records) {
        let rel = (a.delta_r - b.delta_r).abs() / a.delta_r.abs();
        assert!(
            rel < 1e-5,
            "layer {}: ΔR {} vs {}",
            a.layer,
            a.delta_r,
            b.delta_r
        );
    }
    let fa = to_vec(whole.features).unwrap();
    let fb = to_vec(Tensor::cat(streamed.features, 0)).unwrap();
    let worst = fa
        .iter()
        .zip(&fb)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "features differ by {worst}");
    // Batched application is the same map.
    let fresh = tensor(data(20, d, 8).0, [20, d], &device);
    let ta = to_vec(whole.network.transform(&fresh).unwrap()).unwrap();
    let tb = to_vec(
        streamed
            .network
            .transform_batched(&fresh, 6, &device)
            .unwrap(),
    )
    .unwrap();
    let worst = ta
        .iter()
        .zip(&tb)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "transform differs by {worst}");
}

#[test]
fn streamed_construction_equals_all_at_once() {
    for batch in [7, 30, 90] {
        for sharded in [false, true] {
            compare(MembershipMode::Labels, batch, sharded);
            compare(MembershipMode::Soft, batch, sharded);
        }
    }
}

#[test]
fn extreme_scales_give_the_same_directions() {
    let device = Device::default();
    let (x, _) = data(6, 5, 3);
    let base = tensor(x.clone(), [6, 5], &device);
    let unit = to_vec(redunet_core::layer::vector::normalize_input_rows(
        base.clone(),
    ))
    .unwrap();
    for scale in [1e20f32, 1e-20, 1e-30] {
        let scaled = tensor(x.iter().map(|v| v * scale).collect(), [6, 5], &device);
        let got = to_vec(redunet_core::layer::vector::normalize_input_rows(scaled)).unwrap();
        let worst = unit
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "scale {scale}: off by {worst}");
    }
}
