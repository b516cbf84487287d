//! Augmentation is for images: asking for it on data without an image
//! shape, or with one that does not match the rows, is a typed error.

use burn::tensor::{Device, Distribution, Tensor};
use redunet_core::Error;
use redunet_train::mlp::Mlp;
use redunet_train::trainer::{CheckpointPlan, EvalSettings, TrainConfig, TrainData, fit};

fn config() -> TrainConfig {
    serde_json::from_str(
        r#"{"epochs": 1, "lr": 0.01, "batch_size": 4, "augment_rotation": 10.0, "augment_scale": 0.1}"#,
    )
    .unwrap()
}

#[test]
fn augmentation_needs_image_rows() {
    let device = Device::default();
    let x = Tensor::<2>::random([8, 12], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<usize> = (0..8).map(|i| i % 2).collect();
    let cfg = config();
    for image in [None, Some((3, 3, 1))] {
        let data = TrainData {
            x: &x,
            labels: &labels,
            test_x: None,
            test_labels: &[],
            num_classes: 2,
            image,
        };
        let net = Mlp::new(12, 1, 8, 4, 0, &device);
        let err = fit(
            net,
            &cfg,
            &data,
            EvalSettings {
                knn_k: 1,
                n_comp: 1,
                micl_eps_sq: Some(0.5),
            },
            CheckpointPlan::none(),
            |_| {},
        )
        .err()
        .expect("augmentation without images must fail");
        assert!(
            matches!(err, Error::Parameter(ref m) if m.contains("image")),
            "{err}"
        );
    }
    // With a matching shape (3×4 images) the same configuration trains.
    let data = TrainData {
        x: &x,
        labels: &labels,
        test_x: None,
        test_labels: &[],
        num_classes: 2,
        image: Some((3, 4, 1)),
    };
    let net = Mlp::new(12, 1, 8, 4, 0, &device);
    let trained = fit(
        net,
        &cfg,
        &data,
        EvalSettings {
            knn_k: 1,
            n_comp: 1,
            micl_eps_sq: Some(0.5),
        },
        CheckpointPlan::none(),
        |_| {},
    )
    .unwrap();
    assert_eq!(trained.history.len(), 2);
}
