//! The ECS shapes the twin serves most (container instances and tasks, described 100 a call)
//! as typed, borrowed structures serialised straight to JSON: no tree of values per answer.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Resource<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integer_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

impl<'a> Resource<'a> {
    pub fn int(name: &'a str, v: i64) -> Self {
        Resource { name, kind: "INTEGER", integer_value: Some(v), string_set_value: None }
    }
    pub fn set(name: &'a str, v: Vec<String>) -> Self {
        Resource { name, kind: "STRINGSET", integer_value: None, string_set_value: Some(v) }
    }
}

#[derive(Serialize)]
pub(crate) struct NameValue<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

#[derive(Serialize)]
pub(crate) struct KeyValue<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

pub(crate) fn tags(t: &BTreeMap<String, String>) -> Vec<KeyValue<'_>> {
    t.iter().map(|(k, v)| KeyValue { key: k, value: v }).collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionInfo<'a> {
    pub agent_version: &'a str,
    pub docker_version: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Instance<'a> {
    pub container_instance_arn: &'a str,
    pub ec2_instance_id: &'a str,
    pub status: &'a str,
    pub agent_connected: bool,
    pub registered_resources: Vec<Resource<'a>>,
    pub remaining_resources: Vec<Resource<'a>>,
    pub attributes: Vec<NameValue<'a>>,
    pub registered_at: f64,
    pub running_tasks_count: u32,
    pub pending_tasks_count: u32,
    pub version: u64,
    pub version_info: VersionInfo<'a>,
    pub attachments: [u8; 0],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<KeyValue<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Binding {
    #[serde(rename = "bindIP")]
    pub bind_ip: &'static str,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Container<'a> {
    pub container_arn: String,
    pub task_arn: &'a str,
    pub name: &'a str,
    pub image: String,
    pub last_status: &'a str,
    pub network_bindings: Vec<Binding>,
    pub cpu: String,
    pub memory: String,
    pub health_status: &'a str,
}

#[derive(Serialize)]
pub(crate) struct Override<'a> {
    pub name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Overrides<'a> {
    pub container_overrides: [Override<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Task<'a> {
    pub task_arn: &'a str,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub container_instance_arn: &'a str,
    pub last_status: &'a str,
    pub desired_status: &'a str,
    pub group: &'a str,
    pub cpu: String,
    pub memory: String,
    pub launch_type: &'a str,
    pub availability_zone: &'a str,
    pub connectivity: &'a str,
    pub health_status: &'a str,
    pub version: u32,
    pub attributes: [u8; 0],
    pub attachments: [u8; 0],
    pub overrides: Overrides<'a>,
    pub tags: [u8; 0],
    pub containers: [Container<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<&'a str>,
}
