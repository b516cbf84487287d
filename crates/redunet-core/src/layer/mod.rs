//! ReduNet layers: each is constructed forward from the features of its
//! input and the training memberships, then applied to any batch.

pub mod moments;
pub mod vector;
