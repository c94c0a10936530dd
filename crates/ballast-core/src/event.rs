//! Events ballast reacts to, in the shape EventBridge delivers their `detail`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::Millis;

/// The `detail` of an "ECS Container Instance State Change" event (fields ballast reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStateChange {
    /// Cluster ARN.
    pub cluster_arn: String,
    /// Container instance ARN.
    pub container_instance_arn: String,
    /// EC2 instance id.
    pub ec2_instance_id: String,
    /// ACTIVE, DRAINING, INACTIVE, …
    pub status: String,
    /// Agent connected.
    pub agent_connected: bool,
    /// Tasks with desiredStatus RUNNING.
    #[serde(default)]
    pub running_tasks_count: u32,
    /// Tasks PENDING.
    #[serde(default)]
    pub pending_tasks_count: u32,
    /// Attributes (name → value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Incremented on every change.
    #[serde(default)]
    pub version: u64,
    /// Event time (backend clock).
    #[serde(default)]
    pub time: Millis,
}

impl InstanceStateChange {
    /// A newly joined instance: ACTIVE, agent connected, no tasks, and not an instance that
    /// ballast itself drained and returned (its mark stays until ballast's next run).
    pub fn is_join(&self) -> bool {
        self.status == "ACTIVE"
            && self.agent_connected
            && self.running_tasks_count == 0
            && self.pending_tasks_count == 0
            && !self.attributes.contains_key(crate::model::attr::BALLAST_DRAIN)
    }
}
