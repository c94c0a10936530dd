//! Client-side token buckets, one per API throttle group (ecs-behaviour.md §7.1).
//!
//! ECS throttles per account and Region with one token bucket per category of actions
//! ("All API actions in a category share the same token bucket"). ballast shares those
//! buckets with every other client in the account (the console, deploy pipelines, the ECS
//! agent's own calls are separate), so it keeps its own buckets at a *fraction* of the
//! published burst and refill (default [`DEFAULT_SHARE`]) and waits for a token before each
//! call instead of provoking ThrottlingException. The SDK's retries with backoff remain the
//! second line of defence. Pure: the time is passed in; the caller sleeps.

use std::collections::BTreeMap;

use crate::duration::Millis;

/// The share of each published limit ballast allows itself.
pub const DEFAULT_SHARE: f64 = 0.5;

/// A throttle group: the actions sharing one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// ECS cluster resource modify (StopTask, UpdateContainerInstancesState, Put/DeleteAttributes).
    EcsClusterModify,
    /// ECS cluster resource read (Describe/List container instances and tasks).
    EcsClusterRead,
    /// ECS service modify (UpdateService).
    EcsServiceModify,
    /// ECS service read (DescribeServices, ListServices).
    EcsServiceRead,
    /// ECS cluster read (DescribeClusters, ListClusters).
    EcsClusterList,
    /// ECS task protection (UpdateTaskProtection, GetTaskProtection).
    EcsTaskProtection,
    /// Everything else in ECS (DescribeTaskDefinition, tagging): not in the published table;
    /// treated like the cluster-read category.
    EcsOther,
    /// Auto Scaling (limits not published per action; a conservative bucket).
    AutoScaling,
    /// CloudWatch GetMetricData (50 transactions per second by default).
    CloudWatch,
}

impl Group {
    /// The group an operation belongs to.
    pub fn of(operation: &str) -> Group {
        match operation {
            "DeleteAttributes"
            | "PutAttributes"
            | "StopTask"
            | "UpdateContainerInstancesState"
            | "RunTask"
            | "StartTask" => Group::EcsClusterModify,
            "DescribeContainerInstances"
            | "DescribeTasks"
            | "ListAttributes"
            | "ListContainerInstances"
            | "ListTasks" => Group::EcsClusterRead,
            "CreateService" | "DeleteService" | "UpdateService" => Group::EcsServiceModify,
            "DescribeServices" | "ListServices" => Group::EcsServiceRead,
            "DescribeClusters" | "ListClusters" => Group::EcsClusterList,
            "UpdateTaskProtection" | "GetTaskProtection" => Group::EcsTaskProtection,
            "SetDesiredCapacity" | "TerminateInstanceInAutoScalingGroup" | "DescribeAutoScalingGroups" => {
                Group::AutoScaling
            }
            "GetMetricData" => Group::CloudWatch,
            _ => Group::EcsOther,
        }
    }

