//! The one IO seam: read a snapshot, apply an action, tell and pass time.
//!
//! The simulator implements it over its discrete-event clock (sleeping advances simulated
//! time); the AWS adapter implements it over the SDK (sleeping waits). Everything above it —
//! the executor, the jobs, the policies — is written once against this trait.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::action::Action;
use crate::duration::Millis;
use crate::model::{ContainerInstance, InstanceStatus, Service, Snapshot};

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

/// One HTTP JSON metric request (seed 003's `third_party` source).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HttpRequest {
    /// The URL, credentials (`user:password@`) included; log it only through
    /// `autoscale::redact_url`.
    pub url: String,
    /// `Some(body)`: POST this JSON body; `None`: GET.
    pub post: Option<String>,
}

/// The most an HTTP metric answer may hold; a longer body is refused unread.
pub const HTTP_BODY_LIMIT: usize = 1 << 20;

/// How long an HTTP metric request may take, connection to last byte.
pub const HTTP_TIMEOUT: Millis = Millis::secs(5);

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
    /// The service could not be reached (no connection, no name resolution, TLS failed):
    /// nothing was answered. Retryable, like a 5xx, but named for what it is.
    #[error("{operation}: could not reach the service: {message}")]
    Network {
        /// The operation.
        operation: String,
        /// What failed, in one line.
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
        matches!(
            self,
            BackendError::Throttled { .. }
                | BackendError::Server { .. }
                | BackendError::Network { .. }
                | BackendError::Timeout { .. }
        )
    }
}

/// An Auto Scaling group as DescribeAutoScalingGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupInfo {
    /// Name.
    pub name: String,
    /// Desired capacity.
    pub desired: u32,
    /// Minimum.
    pub min: u32,
    /// Maximum.
    pub max: u32,
    /// Its instances (launching ones included).
    pub instances: Vec<GroupInstance>,
    /// Its default cooldown (DefaultCooldown; AWS's default is 300 s), when known.
    pub cooldown: Option<Millis>,
}

/// Where a group's instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Pending: launching, not yet in service.
    Launching,
    /// InService.
    InService,
    /// Terminating, or interrupted (a Spot notice).
    Leaving,
}

/// One instance of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    /// EC2 instance id.
    pub ec2_instance_id: String,
    /// Its lifecycle state.
    pub lifecycle: Lifecycle,
}

impl GroupInfo {
    /// Instances in a lifecycle state.
    pub fn count(&self, l: Lifecycle) -> u32 {
        self.instances.iter().filter(|i| i.lifecycle == l).count() as u32
    }
}

/// The API calls reading one snapshot costs, by operation: for `instances` container
/// instances, `services` services, `tasks` tasks with desiredStatus RUNNING and `new_defs`
/// task definitions not described before. Lists page at 100 (at least one page each);
/// describes batch at 100 instances, 10 services, 100 tasks. The AWS adapter makes exactly
/// these calls (its tests check it) and the simulator counts them.
pub fn snapshot_calls(instances: usize, services: usize, tasks: usize, new_defs: usize) -> BTreeMap<&'static str, u64> {
    let pages = |n: usize, per: usize| n.div_ceil(per).max(1) as u64;
    let batches = |n: usize, per: usize| n.div_ceil(per) as u64;
    [
        ("ListContainerInstances", pages(instances, 100)),
        ("DescribeContainerInstances", batches(instances, 100)),
        ("ListServices", pages(services, 100)),
        ("DescribeServices", batches(services, 10)),
        ("ListTasks", pages(tasks, 100)),
        ("DescribeTasks", batches(tasks, 100)),
        ("DescribeTaskDefinition", new_defs as u64),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect()
}

/// One task's scale-in protection as GetTaskProtection answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskProtection {
    /// Protection is on (and not expired).
    pub enabled: bool,
    /// When it expires (epoch milliseconds on AWS, simulated time in the simulator), when
    /// the backend knows.
    pub expires: Option<Millis>,
}

/// Tasks one GetTaskProtection call may name.
pub const PROTECTION_BATCH: usize = 10;

