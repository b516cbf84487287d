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

#![warn(missing_docs)]

pub mod builtin;
pub mod gaussian;
pub mod idx;
pub mod memory;
pub mod npy;
pub mod output;
pub mod source;
pub mod split;
pub mod subspaces;

use std::path::PathBuf;

/// Errors from reading or validating data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An operating-system error; `action` is what failed: "read",
    /// "write", "create", …
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is damaged, forged or of a kind we do not read.
    #[error("corrupt or unsupported file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Arrays whose shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// NaN or Inf in the data.
    #[error("non-finite value (NaN or Inf) in {what} at flat index {index}")]
    NonFinite {
        /// The array.
        what: String,
        /// Flat index of the first bad value.
        index: usize,
    },
    /// A label that is not a non-negative integer in range.
    #[error(
        "invalid label {label} in {what} at index {index}: labels must be integers in 0..{max}"
    )]
    Label {
        /// The label array.
        what: String,
        /// Position of the label.
        index: usize,
        /// The label.
        label: i64,
        /// The bound it had to be below.
        max: i64,
    },
    /// A data set that is not installed.
    #[error("data set unavailable: {0}")]
    Unavailable(String),
    /// A request that cannot be met (bad settings, an unusable path).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A request larger than the memory the machine can give.
    #[error(
        "{what} needs {} of memory, but only {} are available: {hint}",
        memory::human(*needed),
        memory::human(*available)
    )]
    OutOfMemory {
        /// What would be allocated.
        what: String,
        /// Bytes it needs.
        needed: u64,
        /// Bytes available.
        available: u64,
        /// The setting or input to change.
        hint: String,
    },
    /// Output larger than the free space of the disk it is written to.
    #[error(
        "{what} needs {} of disk space, but only {} are free on the disk of {}: {hint}",
        memory::human(*needed),
        memory::human(*available),
        dir.display()
    )]
    OutOfDisk {
        /// What would be written.
        what: String,
        /// Bytes it needs.
        needed: u64,
        /// Bytes free for this process.
        available: u64,
        /// Where it would be written.
        dir: PathBuf,
        /// The setting to change.
        hint: String,
    },
    /// An output directory locked by another process.
    #[error("{path} is in use by another redunet process (it holds {lock})")]
    InUse {
        /// The output directory.
        path: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
}

/// The data crate's result type.
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
    /// The samples, row-major `[m, sample_shape…]`.
    pub features: Vec<f32>,
    /// Shape of one sample (e.g. `[784]`, `[28, 28]`, `[2]`).
    pub sample_shape: Vec<usize>,
    /// The label of each sample.
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

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
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
