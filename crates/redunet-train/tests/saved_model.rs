//! A saved model is the network it was saved from: the same features after
//! loading (vector and spectral, with a head), replaced atomically when
//! saved again, and every kind of damage a typed error.

// The shared helpers; the finite-difference checker is for the gradient tests.
#[allow(dead_code)]
mod common;

use burn::tensor::Device;
use common::{gaussian, values};
use redunet_core::{Error, MembershipMode, Memberships, VectorLayerConfig, VectorReduNet};
use redunet_train::trainer::{Trainee, head};
use redunet_train::{Network, SavedModel};
use redunet_vision::front::{FrontEnd, FrontEndConfig};
use redunet_vision::network::SpectralReduNet;

fn labels(m: usize) -> Vec<usize> {
    (0..m).map(|i| i % 2).collect()
}

#[test]
fn vector_model_round_trips_and_rejects_damage() {
    let d = Device::default();
    let (m, dim) = (40, 6);
    let z = gaussian(m, dim, 10, &d);
    let pi = Memberships::from_labels(&labels(m), 2, &d).unwrap();
    let built =
        VectorReduNet::construct(&z, &pi, 3, &VectorLayerConfig::default(), |_| {}).unwrap();
    let fresh = gaussian(7, dim, 11, &d);
    let want = values(built.network.transform(&fresh).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net");
    let mut model = SavedModel::new(Network::Vector(built.network));
    model.meta = serde_json::json!({"note": "test"});
    model.save(&path).unwrap();
    // Saving again over an existing directory replaces it.
    model.meta = serde_json::json!({"note": "again"});
    model.save(&path).unwrap();
    let loaded = SavedModel::load(&path, &d).unwrap();
    assert_eq!(loaded.meta["note"], "again");
    assert_eq!(values(loaded.transform(&fresh).unwrap()), want);
    // The wrong input width, and NaN input, are typed errors.
    assert!(matches!(
        loaded.transform(&gaussian(3, dim + 1, 1, &d)),
        Err(Error::Shape(_))
    ));
    let nan = fresh
        .clone()
        .mask_fill(fresh.clone().greater_elem(0.5), f32::NAN);
    assert!(matches!(loaded.transform(&nan), Err(Error::NonFinite(_))));

    // Damaged files fail their checksums, naming the file; forged ones
    // (damaged, then resealed) fail validation. Errors, not panics.
    std::fs::write(path.join("layer-0001.bpk"), b"garbage").unwrap();
    let e = SavedModel::load(&path, &d).unwrap_err();
    assert!(
        matches!(e, Error::Data(redunet_data::DataError::Corrupt { .. }))
            && e.to_string().contains("layer-0001.bpk"),
        "{e}"
    );
    redunet_data::output::seal(&path).unwrap();
    assert!(matches!(
        SavedModel::load(&path, &d),
        Err(Error::CorruptModel { .. })
    ));
    std::fs::write(path.join("model.json"), b"{not json").unwrap();
    redunet_data::output::seal(&path).unwrap();
    assert!(matches!(
        SavedModel::load(&path, &d),
        Err(Error::CorruptModel { .. })
    ));
    assert!(matches!(
        SavedModel::load(&dir.path().join("nowhere"), &d),
        Err(Error::Data(redunet_data::DataError::Io { .. }))
    ));
}

#[test]
fn spectral_model_with_head_round_trips() {
    let d = Device::default();
    let (h, w, m) = (6, 5, 12);
    let x = gaussian(m, h * w, 3, &d).abs();
    let pi = Memberships::from_labels(&labels(m), 2, &d).unwrap();
    let config = VectorLayerConfig {
        membership: MembershipMode::Soft,
        ..Default::default()
    };
    let front = FrontEnd::new(&FrontEndConfig::images(h, w).lifted(2, 3, 4), &d).unwrap();
    let (net, _) = SpectralReduNet::construct(&x, front, &pi, 2, &config, |_| {}).unwrap();
    let dim = net.feature_dim();
    let want = values(net.transform(&x).unwrap());
    let model = SavedModel {
        trainee: Trainee {
            net: Network::Spectral(net),
            head: Some(head(dim, 2, &d)),
        },
        logit_scale: Some(10.0),
        meta: serde_json::Value::Null,
    };
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = SavedModel::load(dir.path(), &d).unwrap();
    assert_eq!(loaded.logit_scale, Some(10.0));
    assert!(loaded.trainee.head.is_some());
    let got = values(loaded.transform(&x).unwrap());
    assert_eq!(got, want);
}
