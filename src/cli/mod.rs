//! The `redunet` command: configuration, the run pipeline, plots.

pub mod cluster;
pub mod config;
pub mod plots;
pub mod remote;
pub mod report;
pub mod run;
pub mod train;
