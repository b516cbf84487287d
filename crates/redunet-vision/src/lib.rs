//! # redunet-vision
//!
//! Shift-invariant (convolutional) ReduNet layers computed in the spectral
//! domain, for multi-channel 1D signals `[m, C, T]` (cyclic shifts, e.g. the
//! polar transform of an image turns rotation into a shift) and 2D images
//! `[m, C, H, W]` (cyclic translations).
//!
//! Augmenting every sample with all of its cyclic shifts makes the layer
//! operators E and C_j block-circulant; the DFT diagonalises them, so a layer
//! needs one C×C Hermitian inverse per frequency instead of one CT×CT inverse.
//! The front ends — lifting by fixed random circular convolutions plus ReLU,
//! the polar transform, cyclic shifts and translations — live here too.
//!
//! Status: this crate is a placeholder in the workspace layout. Its content is
//! the subject of the "Shift-invariant ReduNet in the spectral domain" issue
//! and is not implemented yet; nothing here pretends otherwise.

pub use redunet_core;
