//! ballast: keeps Amazon ECS clusters (EC2 launch type) balanced, right-sized and afloat on
//! Spot capacity.
//!
//! # Layout
//! - [`cli`], [`commands`]: the command line (thin: the jobs decide in `ballast-core`, one
//!   orchestration and one executor in `ballast-exec` carry the plan out).
//! - [`lambda`]: the Lambda function: events, configuration from the environment, metrics.
//! - [`config_file`] reads `ballast.yaml`.
//! - [`render`], [`html`]: tables, bars and the HTML report.
//! - [`stdout`]: output that survives a closed pipe ([`out!`], [`outln!`]).

pub mod cli;
pub mod commands;
pub mod config_file;
pub mod error;
pub mod html;
pub mod lambda;
pub mod logging;
pub mod render;
pub mod stdout;
