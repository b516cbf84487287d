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
//! Implemented so far:
//! - [`spectral`]: the 1D shift-invariant layer (construct from signals and
//!   memberships, apply with soft or true memberships, spectral rates), with
//!   the DFT as device matrix products;
//!
//! and the front ends, each a composable stage on any device, put together
//! by [`front`]:
//! - [`polar`]: images to `[radii, angles]` signals by bilinear sampling, so
//!   that a rotation by 2π/T is a cyclic shift by one;
//! - [`shift`]: cyclic shifts (1D) and translations (2D);
//! - [`lift`]: lifting by fixed random multi-channel circular convolutions
//!   followed by ReLU.
//!
//! Not implemented yet (the open issue "Shift-invariant ReduNet in the
//! spectral domain"): the 2D layer, networks with save/load, the `conv1d` /
//! `conv2d` model kinds of the command line and the invariance tables.

#![warn(missing_docs)]

pub mod front;
mod fused;
pub mod lift;
pub mod polar;
pub mod saved;
pub mod shift;
pub mod spectral;

pub use redunet_core;