/// A cluster backend: the simulator or AWS.
pub trait Backend {
    /// Reads the whole cluster.
    fn snapshot(&mut self, cluster: &str) -> Result<Snapshot, BackendError>;
    /// Applies one action.
    fn apply(&mut self, cluster: &str, action: &Action) -> Result<(), BackendError>;
    /// The cluster's resource tags (DescribeClusters with TAGS): where the run lease lives.
    fn cluster_tags(&mut self, cluster: &str) -> Result<BTreeMap<String, String>, BackendError>;
    /// One Auto Scaling group (DescribeAutoScalingGroups).
    fn group(&mut self, name: &str) -> Result<GroupInfo, BackendError>;
    /// The latest complete datapoint of each query (`None`: no datapoint, which is unknown,
    /// never zero), in the order asked.
    fn metric_data(&mut self, queries: &[MetricQuery]) -> Result<Vec<Option<f64>>, BackendError>;
    /// One HTTP JSON metric request: the body of a 2xx answer, at most [`HTTP_BODY_LIMIT`]
    /// bytes, within [`HTTP_TIMEOUT`]. A longer body is `Invalid`, a slow one `Timeout`, any
    /// other status `Server` (5xx) or `Invalid`. Errors never hold the URL's credentials.
    fn http(&mut self, req: &HttpRequest) -> Result<Vec<u8>, BackendError>;
    /// The backend's clock.
    fn now(&self) -> Millis;
    /// Lets `d` pass (simulated or real).
    fn sleep(&mut self, d: Millis) -> Result<(), BackendError>;
    /// The cluster's container instances with one status, and nothing else
    /// (ListContainerInstances filtered by status, DescribeContainerInstances per 100): what a
    /// tool that reads only instances pays. By default, filtered from a whole snapshot.
    fn instances(&mut self, cluster: &str, status: InstanceStatus) -> Result<Vec<ContainerInstance>, BackendError> {
        Ok(self.snapshot(cluster)?.instances.into_iter().filter(|i| i.status == status).collect())
    }
    /// One container instance (DescribeContainerInstances of one ARN); `None` when it is gone.
    /// By default, found in a whole snapshot.
    fn instance(&mut self, cluster: &str, arn: &str) -> Result<Option<ContainerInstance>, BackendError> {
        Ok(self.snapshot(cluster)?.instances.into_iter().find(|i| i.arn == arn))
    }
    /// One service and its live tasks (DescribeServices, ListTasks of the service,
    /// DescribeTasks per 100): what a guard on that service reads. `None`: no such service.
    /// By default, from a whole snapshot.
    fn service_state(
        &mut self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<crate::model::ServiceState>, BackendError> {
        let snap = self.snapshot(cluster)?;
        Ok(snap.service(service).cloned().map(|svc| crate::model::ServiceState {
            tasks: snap.service_tasks(service).cloned().collect(),
            service: svc,
        }))
    }
    /// The cluster's services and nothing else (ListServices, DescribeServices per 10). By
    /// default, from a whole snapshot.
    fn services(&mut self, cluster: &str) -> Result<Vec<Service>, BackendError> {
        Ok(self.snapshot(cluster)?.services)
    }
    /// The scale-in protection of tasks (GetTaskProtection, [`PROTECTION_BATCH`] tasks per
    /// call). Snapshots and service reads do not carry it (DescribeTasks does not show it);
    /// this does. A task the answer omits (stopped meanwhile) is unprotected. By default, the
    /// snapshot's `protected` flags, with no expiry.
    fn task_protection(
        &mut self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<BTreeMap<String, TaskProtection>, BackendError> {
        let snap = self.snapshot(cluster)?;
        Ok(task_arns
            .iter()
            .map(|a| {
                let enabled = snap.tasks.iter().any(|t| &t.arn == a && t.protected);
                (a.clone(), TaskProtection { enabled, expires: None })
            })
            .collect())
    }
    /// What else scales these services' desired counts (Application Auto Scaling's scalable
    /// targets, DescribeScalableTargets), as words per service; a service nothing scales is
    /// left out. Read only for the services a plan would change. By default, nothing.
    fn scaled_by(&mut self, cluster: &str, services: &[String]) -> Result<BTreeMap<String, Vec<String>>, BackendError> {
        let _ = (cluster, services);
        Ok(BTreeMap::new())
    }
    /// Every datapoint of one metric over the last `window`, oldest first, partial periods
    /// included (GetMetricStatistics, one metric per call). ballast itself reads
    /// [`Backend::metric_data`]; this serves the prior art's published code in the simulator.
    fn metric_statistics(&mut self, q: &MetricQuery, window: Millis) -> Result<Vec<(Millis, f64)>, BackendError> {
        let _ = (q, window);
        Err(BackendError::Invalid {
            operation: "GetMetricStatistics".into(),
            message: "this backend serves GetMetricData only".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_cost_follows_the_api_limits() {
        let c = snapshot_calls(3, 1, 7, 2);
        assert_eq!(c.values().sum::<u64>(), 8);
        let c = snapshot_calls(1000, 40, 20_000, 0);
        assert_eq!(c["ListContainerInstances"], 10);
        assert_eq!(c["DescribeServices"], 4);
        assert_eq!(c["ListTasks"], 200);
        assert_eq!(c.values().sum::<u64>(), 10 + 10 + 1 + 4 + 200 + 200);
        // An empty cluster still lists once each.
        assert_eq!(snapshot_calls(0, 0, 0, 0).values().sum::<u64>(), 3);
    }
}
