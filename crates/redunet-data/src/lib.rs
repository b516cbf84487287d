//! # redunet-data
//!
//! Host-side data for ReduNet experiments, free of any tensor backend:
//!
//! - [`idx`]: MNIST-format IDX files (raw or gzip), e.g. MNIST, Fashion-MNIST;
//! - [`npy`]: NumPy `.npy` arrays (features `[m, …]` in f32/f64, labels of any
//!   integer type), read and written;
//! - [`gaussian`]: the ReduNet paper's seeded 2D and 3D Gaussian mixtures;
//! - [`split`]: the deterministic per-class train/test selection used by the
//!   official code (first `train_per_class` of each class in file order train,
//!   the next `test_per_class` test);
//! - [`source`]: the `[data]` section of a configuration and the split it
//!   selects;
//! - [`builtin`]: the vendored 10k-digit MNIST subset and the Debian
//!   `dataset-fashion-mnist` package.
//!
//! Every reader returns a typed [`DataError`] on missing, truncated or corrupt
//! input; nothing here panics on bad files.

pub mod builtin;
pub mod gaussian;
pub mod idx;
pub mod memory;
pub mod npy;
pub mod output;
pub mod source;
pub mod split;

use std::path::PathBuf;

/// Errors from reading or validating data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// `action` is what failed: "read", "write", "create", …
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt or unsupported file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("non-finite value (NaN or Inf) in {what} at flat index {index}")]
    NonFinite { what: String, index: usize },
    #[error(
        "invalid label {label} in {what} at index {index}: labels must be integers in 0..{max}"
    )]
    Label {
        what: String,
        index: usize,
        label: i64,
        max: i64,
    },
    #[error("data set unavailable: {0}")]
    Unavailable(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(
        "{what} needs {} of memory, but only {} are available: {hint}",
        memory::human(*needed),
        memory::human(*available)
    )]
    OutOfMemory {
        what: String,
        needed: u64,
        available: u64,
        hint: String,
    },
    #[error("{path} is in use by another redunet process (it holds {lock})")]
    InUse { path: PathBuf, lock: PathBuf },
}

pub type Result<T> = std::result::Result<T, DataError>;

/// Reads a whole file, after checking that it and the values decoded from
/// it (up to four times its size, e.g. bytes to f32) fit in memory.
pub fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(io_error("read", path))?;
    // A device or a pipe (`/dev/zero`) has no size to check and no end.
    if !meta.is_file() {
        return Err(DataError::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let len = meta.len();
    memory::check(
        len.saturating_mul(5),
        &format!("reading {}", path.display()),
        "use a smaller file",
    )?;
    std::fs::read(path).map_err(io_error("read", path))
}

/// The [`DataError::Io`] of a failed `action` ("read", "write", …) on `path`.
pub fn io_error(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.to_path_buf();
    move |source| DataError::Io {
        action,
        path,
        source,
    }
}

/// A labelled data set held on the host: `features` is row-major `[m, dim…]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub features: Vec<f32>,
    /// Shape of one sample (e.g. `[784]`, `[28, 28]`, `[2]`).
    pub sample_shape: Vec<usize>,
    pub labels: Vec<usize>,
}

impl Dataset {
    /// Builds a data set, checking that features and labels agree and that
    /// every value is finite.
    pub fn new(features: Vec<f32>, sample_shape: Vec<usize>, labels: Vec<usize>) -> Result<Self> {
        let dim: usize = sample_shape.iter().product();
        if dim == 0 {
            return Err(DataError::Shape("samples have zero size".into()));
        }
        if features.len() != dim * labels.len() {
            return Err(DataError::Shape(format!(
                "{} feature values do not make {} samples of shape {:?}",
                features.len(),
                labels.len(),
                sample_shape
            )));
        }
        if let Some(index) = features.iter().position(|v| !v.is_finite()) {
            return Err(DataError::NonFinite {
                what: "features".into(),
                index,
            });
        }
        Ok(Self {
            features,
            sample_shape,
            labels,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of values per sample.
    pub fn dim(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// One more than the largest label (0 for an empty set).
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&l| l + 1)
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Self {
        let dim = self.dim();
        let mut features = Vec::with_capacity(indices.len() * dim);
        for &i in indices {
            features.extend_from_slice(&self.features[i * dim..(i + 1) * dim]);
        }
        Self {
            features,
            sample_shape: self.sample_shape.clone(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}
