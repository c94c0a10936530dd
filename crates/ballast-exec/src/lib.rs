//! ballast-exec: the one executor and the one orchestration of a run, with no AWS SDK in
//! sight (it builds in seconds): the CLI, the Lambda function and the simulator's ballast
//! policy all run a cluster through [`orchestrate::run_cluster`].
//!
//! # Layout
//! - [`exec`]: every call to a cluster: bounded retries, the deadline, the run lease, dry run,
//!   the record of what was sent.
//! - [`lease`]: the run lease on the cluster's tags.
//! - [`execute`]: carries a plan out step by step (guards on fresh reads, waits, finally).
//! - [`orchestrate`]: read the view once, let the jobs decide together, render or execute.
//! - [`policies`]: ballast and the baselines as simulator controllers; [`baselines`]: the prior
//!   art's tools as their published sources run them.

pub mod baselines;
pub mod exec;
pub mod execute;
pub mod lease;
pub mod orchestrate;
pub mod policies;
