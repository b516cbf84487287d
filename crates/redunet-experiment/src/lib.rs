//! # redunet-experiment
//!
//! What `redunet run`, `train` and `eval` do, as library calls that return
//! typed results: a [`config::RunConfig`] names the data, the front end, the
//! network and its evaluation; the calls construct or train the network,
//! stream the evaluation sets through it, classify the features and return
//! the summary (and the features the plots are drawn from). Progress is
//! reported through the [`Progress`] trait; nothing here prints.

#![warn(missing_docs)]

pub mod apply;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod invariant;
pub mod plan;
pub mod report;
pub mod run;
pub mod train;

pub use config::RunConfig;
pub use report::{Progress, Silent};
