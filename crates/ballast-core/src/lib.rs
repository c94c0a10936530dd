//! ballast-core: the pure decision core of ballast.
//!
//! Nothing in this crate does IO, reads a clock or draws unseeded randomness: every decision is
//! a function of a [`model::Snapshot`], a configuration and the time passed in.
//!
//! # Layout
//! - [`model`]: the cluster snapshot (container instances, services, tasks) as ECS describes it.
//! - [`metrics`]: per-instance load measures, mean, sample standard deviation and COV.
//! - [`cql`]: the ECS cluster query language used by `memberOf` constraints.
//! - [`expr`]: the safe metric-arithmetic language of autoscale rules.
//! - [`placement`]: the ECS scheduler's placement rules (fit, ports, constraints, strategies,
//!   tie-breaking, scale-in choice), used by the simulator *and* the planner.
//! - [`planner`]: the rebalance planner (targets, moves, lower bound).
//! - [`view`]: what one run reads once (snapshot, groups, metrics) and decides from.
//! - [`jobs`]: recovery, spot-fallback, autoscale and rebalance, deciding together from one
//!   view (`jobs::decide`).
//! - [`plan`]: the run's plan as data (steps of guarded, awaited actions), and its rendering.
//! - [`action`]: the actions a plan consists of, each printable in one line.
//! - [`backend`]: the one IO seam (`Backend`) that the simulator and the AWS adapter implement.
//! - [`config`]: the validated rebalance configuration and seed 000's environment variables.
//! - [`url`]: metric URLs as RFC 3986 reads them (redaction, checks, encoding).
//! - [`throttle`]: client-side token buckets per API throttle group.
//! - [`duration`], [`rng`]: small shared helpers.

pub mod action;
pub mod autoscale;
pub mod backend;
pub mod config;
pub mod cql;
pub mod duration;
pub mod event;
pub mod expr;
pub mod fixtures;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod placement;
pub mod plan;
pub mod planner;
pub mod rng;
pub mod throttle;
pub mod url;
pub mod view;
