//! Every key of the configuration types round-trips: it is accepted in a
//! file and with `--set`, at its default and at another valid value. The
//! keys are enumerated from the types themselves (their serde formats,
//! traced), not from a hand-written list, so a key added to a section is
//! covered the day it is added.

use redunet::cli::config::{ClusterRunConfig, ConfigError, RunConfig, parse, parse_cluster};
use serde_reflection::{ContainerFormat, Format, Named, Registry, Tracer, TracerConfig};
use std::collections::BTreeMap;
use std::path::Path;

/// The registry of the configuration types' formats (enums traced one by
/// one, so that every variant is known).
fn registry() -> Registry {
    use redunet::core::MembershipMode;
    use redunet::experiment::cluster::ClusterMethod;
    use redunet::experiment::config::{ModelKind, Source};
    use redunet::train::trainer::{Init, Objective, OptimizerKind, Schedule};
    let mut t = Tracer::new(TracerConfig::default());
    t.trace_simple_type::<ModelKind>().unwrap();
    t.trace_simple_type::<Source>().unwrap();
    t.trace_simple_type::<MembershipMode>().unwrap();
    t.trace_simple_type::<Init>().unwrap();
    t.trace_simple_type::<Objective>().unwrap();
    t.trace_simple_type::<OptimizerKind>().unwrap();
    t.trace_simple_type::<Schedule>().unwrap();
    t.trace_simple_type::<ClusterMethod>().unwrap();
    t.trace_simple_type::<RunConfig>().unwrap();
    t.trace_simple_type::<ClusterRunConfig>().unwrap();
    t.registry().unwrap()
}

/// A leaf key: its dotted path and its format.
#[derive(Debug, Clone)]
struct Key {
    path: String,
    format: Format,
}

/// The leaf keys under `container`, prefixed by `prefix`.
fn keys(reg: &Registry, container: &str, prefix: &str, out: &mut Vec<Key>) {
    let Some(ContainerFormat::Struct(fields)) = reg.get(container) else {
        panic!("{container} is not a struct: {:?}", reg.get(container));
    };
    for Named { name, value } in fields {
        let path = format!("{prefix}{name}");
        match struct_name(reg, value) {
            Some(inner) => keys(reg, &inner, &format!("{path}."), out),
            None => out.push(Key {
                path,
                format: value.clone(),
            }),
        }
    }
}

/// The struct a field holds (through `Option`), if it is a section.
fn struct_name(reg: &Registry, f: &Format) -> Option<String> {
    match f {
        Format::Option(inner) => struct_name(reg, inner),
        Format::TypeName(n) if matches!(reg.get(n), Some(ContainerFormat::Struct(_))) => {
            Some(n.clone())
        }
        _ => None,
    }
}

/// Values to try for a key of format `f`, as TOML text.
fn candidates(reg: &Registry, f: &Format) -> Vec<String> {
    match f {
        Format::Option(inner) => candidates(reg, inner),
        Format::Bool => vec!["false".into(), "true".into()],
        Format::U8 | Format::U16 | Format::U32 | Format::U64 | Format::U128 => {
            ["0", "1", "2", "3", "5", "7", "10", "20", "50", "100"]
                .map(String::from)
                .to_vec()
        }
        Format::I64 | Format::I32 => ["0", "1", "2"].map(String::from).to_vec(),
        Format::F32 | Format::F64 => [
            "0.0", "0.01", "0.05", "0.1", "0.2", "0.5", "0.9", "1.0", "2.0", "10.0", "500.0",
        ]
        .map(String::from)
        .to_vec(),
        Format::Seq(inner) => match inner.as_ref() {
            Format::U64 | Format::U32 => {
                ["[0, 1]", "[1, 2]", "[1, 2, 3]"].map(String::from).to_vec()
            }
            Format::F64 | Format::F32 => ["[0.05, 0.1]", "[0.5]"].map(String::from).to_vec(),
            other => panic!("a list of {other:?}: add its candidates"),
        },
        Format::TypeName(n) => match reg.get(n) {
            Some(ContainerFormat::Enum(variants)) => variants
                .values()
                .map(|v| format!("\"{}\"", v.name))
                .collect(),
            other => panic!("{n}: {other:?}"),
        },
        // Paths (npy files): the test's own files, written below.
        Format::Str => ["\"x.npy\"", "\"y.npy\""].map(String::from).to_vec(),
        other => panic!("a key of format {other:?}: add its candidates"),
    }
}

