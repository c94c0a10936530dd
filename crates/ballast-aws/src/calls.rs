//! The operations the adapter may call, the gate every call passes (client-side token
//! buckets), and the per-attempt call counter.
//!
//! [`OPERATIONS`] is the one list of what the adapter can call. [`Gate::pass`] refuses (in
//! debug builds, panics on) any operation not in it, the IAM policy is built from it, and the
//! tests check that the SDK really calls exactly these (the [`CountCalls`] interceptor sees
//! every attempt by its operation name).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use ballast_core::throttle::Buckets;

/// Which resource an operation acts on, for scoping the IAM policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `arn:…:cluster/NAME`.
    Cluster,
    /// `arn:…:container-instance/NAME/*`.
    ContainerInstance,
    /// `arn:…:service/NAME/*`.
    Service,
    /// `arn:…:task/NAME/*`.
    Task,
    /// `arn:…:service/NAME/*` and `arn:…:cluster/NAME` (the surge tag and the run lease).
    ServiceOrCluster,
    /// `*` (the action supports no resource-level permission; ListServices and ListTasks
    /// carry the `ecs:cluster` condition instead).
    AnyInCluster,
    /// `*`, no condition (task definitions, cluster listing, metrics).
    Any,
    /// `arn:…:autoScalingGroup:*:autoScalingGroupName/NAME`.
    AutoScalingGroup,
}

/// Why ballast calls an operation: the IAM policy grants an operation only when the
/// configuration runs a job that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Reading a cluster (every job).
    Read,
    /// Finding clusters that opt in with a tag (no clusters named).
    Discover,
    /// Any job that changes the cluster: the rebalance job (every method: recovery may undo
    /// what any method left), and the run lease every acting job takes.
    Rebalance,
    /// The autoscale and spot-fallback jobs (Auto Scaling).
    Scale,
    /// Reading CloudWatch metrics: autoscale rules with `cloudwatch` sources, and
    /// spot-fallback on a Spot Fleet (AWS/EC2Spot).
    Metrics,
}

/// One operation: its IAM prefix, name, why it is called and what it is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// IAM service prefix (`ecs`, `autoscaling`, `cloudwatch`).
    pub prefix: &'static str,
    /// API operation name.
    pub name: &'static str,
    /// Why.
    pub need: Need,
    /// Resource scoping.
    pub scope: Scope,
}

const fn op(prefix: &'static str, name: &'static str, need: Need, scope: Scope) -> Operation {
    Operation { prefix, name, need, scope }
}

/// Every operation the adapter can call. Resource types follow the Service Authorization
/// Reference for Amazon ECS (docs/aws.md, "IAM").
pub const OPERATIONS: &[Operation] = &[
    op("ecs", "ListContainerInstances", Need::Read, Scope::Cluster),
    op("ecs", "DescribeContainerInstances", Need::Read, Scope::ContainerInstance),
    op("ecs", "ListServices", Need::Read, Scope::AnyInCluster),
    op("ecs", "DescribeServices", Need::Read, Scope::Service),
    op("ecs", "ListTasks", Need::Read, Scope::AnyInCluster),
    op("ecs", "DescribeTasks", Need::Read, Scope::Task),
    op("ecs", "DescribeTaskDefinition", Need::Read, Scope::Any),
    op("ecs", "ListClusters", Need::Discover, Scope::Any),
    op("ecs", "DescribeClusters", Need::Read, Scope::Cluster),
    op("ecs", "DescribeCapacityProviders", Need::Read, Scope::Any),
    op("ecs", "UpdateContainerInstancesState", Need::Rebalance, Scope::ContainerInstance),
    op("ecs", "PutAttributes", Need::Rebalance, Scope::ContainerInstance),
    op("ecs", "DeleteAttributes", Need::Rebalance, Scope::ContainerInstance),
    op("ecs", "GetTaskProtection", Need::Rebalance, Scope::Task),
    op("ecs", "StopTask", Need::Rebalance, Scope::Task),
    op("ecs", "UpdateService", Need::Rebalance, Scope::Service),
    op("ecs", "UpdateTaskProtection", Need::Rebalance, Scope::Task),
    op("ecs", "TagResource", Need::Rebalance, Scope::ServiceOrCluster),
    op("ecs", "UntagResource", Need::Rebalance, Scope::ServiceOrCluster),
    op("autoscaling", "DescribeAutoScalingGroups", Need::Scale, Scope::Any),
    op("autoscaling", "SetDesiredCapacity", Need::Scale, Scope::AutoScalingGroup),
    op("autoscaling", "UpdateAutoScalingGroup", Need::Scale, Scope::AutoScalingGroup),
    op("autoscaling", "TerminateInstanceInAutoScalingGroup", Need::Scale, Scope::AutoScalingGroup),
    op("cloudwatch", "GetMetricData", Need::Metrics, Scope::Any),
    op("application-autoscaling", "DescribeScalableTargets", Need::Read, Scope::Any),
    op("application-autoscaling", "DescribeScalingPolicies", Need::Read, Scope::Any),
];

/// The entry for an operation name.
pub fn operation(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.name == name)
}

/// Every call passes here first: it must be a known operation, and it waits for a token of
/// its throttle group.
#[derive(Clone, Default)]
pub struct Gate {
    buckets: Arc<Mutex<Buckets>>,
}

impl Gate {
    /// Gates at `share` of the published limits.
    pub fn with_share(share: f64) -> Gate {
        Gate { buckets: Arc::new(Mutex::new(Buckets::new(share))) }
    }

    /// Waits until `op` may be sent.
    pub async fn pass(&self, op: &'static str) {
        debug_assert!(operation(op).is_some(), "{op} is not in calls::OPERATIONS (and so not in the IAM policy)");
        let wait = {
            let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            b.take(op, crate::wall_clock())
        };
        if wait.0 > 0 {
            tracing::debug!(operation = op, wait_ms = wait.0, "waiting for the client-side rate limit");
            tokio::time::sleep(std::time::Duration::from_millis(wait.0)).await;
        }
    }
}

/// Calls made, by operation name (every attempt: retries count).
#[derive(Debug, Default)]
pub struct CallLog {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl CallLog {
    /// A copy of the counts.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, op: &str) {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner()).entry(op.to_string()).or_default() += 1;
    }
}

/// An SDK interceptor that counts every attempt by operation name into a [`CallLog`].
#[derive(Debug, Clone)]
pub struct CountCalls(pub Arc<CallLog>);

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "ballast::CountCalls"
    }

    fn read_before_attempt(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            self.0.record(m.name());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_carried_by_a_listed_operation() {
        for name in ballast_core::action::Action::OPERATIONS {
            assert!(operation(name).is_some_and(|o| o.need != Need::Read), "{name}");
        }
        let mut names: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OPERATIONS.len(), "an operation is listed twice");
    }
}
