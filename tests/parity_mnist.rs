//! Parity with the official PyTorch ReduNet on MNIST (acceptance test of the
//! foundation issue): 50 train digits per class from the built-in subset,
//! 10 vector layers, η 0.5, ε² 0.1, λ 500, soft membership during
//! construction. The official code's ΔR (f64, true labels) per stage.

use redunet::core::{MembershipMode, Memberships, VectorLayerConfig, VectorReduNet};
use redunet::data::{builtin, split::per_class_split};

const OFFICIAL: [f64; 11] = [
    154.608, 389.334, 516.505, 559.473, 570.488, 574.573, 576.173, 576.765, 576.956, 577.006,
    577.017,
];

#[test]
fn delta_r_matches_official_code_within_0_1_percent() {
    let data = builtin::mnist().unwrap();
    let split = per_class_split(&data, None, 50, 10).unwrap();
    let device = burn::tensor::Device::default();
    let m = split.train.len();
    let z = redunet::core::host::tensor(split.train.features.clone(), [m, 784], &device);
    let pi = Memberships::from_labels(&split.train.labels, 10, &device).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let built = VectorReduNet::construct(&z, &pi, 10, &config, |_| {}).unwrap();
    for (rec, want) in built.records.iter().zip(OFFICIAL) {
        let rel = (rec.delta_r - want).abs() / want;
        eprintln!(
            "layer {:2}: ΔR {:.3} official {want:.3} rel {rel:.2e}",
            rec.layer, rec.delta_r
        );
        assert!(
            rel < 1e-3,
            "layer {}: ΔR {} vs official {want}",
            rec.layer,
            rec.delta_r
        );
    }
}
