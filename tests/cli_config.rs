//! The configuration parser: overrides, unknown keys, bad values, and the
//! sections that are Burn `Config`s.

use redunet::cli::config::{ConfigError, LiftConfig, parse};
use redunet_core::MembershipMode;
use std::path::Path;

const BASE: &str = r#"
seed = 0
[data]
source = "mnist"
classes = [0, 1]
train_per_class = 500
test_per_class = 100
[model]
kind = "vector"
layers = 20
eta = 0.5
eps_sq = 0.1
lambda = 500.0
membership = "labels"
"#;

#[test]
fn parses_and_overrides() {
    let c = parse(
        BASE,
        &[
            "model.layers=10".into(),
            "model.membership=soft".into(),
            "data.classes=[3, 5]".into(),
        ],
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.model.layers, 10);
    assert_eq!(c.model.membership, MembershipMode::Soft);
    assert_eq!(c.data.classes, Some(vec![3, 5]));
}

#[test]
fn rejects_unknown_keys_and_bad_values() {
    let unknown = BASE.replace("layers = 20", "layers = 20\nlayer = 3");
    assert!(
        matches!(parse(&unknown, &[], Path::new(".")), Err(ConfigError::Invalid(m)) if m.contains("layer"))
    );
    assert!(matches!(
        parse(BASE, &["model.typo=1".into()], Path::new(".")),
        Err(ConfigError::Invalid(_))
    ));
    assert!(matches!(
        parse("[data\n", &[], Path::new(".")),
        Err(ConfigError::Toml { .. })
    ));
    assert!(parse(BASE, &["model.eta=-1".into()], Path::new(".")).is_err());
    assert!(parse(BASE, &["model.layers=0".into()], Path::new(".")).is_err());
    assert!(matches!(
        parse(BASE, &["nokey".into()], Path::new(".")),
        Err(ConfigError::Set(_))
    ));
}

/// `[polar]` and `[lift]` are Burn `Config`s, whose derive forgets
/// serde's attributes: unknown keys in them are still refused, and the
/// lifting seed still defaults (to `LiftConfig`'s own default).
#[test]
fn burn_config_sections_refuse_unknown_keys_and_keep_defaults() {
    let lifted = format!("{BASE}\n[lift]\nout_channels = 4\nkernel_size = 3\n");
    let c = parse(&lifted, &[], Path::new(".")).unwrap();
    assert_eq!(c.lift, Some(LiftConfig::new(4, 3)));
    for typo in ["lift.seeed=1", "polar.radius=3", "lift.kernel.size=3"] {
        let sets = [
            typo.to_string(),
            "polar.radii=2".into(),
            "polar.angles=8".into(),
        ];
        match parse(&lifted, &sets, Path::new(".")) {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("unknown key"), "{typo}: {m}"),
            other => panic!("{typo}: {other:?}"),
        }
    }
}
