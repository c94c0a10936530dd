//! ballast-sim: a deterministic discrete-event twin of Amazon ECS (EC2 launch type).
//!
//! It follows `reference/ecs-behaviour.md`; every choice that reference leaves open is made
//! once and written down in `docs/simulator.md`. No wall clock, no unseeded randomness: the
//! same scenario, seed and policy give the same report, byte for byte.
//!
//! # Layout
//! - [`scenario`]: scenario format v1, strict, with file:line:col errors.
//! - [`catalogue`]: built-in instance types and prices.
//! - [`engine`]: instances, groups, the event queue and scenario events.
//! - [`scheduler`]: the ECS service scheduler (replica, daemon, standalone).
//! - [`backend`]: the simulator behind the `Backend` seam, with API call counting and faults.
//! - [`report`]: what the simulation report measures.
//! - [`driver`]: runs a scenario with a controller.
//! - [`generate`]: generated scenarios for property tests and benchmarks.
//! - [`variants`]: generated variants of a scenario (`simulate --variants`).

pub mod api;
pub mod backend;
pub mod catalogue;
pub mod cloudwatch;
pub mod driver;
pub mod engine;
pub mod generate;
pub mod invariants;
pub mod report;
pub mod scenario;
pub mod scheduler;
pub mod variants;

pub use driver::{Controller, Nothing, Outcome, RunOptions, simulate};
pub use engine::Sim;
pub use scenario::{Scenario, ScenarioError};
