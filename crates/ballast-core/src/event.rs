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
    /// Attributes (name → value), a `[{name, value}]` list on the wire.
    #[serde(default, with = "attribute_list")]
    pub attributes: BTreeMap<String, String>,
    /// Incremented on every change.
    #[serde(default)]
    pub version: u64,
    /// Event time (backend clock; not part of the wire format).
    #[serde(skip)]
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

/// An EventBridge event as delivered to a target: the common envelope around a `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Always "0".
    pub version: String,
    /// Event id.
    pub id: String,
    /// e.g. "ECS Container Instance State Change".
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// e.g. "aws.ecs".
    pub source: String,
    /// Account id.
    pub account: String,
    /// ISO 8601 time.
    pub time: String,
    /// Region.
    pub region: String,
    /// ARNs the event is about.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The event itself.
    pub detail: T,
}

/// The detail-type of container instance state changes.
pub const INSTANCE_STATE_CHANGE: &str = "ECS Container Instance State Change";

impl InstanceStateChange {
    /// Wraps the detail as EventBridge delivers it (`time` rendered from the backend clock as
    /// seconds after 2026-01-01T00:00:00Z in the simulator).
    pub fn to_envelope(&self, region: &str, account: &str) -> Envelope<InstanceStateChange> {
        let s = self.time.as_secs();
        Envelope {
            version: "0".into(),
            id: format!("{:08x}-0000-4000-8000-{:012x}", self.version, s),
            detail_type: INSTANCE_STATE_CHANGE.into(),
            source: "aws.ecs".into(),
            account: account.into(),
            time: format!("2026-01-{:02}T{:02}:{:02}:{:02}Z", 1 + s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60),
            region: region.into(),
            resources: vec![self.container_instance_arn.clone()],
            detail: self.clone(),
        }
    }
}

/// EventBridge's `attributes` list (`[{"name": …, "value": …}]`) as a map; valueless
/// attributes (capabilities) map to "".
pub mod attribute_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    #[derive(Deserialize, serde::Serialize)]
    struct Attr {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    }

    /// Serializes the map as a list.
    pub fn serialize<S: Serializer>(m: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(m.len()))?;
        for (k, v) in m {
            seq.serialize_element(&Attr { name: k.clone(), value: (!v.is_empty()).then(|| v.clone()) })?;
        }
        seq.end()
    }

    /// Deserializes the list into a map.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
        let v: Vec<Attr> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|a| (a.name, a.value.unwrap_or_default())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example (ecs-behaviour.md §6.1, attributes shortened).
    const DOC: &str = r#"{
      "version": "0", "id": "8952ba83-7be2-4ab5-9c32-6687532d15a2",
      "detail-type": "ECS Container Instance State Change", "source": "aws.ecs",
      "account": "111122223333", "time": "2016-12-06T16:41:06Z", "region": "us-east-1",
      "resources": ["arn:aws:ecs:us-east-1:111122223333:container-instance/b54a2a04-046f-4331-9d74-3f6d7f6ca315"],
      "detail": {
        "agentConnected": true,
        "attributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.syslog"}, {"name": "ecs.availability-zone", "value": "us-east-1a"}],
        "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/default",
        "containerInstanceArn": "arn:aws:ecs:us-east-1:111122223333:container-instance/b54a2a04-046f-4331-9d74-3f6d7f6ca315",
        "ec2InstanceId": "i-f3a8506b",
        "registeredResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 2048}],
        "status": "ACTIVE", "version": 14801,
        "updatedAt": "2016-12-06T16:41:06.991Z"
      }
    }"#;

    #[test]
    fn reads_the_documented_event_and_writes_the_same_shape() {
        let e: Envelope<InstanceStateChange> = serde_json::from_str(DOC).unwrap();
        assert_eq!(e.detail_type, INSTANCE_STATE_CHANGE);
        assert_eq!(e.detail.ec2_instance_id, "i-f3a8506b");
        assert_eq!(e.detail.attributes["ecs.availability-zone"], "us-east-1a");
        assert_eq!(e.detail.attributes["com.amazonaws.ecs.capability.logging-driver.syslog"], "");
        assert!(e.detail.is_join(), "ACTIVE, connected, no tasks counted");
        let out = serde_json::to_value(e.detail.to_envelope("us-east-1", "111122223333")).unwrap();
        assert_eq!(out["detail-type"], INSTANCE_STATE_CHANGE);
        assert_eq!(out["detail"]["containerInstanceArn"], e.detail.container_instance_arn);
        assert_eq!(out["detail"]["attributes"][0]["name"], "com.amazonaws.ecs.capability.logging-driver.syslog");
        let back: Envelope<InstanceStateChange> = serde_json::from_value(out).unwrap();
        assert_eq!(back.detail, InstanceStateChange { time: Millis(0), ..e.detail });
    }

    #[test]
    fn marked_or_draining_or_busy_instances_are_not_joins() {
        let e: Envelope<InstanceStateChange> = serde_json::from_str(DOC).unwrap();
        let mut d = e.detail;
        d.running_tasks_count = 1;
        assert!(!d.is_join());
        d.running_tasks_count = 0;
        d.status = "DRAINING".into();
        assert!(!d.is_join());
        d.status = "ACTIVE".into();
        d.attributes.insert(crate::model::attr::BALLAST_DRAIN.into(), "ballast".into());
        assert!(!d.is_join());
    }
}
