//! # redunet-train
//!
//! MCR² (maximal coding rate reduction) as a differentiable loss on Burn's
//! autodiff devices, and fine-tuning of forward-constructed ReduNets by
//! back-propagation (SGD with momentum, Adam), with the networks' E and C_j
//! as trainable parameters.
//!
//! Status: this crate is a placeholder in the workspace layout. Its content is
//! the subject of the "MCR² as a differentiable loss" issue and is not
//! implemented yet; the closed-form gradient of ΔR already lives in
//! `redunet_core::rates::rate_reduction_gradient`.

pub use redunet_core;
