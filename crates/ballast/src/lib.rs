//! ballast: keeps Amazon ECS clusters (EC2 launch type) balanced, right-sized and afloat on
//! Spot capacity.
//!
//! # Layout
//! - [`cli`], [`commands`]: the command line (thin; all decisions are in `ballast-core`).
//! - [`exec`]: the executor (retries, deadline, dry run) every action goes through.
//! - [`jobs`]: the jobs (rebalance), written once against the `Backend` seam.
//! - [`runner`]: one cluster's run, shared by the CLI and the Lambda handler.
//! - [`lambda`]: the Lambda function: events, configuration from the environment, metrics.
//! - [`lease`]: the run lease that keeps two runs on one cluster from both acting.
//! - [`policies`]: ballast and the baselines as simulator controllers; [`baselines`]: the prior
//!   art's tools as published.
//! - [`config_file`] reads `ballast.yaml`.
//! - [`render`], [`html`]: tables, bars and the HTML report.

pub mod baselines;
pub mod cli;
pub mod commands;
pub mod config_file;
pub mod error;
pub mod exec;
pub mod html;
pub mod jobs;
pub mod lambda;
pub mod lease;
pub mod logging;
pub mod policies;
pub mod render;
pub mod runner;
