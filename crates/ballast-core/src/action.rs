//! Actions: what ballast asks a backend to do. Each prints as one line with its reason.

use std::fmt;

use serde::Serialize;

use crate::model::InstanceStatus;
use crate::model::short_id as short;

/// One change to a cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// UpdateContainerInstancesState (at most 10 instances per call).
    SetInstanceState {
        /// Container instance ARNs.
        instance_arns: Vec<String>,
        /// ACTIVE or DRAINING.
        status: InstanceStatus,
        /// Why.
        reason: String,
    },
    /// PutAttributes on a container instance (the ownership mark).
    PutAttribute {
        /// Container instance ARN.
        instance_arn: String,
        /// Attribute name.
        name: String,
        /// Attribute value.
        value: String,
    },
    /// DeleteAttributes on a container instance.
    DeleteAttribute {
        /// Container instance ARN.
        instance_arn: String,
        /// Attribute name.
        name: String,
    },
    /// StopTask with a reason.
    StopTask {
        /// Task ARN.
        task_arn: String,
        /// The reason ECS records.
        reason: String,
    },
    /// UpdateService desiredCount.
    SetServiceDesired {
        /// Service name.
        service: String,
        /// New desired count.
        desired: u32,
        /// Why.
        reason: String,
    },
    /// UpdateService forceNewDeployment (same task definition).
    ForceNewDeployment {
        /// Service name.
        service: String,
        /// Why.
        reason: String,
    },
    /// UpdateTaskProtection (at most 10 tasks per call).
    SetTaskProtection {
        /// Task ARNs.
        task_arns: Vec<String>,
        /// On or off.
        protected: bool,
        /// Expiry when on, minutes.
        expires_in_minutes: u32,
    },
    /// TagResource on a service.
    TagService {
        /// Service name.
        service: String,
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    },
    /// UntagResource on a service.
    UntagService {
        /// Service name.
        service: String,
        /// Tag key.
        key: String,
    },
    /// TagResource on the cluster (the run lease).
    TagCluster {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    },
    /// UntagResource on the cluster.
    UntagCluster {
        /// Tag key.
        key: String,
    },
    /// Auto Scaling SetDesiredCapacity.
    SetGroupDesired {
        /// Auto Scaling group name.
        group: String,
        /// New desired capacity.
        desired: u32,
        /// HonorCooldown: refused (not an error) while the group's cooldown runs.
        honor_cooldown: bool,
        /// Why.
        reason: String,
    },
    /// Auto Scaling UpdateAutoScalingGroup MinSize and MaxSize (only when the autoscale
    /// configuration sets both). Auto Scaling moves a desired capacity outside the new range
    /// to its nearest bound.
    SetGroupLimits {
        /// Auto Scaling group name.
        group: String,
        /// MinSize.
        min: u32,
        /// MaxSize.
        max: u32,
    },
    /// Auto Scaling TerminateInstanceInAutoScalingGroup.
    TerminateInstance {
        /// EC2 instance id.
        ec2_instance_id: String,
        /// ShouldDecrementDesiredCapacity (false: the group launches a replacement).
        decrement: bool,
        /// Why.
        reason: String,
    },
}

impl Action {
    /// Every operation an action can be carried by (for the IAM policy and call accounting).
    pub const OPERATIONS: [&'static str; 11] = [
        "UpdateContainerInstancesState",
        "PutAttributes",
        "DeleteAttributes",
        "StopTask",
        "UpdateService",
        "UpdateTaskProtection",
        "TagResource",
        "UntagResource",
        "SetDesiredCapacity",
        "UpdateAutoScalingGroup",
        "TerminateInstanceInAutoScalingGroup",
    ];

    /// Whether sending the action twice has the effect of sending it once. Every action sets
    /// a state (a status, a count, a tag) except a forced deployment, which starts one more
    /// deployment each time. A call that timed out or failed with a 5xx may have taken effect,
    /// so only an idempotent action is sent again after one; a non-idempotent one is retried
    /// only after throttling (a refusal, which never takes effect).
    pub fn idempotent(&self) -> bool {
        !matches!(self, Action::ForceNewDeployment { .. })
    }

    /// The AWS API operation that carries the action.
    pub fn operation(&self) -> &'static str {
        match self {
            Action::SetInstanceState { .. } => "UpdateContainerInstancesState",
            Action::PutAttribute { .. } => "PutAttributes",
            Action::DeleteAttribute { .. } => "DeleteAttributes",
            Action::StopTask { .. } => "StopTask",
            Action::SetServiceDesired { .. } | Action::ForceNewDeployment { .. } => "UpdateService",
            Action::SetTaskProtection { .. } => "UpdateTaskProtection",
            Action::TagService { .. } | Action::TagCluster { .. } => "TagResource",
            Action::UntagService { .. } | Action::UntagCluster { .. } => "UntagResource",
            Action::SetGroupDesired { .. } => "SetDesiredCapacity",
            Action::SetGroupLimits { .. } => "UpdateAutoScalingGroup",
            Action::TerminateInstance { .. } => "TerminateInstanceInAutoScalingGroup",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SetInstanceState { instance_arns, status, reason } => {
                let ids: Vec<&str> = instance_arns.iter().map(|a| short(a)).collect();
                write!(f, "set {} {}: {reason}", ids.join(","), status.as_str())
            }
            Action::PutAttribute { instance_arn, name, value } => {
                write!(f, "mark {} {name}={value}", short(instance_arn))
            }
            Action::DeleteAttribute { instance_arn, name } => write!(f, "unmark {} {name}", short(instance_arn)),
            Action::StopTask { task_arn, reason } => write!(f, "stop task {}: {reason}", short(task_arn)),
            Action::SetServiceDesired { service, desired, reason } => {
                write!(f, "set {service} desired={desired}: {reason}")
            }
            Action::ForceNewDeployment { service, reason } => write!(f, "redeploy {service}: {reason}"),
            Action::SetTaskProtection { task_arns, protected, .. } => write!(
                f,
                "{} scale-in protection on {} task(s)",
                if *protected { "set" } else { "clear" },
                task_arns.len()
            ),
            Action::TagService { service, key, value } => write!(f, "tag {service} {key}={value}"),
            Action::UntagService { service, key } => write!(f, "untag {service} {key}"),
            Action::TagCluster { key, value } => write!(f, "tag the cluster {key}={value}"),
            Action::UntagCluster { key } => write!(f, "untag the cluster {key}"),
            Action::SetGroupDesired { group, desired, honor_cooldown, reason } => write!(
                f,
                "set group {group} desired={desired}{}: {reason}",
                if *honor_cooldown { " (honouring its cooldown)" } else { "" }
            ),
            Action::SetGroupLimits { group, min, max } => {
                write!(f, "set group {group} min={min} max={max}: as the autoscale configuration sets them")
            }
            Action::TerminateInstance { ec2_instance_id, decrement, reason } => {
                write!(f, "terminate {ec2_instance_id}{}: {reason}", if *decrement { " and lower desired" } else { "" })
            }
        }
    }
}
