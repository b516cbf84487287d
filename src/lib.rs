//! # redunet
//!
//! ReduNet and the principle of maximal coding rate reduction (MCR²) on
//! Burn. This crate is a facade over the workspace's crates and hosts the
//! `redunet` command:
//!
//! - [`core`] (`redunet-core`): coding rates, SPD linear algebra, the vector
//!   ReduNet layer and network, classifiers;
//! - [`data`] (`redunet-data`): IDX, npy, Gaussian mixtures, splits;
//! - [`vision`] (`redunet-vision`): shift-invariant spectral layers;
//! - [`train`] (`redunet-train`): MCR² as a loss, back-propagation, saved
//!   models;
//! - [`experiment`] (`redunet-experiment`): configured runs, training and
//!   evaluation as library calls.

#![warn(missing_docs)]

pub use redunet_core as core;
pub use redunet_data as data;
pub use redunet_experiment as experiment;
pub use redunet_train as train;
pub use redunet_vision as vision;

pub mod alloc;
pub mod cli;
pub mod devices;
