//! # redunet-core
//!
//! The numerics of maximal coding rate reduction (MCR²) and of
//! forward-constructed vector ReduNets, written once as Burn tensor operations
//! so that they run on whatever [`burn::tensor::Device`] they are handed
//! (flex or ndarray on the CPU, wgpu on a GPU).
//!
//! Conventions (see `REDUNET.md` in the project's reference): a batch of
//! features is `Z: [m, d]`, one sample per row; memberships are `Π: [m, k]`
//! with rows on the simplex; `eps_sq` is ε²; logs are natural.
//!
//! - [`cpu`]: the same formulas fused on host memory for CPU devices.
//! - [`linalg`]: batched log-determinant and inverse of symmetric
//!   positive-definite matrices (never through `det`).
//! - [`membership`]: validated hard labels or soft memberships.
//! - [`rates`]: R, R_c, ΔR and the closed-form gradient of ΔR.
//! - [`layer`]: the vector ReduNet layer (construct from data, then apply).
//! - [`network`]: a stack of layers built forward, with per-layer rates.
//! - [`classify`]: kNN and nearest-subspace classifiers on features.

#![warn(missing_docs)]

pub mod classify;
pub mod cluster;
pub mod coding;
pub mod config;
pub mod cpu;
pub mod error;
pub mod host;
pub mod kmeans;
pub mod layer;
pub mod linalg;
pub mod membership;
pub mod network;
pub mod rates;

pub use config::VectorReduNetConfig;
pub use error::{Error, Result};
pub use layer::moments::SecondMoments;
pub use layer::vector::{MembershipMode, VectorLayer, VectorLayerConfig};
pub use membership::Memberships;
pub use network::{LayerRecord, VectorReduNet};
pub use rates::{
    Rates, coding_rate, compressed_coding_rate, rate_reduction, rate_reduction_gradient,
};

pub use burn;
pub use burn::tensor::{Device, Tensor};
