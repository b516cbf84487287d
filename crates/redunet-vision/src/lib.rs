//! # redunet-vision
//!
//! Shift-invariant (convolutional) ReduNet for multi-channel 1D signals
//! `[m, C, T]` (cyclic shifts; the polar transform of an image turns rotation
//! into a shift) and 2D images `[m, C, H, W]` (cyclic translations).
//!
//! Augmenting every sample with all of its cyclic shifts makes the layer
//! operators E and C_j block-circulant; the DFT diagonalises them, so a layer
//! needs one C×C Hermitian inverse per frequency instead of one CT×CT inverse.
//!
//! - [`spectral`]: the spectral layer as a Burn module (complex operators
//!   as parameters), its statistics summed over batches, the DFT as device
//!   matrix products, and [`spectral::SpectralNet`], a stack of layers;
//! - [`network`]: [`network::SpectralReduNet`], front end + layers, the
//!   module that is constructed, fine-tuned, saved and applied;
//! - [`front`]: the front ends, each a composable stage on any device:
//!   [`polar`] (images to `[radii, angles]` signals by bilinear sampling, so
//!   that a rotation by 2π/T is a cyclic shift by one), images kept as
//!   images, and [`lift`] (circular convolutions + ReLU);
//! - [`shift`]: cyclic shifts (1D) and translations (2D).

#![warn(missing_docs)]

mod fourier;
pub mod front;
mod fused;
pub mod lift;
pub mod network;
pub mod polar;
pub mod shift;
pub mod spectral;

pub use redunet_core;