/// The configurations a key is tried in: one per kind of job and network,
/// each valid as it stands.
const RUNS: &[&str] = &[
    // A vector network on vectors.
    "seed = 0\n[data]\nsource = \"gaussian2d\"\ntrain_per_class = 20\ntest_per_class = 5\n\
     [model]\nkind = \"vector\"\nlayers = 2\n",
    // Images through the polar transform and lifting, a conv1d network,
    // all-shifts evaluation.
    "[data]\nsource = \"mnist\"\nclasses = [0, 1]\ntrain_per_class = 10\ntest_per_class = 5\n\
     [polar]\nradii = 3\nangles = 20\n[lift]\nout_channels = 2\nkernel_size = 3\n\
     [model]\nkind = \"conv1d\"\nlayers = 2\nbatch_size = 10\n\
     [eval]\nshift_stride = 5\nshift_test_per_class = 2\ntrain_accuracy_per_class = 5\n\
     n_comp = 2\nmicl_eps_sq = 0.5\n",
    // Training: an MLP, CRATE, the plain transformer, a random ReduNet.
    "[data]\nsource = \"mnist\"\ntrain_per_class = 5\ntest_per_class = 2\n\
     [model]\nkind = \"mlp\"\nlayers = 1\nwidth = 8\nout_dim = 4\n\
     [train]\nepochs = 3\nlr = 0.001\nbatch_size = 10\n",
    "[data]\nsource = \"mnist\"\ntrain_per_class = 5\n\
     [model]\nkind = \"crate\"\nlayers = 1\nwidth = 8\nheads = 2\npatch = 7\n\
     ista_step = 0.1\nista_lambda = 0.1\n\
     [train]\nepochs = 3\nlr = 0.001\nbatch_size = 10\n",
    "[data]\nsource = \"mnist\"\ntrain_per_class = 5\n\
     [model]\nkind = \"transformer\"\nlayers = 1\nwidth = 8\nheads = 2\nmlp_width = 16\n\
     [train]\nepochs = 3\nlr = 0.001\nbatch_size = 10\n",
    // npy data.
    "[data]\nsource = \"npy\"\ntrain_x = \"x.npy\"\ntrain_y = \"y.npy\"\n\
     [model]\nkind = \"vector\"\nlayers = 1\n",
    "[data]\nsource = \"npy\"\ntrain_x = \"x.npy\"\ntrain_y = \"y.npy\"\n\
     test_x = \"x.npy\"\ntest_y = \"y.npy\"\n[model]\nkind = \"vector\"\nlayers = 1\n",
    // Synthetic subspaces.
    "[data]\nsource = \"subspaces\"\ntrain_per_class = 10\nsubspace_dims = [1, 2]\n\
     ambient_dim = 5\noutliers = 3\nnoise = 0.1\n[model]\nkind = \"vector\"\nlayers = 1\n",
];

const CLUSTERS: &[&str] = &[
    "seed = 0\n[data]\nsource = \"gaussian2d\"\ntrain_per_class = 10\n\
     [cluster]\nmethod = \"coding-length\"\neps_sq = 0.5\nk = 2\nsweep = [0.1, 0.5]\n",
    "[data]\nsource = \"mnist\"\ntrain_per_class = 5\n\
     [cluster]\nmethod = \"mcr2\"\neps_sq = 0.5\nk = 10\npasses = 3\n\
     [model]\nkind = \"mlp\"\nlayers = 1\nwidth = 8\nout_dim = 4\n\
     [selfsup]\nepochs = 1\nimages = 4\nviews = 2\neps_sq = 0.5\nlr = 0.001\n",
];

/// The value of `path` in a parsed configuration, as JSON (None where the
/// section or key is absent).
fn lookup(v: &serde_json::Value, path: &str) -> Option<serde_json::Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur.clone())
}

