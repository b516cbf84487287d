//! Run configuration: TOML with unknown keys rejected, and `--set key=value`
//! overrides applied before validation.

use std::path::{Path, PathBuf};

pub use redunet_experiment::cluster::ClusterRunConfig;
pub use redunet_experiment::config::*;

/// Errors in reading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (or is not a configuration-sized file).
    #[error("cannot read config {path}")]
    Io {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML.
    #[error("malformed TOML in {path}: {message}")]
    Toml {
        /// The configuration file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// TOML that is not a valid configuration.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A `--set` that is not `key=value`.
    #[error("bad --set '{0}': expected key=value with a dotted key such as model.layers=10")]
    Set(String),
}

/// Configurations are a few hundred bytes; anything past this is not one
/// (and `/dev/zero` must not hang the program).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_limited(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes: not a configuration"),
        ));
    }
    Ok(text)
}

/// Reads a configuration file and applies `--set` overrides.
pub fn load(path: &Path, sets: &[String]) -> Result<RunConfig, ConfigError> {
    with_path(path, read_limited(path), |text| {
        parse(text, sets, base_of(path))
    })
}

/// The job a configuration describes, for `redunet run`: a clustering (a
/// `[cluster]` section), a training run (a `[train]` section), or else a
/// forward construction.
#[derive(Debug)]
pub enum Job {
    /// `redunet run`'s own job: forward construction.
    Construct(RunConfig),
    /// What `redunet train` does.
    Train(RunConfig),
    /// What `redunet cluster` does.
    Cluster(ClusterRunConfig),
}

impl Job {
    /// What the job is, for people.
    pub fn what(&self) -> &'static str {
        match self {
            Job::Construct(_) => "a forward construction",
            Job::Train(_) => "training (a [train] section): running it as `redunet train` does",
            Job::Cluster(_) => {
                "clustering (a [cluster] section): running it as `redunet cluster` does"
            }
        }
    }
}

/// Reads a configuration of any job and applies `--set` overrides.
pub fn load_job(path: &Path, sets: &[String]) -> Result<Job, ConfigError> {
    with_path(path, read_limited(path), |text| {
        // The sections as the overrides leave them decide the job.
        let value = table(text, sets)?;
        let base = base_of(path);
        if value.contains_key("cluster") {
            return Ok(Job::Cluster(cluster_config(value, base)?));
        }
        let cfg = run_config(value, base)?;
        Ok(match cfg.train {
            Some(_) => Job::Train(cfg),
            None => Job::Construct(cfg),
        })
    })
}

/// Reads a clustering configuration (`redunet cluster`) and applies `--set`
/// overrides.
pub fn load_cluster(path: &Path, sets: &[String]) -> Result<ClusterRunConfig, ConfigError> {
    with_path(path, read_limited(path), |text| {
        parse_cluster(text, sets, base_of(path))
    })
}

fn base_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Names the file in read and TOML errors.
fn with_path<T>(
    path: &Path,
    text: std::io::Result<String>,
    parse: impl FnOnce(&str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let text = text.map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| match e {
        ConfigError::Toml { message, .. } => ConfigError::Toml {
            path: path.to_path_buf(),
            message,
        },
        other => other,
    })
}

/// The TOML of a configuration with the overrides applied.
fn table(text: &str, sets: &[String]) -> Result<toml::Table, ConfigError> {
    let mut value: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Toml {
        path: PathBuf::from("<config>"),
        message: e.to_string(),
    })?;
    for set in sets {
        apply_set(&mut value, set)?;
    }
    Ok(value)
}

/// Deserialises a configuration type, rejecting keys it does not hold:
/// sections with serde's `deny_unknown_fields` refuse them as they are
/// read, and the keys any other section (Burn's `Config` derive drops that
/// attribute) passes over are caught as they are ignored.
fn typed<T: serde::de::DeserializeOwned>(value: toml::Table) -> Result<T, ConfigError> {
    let mut ignored = Vec::new();
    let cfg: T = serde_ignored::deserialize(toml::Value::Table(value), |path| {
        // `Option` sections show as `?` in the path.
        let key = path.to_string().replace("?.", "");
        ignored.push(key);
    })
    .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
    match ignored.first() {
        Some(key) => Err(ConfigError::Invalid(format!("unknown key `{key}`"))),
        None => Ok(cfg),
    }
}

/// Resolves relative npy paths against the configuration's folder.
fn resolve_paths(data: &mut DataConfig, base: &Path) {
    for p in [
        &mut data.train_x,
        &mut data.train_y,
        &mut data.test_x,
        &mut data.test_y,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

/// Parses configuration text, applies overrides and validates. Relative npy
/// paths are resolved against `base`.
pub fn parse(text: &str, sets: &[String], base: &Path) -> Result<RunConfig, ConfigError> {
    run_config(table(text, sets)?, base)
}

/// [`parse`] for a clustering configuration.
pub fn parse_cluster(
    text: &str,
    sets: &[String],
    base: &Path,
) -> Result<ClusterRunConfig, ConfigError> {
    cluster_config(table(text, sets)?, base)
}

/// A run configuration from its TOML with the overrides applied.
fn run_config(mut value: toml::Table, base: &Path) -> Result<RunConfig, ConfigError> {
    // Burn's `Config` derive drops serde's field attributes: its sections
    // get their defaulted keys from the config type itself, and unknown
    // keys are caught as `typed` ignores them.
    if let Some(toml::Value::Table(lift)) = value.get_mut("lift") {
        let seed = LiftConfig::new(1, 1).seed as i64;
        lift.entry("seed").or_insert(toml::Value::Integer(seed));
    }
    let mut cfg: RunConfig = typed(value)?;
    resolve_paths(&mut cfg.data, base);
    validate(cfg.validate())?;
    Ok(cfg)
}

/// A clustering configuration from its TOML with the overrides applied.
fn cluster_config(value: toml::Table, base: &Path) -> Result<ClusterRunConfig, ConfigError> {
    let mut cfg: ClusterRunConfig = typed(value)?;
    resolve_paths(&mut cfg.data, base);
    validate(cfg.validate())?;
    Ok(cfg)
}

fn apply_set(table: &mut toml::Table, set: &str) -> Result<(), ConfigError> {
    let (key, raw) = set
        .split_once('=')
        .ok_or_else(|| ConfigError::Set(set.into()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(ConfigError::Set(set.into()));
    }
    // A TOML value if it parses as one (10, 0.5, true, [0, 1], "x"), else
    // the raw text as a string (so `data.source=mnist` works unquoted).
    let value = toml::from_str::<toml::Table>(&format!("v = {}", raw.trim()))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = table;
    for part in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::Invalid(format!("--set {key}: '{part}' is not a table")))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn validate(checked: redunet_core::Result<()>) -> Result<(), ConfigError> {
    checked.map_err(|e| match e {
        redunet_core::Error::Parameter(m)
        | redunet_core::Error::Data(redunet_data::DataError::Invalid(m)) => ConfigError::Invalid(m),
        e => ConfigError::Invalid(e.to_string()),
    })
}