    /// The published (burst, refill per second).
    pub fn limits(self) -> (f64, f64) {
        match self {
            Group::EcsClusterModify => (100.0, 40.0),
            Group::EcsClusterRead => (100.0, 20.0),
            Group::EcsServiceModify => (50.0, 5.0),
            Group::EcsServiceRead => (100.0, 20.0),
            Group::EcsClusterList => (50.0, 20.0),
            Group::EcsTaskProtection => (200.0, 80.0),
            Group::EcsOther => (100.0, 20.0),
            Group::AutoScaling => (20.0, 2.0),
            Group::CloudWatch => (50.0, 50.0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Millis,
}

/// ballast's buckets.
#[derive(Debug, Clone)]
pub struct Buckets {
    share: f64,
    buckets: BTreeMap<Group, Bucket>,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::new(DEFAULT_SHARE)
    }
}

impl Buckets {
    /// Buckets at `share` (0 < share ≤ 1) of the published limits.
    pub fn new(share: f64) -> Buckets {
        Buckets { share: share.clamp(0.01, 1.0), buckets: BTreeMap::new() }
    }

    fn scaled(&self, g: Group) -> (f64, f64) {
        let (burst, refill) = g.limits();
        ((burst * self.share).max(1.0), refill * self.share)
    }

    /// Takes a token for `operation` at `now`; returns how long the caller must wait before
    /// sending it (zero when a token was there). The token is reserved either way, so calls
    /// that wait queue up fairly.
    pub fn take(&mut self, operation: &str, now: Millis) -> Millis {
        let g = Group::of(operation);
        let (burst, refill) = self.scaled(g);
        let b = self.buckets.entry(g).or_insert(Bucket { tokens: burst, at: now });
        if now > b.at {
            b.tokens = (b.tokens + (now - b.at).as_secs_f64() * refill).min(burst);
            b.at = now;
        }
        b.tokens -= 1.0;
        if b.tokens >= 0.0 { Millis(0) } else { Millis((-b.tokens / refill * 1000.0).ceil() as u64) }
    }
}

/// The server side of the same buckets: what ECS (and CloudWatch) accept per account and
/// Region at the published rates. A call that finds its bucket empty is refused
/// (ThrottlingException) and takes no token; categories without published limits (Auto
/// Scaling, and ECS actions outside the published table) are never refused.
#[derive(Debug, Clone, Default)]
pub struct ServerBuckets {
    buckets: BTreeMap<Group, Bucket>,
}

impl ServerBuckets {
    /// Whether `operation` is accepted at `now` (taking its token if so).
    pub fn admit(&mut self, operation: &str, now: Millis) -> bool {
        let g = Group::of(operation);
        if matches!(g, Group::EcsOther | Group::AutoScaling) {
            return true;
        }
        let (burst, refill) = g.limits();
        let b = self.buckets.entry(g).or_insert(Bucket { tokens: burst, at: now });
        if now > b.at {
            b.tokens = (b.tokens + (now - b.at).as_secs_f64() * refill).min(burst);
            b.at = now;
        }
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_paces_at_the_refill_rate() {
        let mut b = Buckets::new(0.5);
        // Cluster read: burst 50, refill 10/s at half share.
        for _ in 0..50 {
            assert_eq!(b.take("DescribeTasks", Millis(0)), Millis(0));
        }
        assert_eq!(b.take("ListTasks", Millis(0)), Millis(100));
        assert_eq!(b.take("ListTasks", Millis(0)), Millis(200));
        // Another group is untouched.
        assert_eq!(b.take("DescribeServices", Millis(0)), Millis(0));
        // After 10 s the bucket is full again (less the two owed tokens).
        assert_eq!(b.take("DescribeTasks", Millis::secs(10)), Millis(0));
    }

    #[test]
    fn the_server_refuses_beyond_the_published_burst_and_refills_at_the_published_rate() {
        let mut s = ServerBuckets::default();
        // Cluster resource read: burst 100, refill 20/s (ecs-behaviour.md §7.1).
        for _ in 0..100 {
            assert!(s.admit("ListTasks", Millis(0)));
        }
        assert!(!s.admit("DescribeTasks", Millis(0)));
        assert!(!s.admit("DescribeTasks", Millis(49)));
        assert!(s.admit("DescribeTasks", Millis(50)), "one token after 1/20 s");
        assert!(!s.admit("DescribeTasks", Millis(50)));
        // Service modify: burst 50, refill 5/s; another category is untouched meanwhile.
        for _ in 0..50 {
            assert!(s.admit("UpdateService", Millis(50)));
        }
        assert!(!s.admit("UpdateService", Millis(50)));
        assert!(s.admit("UpdateService", Millis(250)));
        // Unpublished categories are never refused.
        for _ in 0..1000 {
            assert!(s.admit("SetDesiredCapacity", Millis(0)));
        }
    }

    #[test]
    fn every_documented_operation_has_its_group() {
        assert_eq!(Group::of("UpdateContainerInstancesState"), Group::EcsClusterModify);
        assert_eq!(Group::of("UpdateService"), Group::EcsServiceModify);
        assert_eq!(Group::of("ListContainerInstances"), Group::EcsClusterRead);
        assert_eq!(Group::of("DescribeClusters"), Group::EcsClusterList);
        assert_eq!(Group::of("GetMetricData"), Group::CloudWatch);
        assert_eq!(Group::of("SetDesiredCapacity"), Group::AutoScaling);
    }
}