/// TOML text of a JSON scalar or list (what a parsed key holds).
fn as_toml(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// Whether the parsed value `got` is the TOML text `want`.
fn same(got: &serde_json::Value, want: &str) -> bool {
    let want: toml::Value =
        toml::from_str::<toml::Table>(&format!("v = {want}")).unwrap()["v"].clone();
    let want = serde_json::to_value(&want).unwrap();
    match (got.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        _ => {
            *got == want
                || got
                    .as_str()
                    .zip(want.as_str())
                    .is_some_and(|(g, w)| g.ends_with(w))
        }
    }
}

/// Parses `base` with `key = value` set (in the file when `in_file`, else
/// with `--set`): Ok(the parsed value of the key) or the error.
fn try_key(
    base: &str,
    cluster: bool,
    key: &str,
    value: &str,
    in_file: bool,
    dir: &Path,
) -> Result<Option<serde_json::Value>, ConfigError> {
    let (text, sets) = if in_file {
        let mut table: toml::Table = toml::from_str(base).unwrap();
        let parts: Vec<&str> = key.split('.').collect();
        let mut cur = &mut table;
        for p in &parts[..parts.len() - 1] {
            cur = cur
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .unwrap();
        }
        let v: toml::Value =
            toml::from_str::<toml::Table>(&format!("v = {value}")).unwrap()["v"].clone();
        cur.insert(parts[parts.len() - 1].to_string(), v);
        (toml::to_string(&table).unwrap(), vec![])
    } else {
        (base.to_string(), vec![format!("{key}={value}")])
    };
    let json = if cluster {
        serde_json::to_value(parse_cluster(&text, &sets, dir)?).unwrap()
    } else {
        serde_json::to_value(parse(&text, &sets, dir)?).unwrap()
    };
    Ok(lookup(&json, key))
}

#[test]
fn every_key_accepts_its_default_and_another_valid_value_in_a_file_and_with_set() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x: Vec<f32> = (0..40).map(|i| (i % 7) as f32 + 0.5).collect();
    redunet::data::npy::write_npy_f32(&d.join("x.npy"), &[10, 4], &x).unwrap();
    redunet::data::npy::write_npy_i64(&d.join("y.npy"), &[10], &[0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
        .unwrap();
    let reg = registry();
    let mut run_keys = Vec::new();
    keys(&reg, "RunConfig", "", &mut run_keys);
    let mut cluster_keys = Vec::new();
    keys(&reg, "ClusterRunConfig", "", &mut cluster_keys);
    // `[data]` and `[model]` are the run's types: their keys are tried in
    // the run configurations (a clustering refuses some of them, e.g.
    // `data.test_per_class`, by design).
    cluster_keys.retain(|k| !run_keys.iter().any(|r| r.path == k.path));
    assert!(run_keys.len() > 50, "{} keys traced", run_keys.len());
    for base in RUNS {
        parse(base, &[], d).unwrap_or_else(|e| panic!("base {base}: {e}"));
    }
    for base in CLUSTERS {
        parse_cluster(base, &[], d).unwrap_or_else(|e| panic!("base {base}: {e}"));
    }
    let mut failures = Vec::new();
    for (cluster, keys, bases) in [(false, &run_keys, RUNS), (true, &cluster_keys, CLUSTERS)] {
        for key in keys {
            // Per way of giving it: the values accepted and read back.
            let mut accepted: BTreeMap<bool, Vec<String>> = BTreeMap::new();
            let mut default_ok = true;
            for base in bases {
                // The key's default: what the base parses to without it
                // (where the type writes it back).
                let default = {
                    let mut t: toml::Table = toml::from_str(base).unwrap();
                    let parts: Vec<&str> = key.path.split('.').collect();
                    let section_absent = parts.len() > 1 && !t.contains_key(parts[0]);
                    if let Some(toml::Value::Table(s)) = t.get_mut(parts[0]) {
                        s.remove(parts[parts.len() - 1]);
                    } else if parts.len() == 1 {
                        t.remove(parts[0]);
                    }
                    let text = toml::to_string(&t).unwrap();
                    let parsed = if cluster {
                        parse_cluster(&text, &[], d).map(|c| serde_json::to_value(c).unwrap())
                    } else {
                        parse(&text, &[], d).map(|c| serde_json::to_value(c).unwrap())
                    };
                    match parsed {
                        Ok(v) if !section_absent => lookup(&v, &key.path),
                        _ => None,
                    }
                };
                for in_file in [true, false] {
                    if let Some(def) = &default {
                        let text = as_toml(def);
                        match try_key(base, cluster, &key.path, &text, in_file, d) {
                            Ok(Some(got)) if same(&got, &text) => {
                                accepted.entry(in_file).or_default().push(text.clone())
                            }
                            Ok(Some(got)) => {
                                default_ok = false;
                                failures.push(format!(
                                    "{}: default {text} read back as {got}",
                                    key.path
                                ))
                            }
                            // Written back as nothing: a default the type
                            // leaves out of its output.
                            Ok(None) => accepted.entry(in_file).or_default().push(text.clone()),
                            Err(e) => {
                                default_ok = false;
                                failures.push(format!(
                                    "{} = {text} (its default, {}): {e}",
                                    key.path,
                                    if in_file { "in the file" } else { "with --set" }
                                ))
                            }
                        }
                    }
                    for value in candidates(&reg, &key.format) {
                        match try_key(base, cluster, &key.path, &value, in_file, d) {
                            Ok(Some(got)) if same(&got, &value) => {
                                accepted.entry(in_file).or_default().push(value)
                            }
                            Ok(None) => accepted.entry(in_file).or_default().push(value),
                            Ok(Some(got)) => {
                                failures.push(format!("{} = {value} read back as {got}", key.path))
                            }
                            Err(ConfigError::Invalid(m)) if m.contains("unknown") => {
                                failures.push(format!("{} = {value}: {m}", key.path))
                            }
                            // A value the section refuses (out of range,
                            // not for this kind of network): fine, another
                            // must pass.
                            Err(_) => {}
                        }
                    }
                }
            }
            for in_file in [true, false] {
                let mut vals = accepted.get(&in_file).cloned().unwrap_or_default();
                vals.sort();
                vals.dedup();
                if vals.len() < 2 && default_ok {
                    failures.push(format!(
                        "{}: fewer than two values accepted {}: {vals:?}",
                        key.path,
                        if in_file { "in a file" } else { "with --set" }
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
