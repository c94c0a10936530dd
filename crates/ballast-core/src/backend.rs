//! The one IO seam: read a snapshot, apply an action, tell and pass time.
//!
//! The simulator implements it over its discrete-event clock (sleeping advances simulated
//! time); the AWS adapter implements it over the SDK (sleeping waits). Everything above it —
//! the executor, the jobs, the policies — is written once against this trait.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::action::Action;
use crate::duration::Millis;
use crate::model::Snapshot;

/// One CloudWatch metric to read (GetMetricData's MetricStat).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricQuery {
    /// Namespace, e.g. `AWS/ECS`.
    pub namespace: String,
    /// Metric name.
    pub name: String,
    /// Dimensions (name → value).
    pub dimensions: BTreeMap<String, String>,
    /// Statistic: Average, Sum, Minimum, Maximum or SampleCount.
    pub statistic: String,
    /// Period, seconds (a multiple of 60).
    pub period_s: u32,
}

/// What a backend call can fail with.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum BackendError {
    /// ThrottlingException ("Rate exceeded").
    #[error("{operation}: throttled (Rate exceeded)")]
    Throttled {
        /// The operation.
        operation: String,
    },
    /// A 5xx from the service.
    #[error("{operation}: server error: {message}")]
    Server {
        /// The operation.
        operation: String,
        /// What the service said.
        message: String,
    },
    /// The call timed out.
    #[error("{operation}: timed out")]
    Timeout {
        /// The operation.
        operation: String,
    },
    /// The target no longer exists (a vanished instance, service or task).
    #[error("{operation}: not found: {what}")]
    NotFound {
        /// The operation.
        operation: String,
        /// What was missing.
        what: String,
    },
    /// The service refused the request as invalid.
    #[error("{operation}: rejected: {message}")]
    Invalid {
        /// The operation.
        operation: String,
        /// Why.
        message: String,
    },
    /// The request conflicts with what the service is doing (Auto Scaling's
    /// ScalingActivityInProgress during a cooldown, ResourceContention): a normal refusal.
    #[error("{operation}: refused for now: {message}")]
    Conflict {
        /// The operation.
        operation: String,
        /// What the service said.
        message: String,
    },
    /// The credentials are missing, expired or lack a permission.
    #[error("{operation}: access denied: {message}")]
    Denied {
        /// The operation.
        operation: String,
        /// What the service said.
        message: String,
    },
    /// The process was killed (the simulator's crash matrix); nothing after it runs.
    #[error("process killed (crash point)")]
    Crashed,
}

impl BackendError {
    /// Whether retrying the same call may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, BackendError::Throttled { .. } | BackendError::Server { .. } | BackendError::Timeout { .. })
    }
}

/// A cluster backend: the simulator or AWS.
pub trait Backend {
    /// Reads the whole cluster.
    fn snapshot(&mut self, cluster: &str) -> Result<Snapshot, BackendError>;
    /// Applies one action.
    fn apply(&mut self, cluster: &str, action: &Action) -> Result<(), BackendError>;
    /// The latest complete datapoint of each query (`None`: no datapoint, which is unknown,
    /// never zero), in the order asked.
    fn metric_data(&mut self, queries: &[MetricQuery]) -> Result<Vec<Option<f64>>, BackendError>;
    /// The backend's clock.
    fn now(&self) -> Millis;
    /// Lets `d` pass (simulated or real).
    fn sleep(&mut self, d: Millis) -> Result<(), BackendError>;
}
