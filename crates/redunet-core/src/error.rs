//! One error type for the library: every bad input is a typed value, never a
//! panic or a silent NaN.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("label {label} at index {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        index: usize,
        label: usize,
        classes: usize,
    },
    #[error("{got} labels or membership rows for {expected} samples")]
    LabelCount { expected: usize, got: usize },
    #[error("invalid memberships: {0}")]
    Memberships(String),
    #[error("non-finite value (NaN or Inf) in {0}")]
    NonFinite(String),
    #[error("empty input: {0}")]
    Empty(String),
    #[error(
        "matrix {index} of the batch is not numerically positive definite (pivot {pivot:e} at row {row})"
    )]
    NotPositiveDefinite {
        index: usize,
        row: usize,
        pivot: f64,
    },
    #[error("invalid parameter: {0}")]
    Parameter(String),
    #[error("device error: {0}")]
    Device(String),
    #[error("corrupt model at {path}: {reason}")]
    CorruptModel { path: PathBuf, reason: String },
    #[error(transparent)]
    Data(#[from] redunet_data::DataError),
}

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
