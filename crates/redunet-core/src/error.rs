//! One error type for the library: every bad input is a typed value, never a
//! panic or a silent NaN.

use std::path::PathBuf;

/// What went wrong, as a value the caller can match on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tensors or stored parts whose shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A label at or beyond the number of classes.
    #[error("label {label} at index {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Position of the label.
        index: usize,
        /// The label.
        label: usize,
        /// Number of classes it had to be below.
        classes: usize,
    },
    /// As many labels (or membership rows) as samples were expected.
    #[error("{got} labels or membership rows for {expected} samples")]
    LabelCount {
        /// Number of samples.
        expected: usize,
        /// Number of labels or rows given.
        got: usize,
    },
    /// Memberships that are not a (soft) partition of the samples.
    #[error("invalid memberships: {0}")]
    Memberships(String),
    /// NaN or Inf where finite values are needed; the text says where
    /// (and, during construction, at which layer and stage).
    #[error("non-finite value (NaN or Inf) in {0}")]
    NonFinite(String),
    /// An input without samples (or an empty set of batches).
    #[error("empty input: {0}")]
    Empty(String),
    /// A Cholesky factorisation met a non-positive pivot.
    #[error(
        "matrix {index} of the batch is not numerically positive definite (pivot {pivot:e} at row {row})"
    )]
    NotPositiveDefinite {
        /// Matrix of the batch.
        index: usize,
        /// Row of the failed pivot.
        row: usize,
        /// The pivot.
        pivot: f64,
    },
    /// A setting out of its range, or a combination that cannot work.
    #[error("invalid parameter: {0}")]
    Parameter(String),
    /// The backend failed (e.g. reading a tensor back).
    #[error("device error: {0}")]
    Device(String),
    /// A stored model or checkpoint whose contents are inconsistent.
    #[error("corrupt model at {path}: {reason}")]
    CorruptModel {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading, writing or validating data and stored files.
    #[error(transparent)]
    Data(#[from] redunet_data::DataError),
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Says where a NaN/Inf appeared (e.g. "layer 3, construction"): the
    /// stage is added to [`Error::NonFinite`]; other errors pass unchanged.
    pub fn at(self, stage: impl std::fmt::Display) -> Self {
        match self {
            Error::NonFinite(what) => Error::NonFinite(format!("{what} ({stage})")),
            e => e,
        }
    }
}
