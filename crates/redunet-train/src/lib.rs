//! # redunet-train
//!
//! MCR² (maximal coding rate reduction) as a differentiable loss on Burn's
//! autodiff devices, and fine-tuning of forward-constructed ReduNets by
//! back-propagation (SGD with momentum, Adam), with the networks' E and C_j
//! as trainable parameters.
//!
//! - [`spectral`] and [`vector`]: the architectures of the invariant
//!   (`redunet_vision::network::SpectralReduNet`) and vector ReduNets — the
//!   constructed modules themselves are what is trained — for saving;
//!   [`model`]: the one saved-model format.
//! - [`transformer`]: CRATE, the white-box transformer (subspace
//!   self-attention and an ISTA step per layer, with per-layer coding rate
//!   and sparsity measurements), and the plain transformer beside it;
//!   [`lista`]: ISTA and LISTA.
//! - [`trainer`]: mini-batch training (Adam, SGD), schedules, evaluation,
//!   checkpoints; [`augment`]: random rotations, scalings and shifts of
//!   images; [`selfsup`]: self-supervised MCR², each image's views a class.

#![warn(missing_docs)]

pub use redunet_core;

pub mod augment;
pub mod learner;
pub mod lista;
pub mod loss;
pub mod mlp;
pub mod model;
pub mod selfsup;
pub mod spectral;
pub mod trainer;
pub mod transformer;
pub mod vector;

pub use loss::{Mcr2Loss, Mcr2LossConfig, Mcr2Output};
pub use model::{Architecture, Network, SavedModel};
