//! The cluster snapshot: container instances, services and tasks as ECS describes them.
//!
//! Both backends produce a [`Snapshot`]; the planner reads nothing else.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::duration::Millis;

/// Built-in attribute names (ECS sets these on every container instance).
pub mod attr {
    /// The instance's Availability Zone.
    pub const AZ: &str = "ecs.availability-zone";
    /// The spread field of the Availability Zone.
    pub const AZ_SPREAD: &str = "attribute:ecs.availability-zone";
    /// The EC2 instance type.
    pub const INSTANCE_TYPE: &str = "ecs.instance-type";
    /// The AMI id.
    pub const AMI_ID: &str = "ecs.ami-id";
    /// The OS type (`linux`).
    pub const OS_TYPE: &str = "ecs.os-type";
    /// The ownership mark ballast puts on instances it drains.
    pub const BALLAST_DRAIN: &str = "ballast.drained-by";
    /// The tag (on a service or a container instance) that tells ballast to leave it alone.
    pub const IGNORE_TAG: &str = "ballast:ignore";
}

/// The id at the end of an ARN (`…/cluster/abc123` → `abc123`), for log lines.
pub fn short_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Container instance status (ContainerInstance.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    /// Accepts tasks.
    Active,
    /// No new tasks; service tasks are being replaced elsewhere.
    Draining,
    /// Trunk ENI provisioning (awsvpc trunking only).
    Registering,
    /// Being deregistered.
    Deregistering,
    /// Deregistered or terminated.
    Inactive,
}

impl InstanceStatus {
    /// The name ECS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Draining => "DRAINING",
            InstanceStatus::Registering => "REGISTERING",
            InstanceStatus::Deregistering => "DEREGISTERING",
            InstanceStatus::Inactive => "INACTIVE",
        }
    }
}

/// CPU units (1024 = one vCPU) and memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Resources {
    /// CPU units.
    pub cpu: i64,
    /// Memory, MiB.
    pub memory: i64,
}

/// One container instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerInstance {
    /// Container instance ARN.
    pub arn: String,
    /// EC2 instance id.
    pub ec2_instance_id: String,
    /// Status.
    pub status: InstanceStatus,
    /// Whether the agent is connected.
    pub agent_connected: bool,
    /// Registered CPU and memory.
    pub registered: Resources,
    /// Remaining (unreserved) CPU and memory.
    pub remaining: Resources,
    /// Host ports reserved by the agent and by tasks (TCP).
    pub ports_in_use: Vec<u16>,
    /// Built-in and custom attributes (name → value; valueless attributes map to "").
    pub attributes: BTreeMap<String, String>,
    /// When the instance registered (ms since the epoch of the backend's clock).
    pub registered_at: Millis,
    /// Tasks with desiredStatus RUNNING.
    pub running_tasks: u32,
    /// Tasks in PENDING.
    pub pending_tasks: u32,
    /// What placement checks beyond CPU, memory and TCP ports.
    pub extra: InstanceExtras,
}

/// What a container instance offers beyond CPU, memory and TCP ports (ecs-behaviour.md
/// §1.1: GPUs, UDP ports, ENI attachment points, attributes, the agent's version).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct InstanceExtras {
    /// GPUs registered (registeredResources `GPU`).
    pub gpus: u32,
    /// GPUs not reserved by tasks (remainingResources `GPU`).
    pub gpus_free: u32,
    /// UDP host ports in use (`PORTS_UDP`).
    pub udp_ports_in_use: Vec<u16>,
    /// The container agent's version (versionInfo.agentVersion), for `agentVersion` queries.
    pub agent_version: Option<String>,
    /// How many awsvpc tasks the instance can hold at once (its ENIs less the primary one,
    /// or its branch interfaces with ENI trunking), when its type is known
    /// ([`crate::placement::awsvpc_task_limit`]).
    pub awsvpc_limit: Option<u32>,
    /// Resource tags of the container instance (DescribeContainerInstances with TAGS).
    pub tags: BTreeMap<String, String>,
}

impl ContainerInstance {
    /// Tagged `ballast:ignore` (any value but `false`): never drained, marked or emptied by
    /// ballast; its tasks are never moved (ECS may still place new tasks on it).
    pub fn ignored(&self) -> bool {
        self.extra.tags.get(attr::IGNORE_TAG).is_some_and(|v| v != "false")
    }

    /// The Availability Zone attribute ("" if unknown).
    pub fn az(&self) -> &str {
        self.attr(attr::AZ).unwrap_or("")
    }
    /// The instance type attribute ("" if unknown).
    pub fn instance_type(&self) -> &str {
        self.attr(attr::INSTANCE_TYPE).unwrap_or("")
    }
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
    /// True when ballast's ownership mark is on the instance.
    pub fn drained_by_ballast(&self) -> bool {
        self.attr(attr::BALLAST_DRAIN).is_some()
    }
    /// The short id at the end of the ARN.
    pub fn short_id(&self) -> &str {
        short_id(&self.arn)
    }
}

/// The field a `binpack` strategy packs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BinpackField {
    /// CPU units.
    Cpu,
    /// Memory.
    Memory,
}

/// One placement strategy rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Strategy {
    /// `spread` over a field: `instanceId`, `host` or `attribute:<name>`.
    Spread(String),
    /// `binpack` on cpu or memory.
    Binpack(BinpackField),
    /// `random`.
    Random,
}

impl Strategy {
    /// Parses `spread(attribute:ecs.availability-zone)`, `binpack(memory)`, `random`.
    pub fn parse(text: &str) -> Result<Strategy, String> {
        let t = text.trim();
        if t == "random" || t == "random()" {
            return Ok(Strategy::Random);
        }
        let (kind, field) = t.strip_suffix(')').and_then(|s| s.split_once('(')).ok_or_else(|| {
            format!("`{t}` is not a placement strategy; write spread(FIELD), binpack(cpu|memory) or random")
        })?;
        let field = field.trim();
        match kind.trim() {
            "spread" if field.is_empty() => Err("spread() needs a field, e.g. spread(instanceId)".into()),
            "spread" => {
                if field == "instanceId" || field == "host" || field.starts_with("attribute:") {
                    Ok(Strategy::Spread(field.to_string()))
                } else {
                    Err(format!("spread({field}): the field must be instanceId, host or attribute:<name>"))
                }
            }
            "binpack" => match field {
                "cpu" => Ok(Strategy::Binpack(BinpackField::Cpu)),
                "memory" => Ok(Strategy::Binpack(BinpackField::Memory)),
                _ => Err(format!("binpack({field}): the field must be cpu or memory")),
            },
            other => Err(format!("`{other}` is not a strategy type; use spread, binpack or random")),
        }
    }

    /// The ECS default for a service with no strategy: spread over AZs, then instances.
    pub fn service_default() -> Vec<Strategy> {
        vec![Strategy::Spread(format!("attribute:{}", attr::AZ)), Strategy::Spread("instanceId".into())]
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Strategy::Spread(field) => write!(f, "spread({field})"),
            Strategy::Binpack(BinpackField::Cpu) => f.write_str("binpack(cpu)"),
            Strategy::Binpack(BinpackField::Memory) => f.write_str("binpack(memory)"),
            Strategy::Random => f.write_str("random"),
        }
    }
}

/// One placement constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Constraint {
    /// Each task of the group on a different instance.
    DistinctInstance,
    /// Instances matching a cluster query language expression.
    MemberOf(String),
}

impl Constraint {
    /// Parses `distinctInstance` or `memberOf(<expression>)`; the expression is checked.
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let t = text.trim();
        if t == "distinctInstance" {
            return Ok(Constraint::DistinctInstance);
        }
        if let Some(expr) = t.strip_prefix("memberOf(").and_then(|s| s.strip_suffix(')')) {
            crate::cql::Expr::parse(expr).map_err(|e| format!("memberOf: {e}"))?;
            return Ok(Constraint::MemberOf(expr.trim().to_string()));
        }
        Err(format!("`{t}` is not a placement constraint; write distinctInstance or memberOf(EXPRESSION)"))
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Constraint::DistinctInstance => f.write_str("distinctInstance"),
            Constraint::MemberOf(e) => write!(f, "memberOf({e})"),
        }
    }
}

/// A service's task definition, reduced to what placement needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskDefinition {
    /// `family:revision` ARN or name.
    pub arn: String,
    /// Reserved CPU units (task level, or the sum of container `cpu`).
    pub cpu: i64,
    /// Reserved memory (task level, or the sum of container `memoryReservation`/`memory`).
    pub memory: i64,
    /// Host ports the task reserves.
    pub host_ports: Vec<u16>,
    /// What else it needs of an instance.
    pub needs: TaskNeeds,
}

/// What a task definition needs of an instance beyond CPU, memory and TCP host ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TaskNeeds {
    /// GPUs (containers' `resourceRequirements` of type GPU, summed).
    pub gpus: u32,
    /// UDP host ports.
    pub udp_ports: Vec<u16>,
    /// Network mode awsvpc: each task takes an ENI attachment point.
    pub awsvpc: bool,
    /// `requiresAttributes`: each (name, value) must be an attribute of the instance (with that
    /// value, when one is given).
    pub requires: Vec<(String, Option<String>)>,
    /// The task definition's own placement constraints (memberOf), which ECS applies on top of
    /// the service's; a service read from AWS carries them among its constraints already.
    pub constraints: Vec<Constraint>,
}

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    /// Deployment id.
    pub id: String,
    /// PRIMARY or ACTIVE.
    pub status: String,
    /// Desired tasks of this deployment.
    pub desired: u32,
    /// Running tasks of this deployment.
    pub running: u32,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: String,
}

/// One ECS service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// Service ARN.
    pub arn: String,
    /// DAEMON scheduling strategy.
    pub daemon: bool,
    /// Desired count.
    pub desired: u32,
    /// Running count.
    pub running: u32,
    /// Pending count.
    pub pending: u32,
    /// Placement strategy as configured (empty = ECS default).
    pub strategy: Vec<Strategy>,
    /// Placement constraints.
    pub constraints: Vec<Constraint>,
    /// deploymentConfiguration.minimumHealthyPercent.
    pub min_healthy_percent: u32,
    /// deploymentConfiguration.maximumPercent.
    pub max_percent: u32,
    /// The task definition in use.
    pub task_definition: TaskDefinition,
    /// Deployments, PRIMARY first.
    pub deployments: Vec<Deployment>,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// What else changes its desired count or its capacity (a capacity provider with managed
    /// scaling, Application Auto Scaling), in words; empty when nothing is known to.
    pub scaled_by: Vec<String>,
}

impl Service {
    /// Tagged `ballast:ignore` (any value but `false`): neither rebalanced nor autoscaled.
    pub fn ignored(&self) -> bool {
        self.tags.get(attr::IGNORE_TAG).is_some_and(|v| v != "false")
    }

    /// The task group ECS gives the service's tasks.
    pub fn group(&self) -> String {
        format!("service:{}", self.name)
    }
    /// The strategy in effect (the configured one, or ECS's default for services).
    pub fn effective_strategy(&self) -> Vec<Strategy> {
        if self.strategy.is_empty() { Strategy::service_default() } else { self.strategy.clone() }
    }
    /// Tasks that minimumHealthyPercent requires to stay running (rounded up).
    pub fn min_healthy_tasks(&self) -> u32 {
        (self.desired as u64 * self.min_healthy_percent as u64).div_ceil(100) as u32
    }
    /// Tasks that maximumPercent allows at once (rounded down).
    pub fn max_tasks(&self) -> u32 {
        (self.desired as u64 * self.max_percent as u64 / 100) as u32
    }
}

/// Task lifecycle status (lastStatus / desiredStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Placed, starting.
    Pending,
    /// Running.
    Running,
    /// Stop requested, not yet stopped.
    Stopping,
    /// Stopped.
    Stopped,
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// Task ARN.
    pub arn: String,
    /// Task group (`service:NAME` or `family:NAME`).
    pub group: String,
    /// startedBy (`ecs-svc/<deployment>` for service tasks).
    pub started_by: Option<String>,
    /// The owning service's name, if any.
    pub service: Option<String>,
    /// The container instance ARN.
    pub instance_arn: String,
    /// lastStatus.
    pub last_status: TaskStatus,
    /// desiredStatus.
    pub desired_status: TaskStatus,
    /// Reserved CPU units.
    pub cpu: i64,
    /// Reserved memory.
    pub memory: i64,
    /// Host ports.
    pub host_ports: Vec<u16>,
    /// Running and counted healthy by the scheduler.
    pub healthy: bool,
    /// Task scale-in protection is on.
    pub protected: bool,
    /// Fraction of the reservation in use (cpu, memory), when known.
    pub utilization: Option<(f64, f64)>,
}

impl Task {
    /// Desired status RUNNING (pending or running, not being stopped).
    pub fn is_live(&self) -> bool {
        self.desired_status == TaskStatus::Running
    }
}

/// A whole cluster at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Snapshot {
    /// Cluster name.
    pub cluster: String,
    /// When it was read (backend clock).
    pub taken_at: Millis,
    /// Registered container instances (ACTIVE and DRAINING).
    pub instances: Vec<ContainerInstance>,
    /// Services.
    pub services: Vec<Service>,
    /// Tasks that are not STOPPED.
    pub tasks: Vec<Task>,
}

impl Snapshot {
    /// A service by name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
    /// An instance by ARN.
    pub fn instance(&self, arn: &str) -> Option<&ContainerInstance> {
        self.instances.iter().find(|i| i.arn == arn)
    }
    /// Live tasks of a service.
    pub fn service_tasks<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.iter().filter(move |t| t.is_live() && t.service.as_deref() == Some(name))
    }
    /// Whether a task belongs to a daemon service.
    pub fn is_daemon_task(&self, t: &Task) -> bool {
        t.service.as_deref().and_then(|s| self.service(s)).is_some_and(|s| s.daemon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strategies_and_constraints() {
        assert_eq!(
            Strategy::parse("spread(attribute:ecs.availability-zone)").unwrap(),
            Strategy::Spread("attribute:ecs.availability-zone".into())
        );
        assert_eq!(Strategy::parse("binpack(memory)").unwrap(), Strategy::Binpack(BinpackField::Memory));
        assert_eq!(Strategy::parse("random").unwrap(), Strategy::Random);
        assert!(Strategy::parse("binpack(disk)").is_err());
        assert!(Strategy::parse("spread(foo)").is_err());
        assert!(Strategy::parse("pack").is_err());
        assert_eq!(Constraint::parse("distinctInstance").unwrap(), Constraint::DistinctInstance);
        assert!(Constraint::parse("memberOf(attribute:ecs.instance-type =~ g2.*)").is_ok());
        assert!(Constraint::parse("memberOf(attribute:x ==)").is_err());
        assert!(Constraint::parse("sameInstance").is_err());
    }

    #[test]
    fn budgets_round_as_ecs_does() {
        let mut s = Service {
            name: "a".into(),
            arn: "a".into(),
            daemon: false,
            desired: 2,
            running: 2,
            pending: 0,
            strategy: vec![],
            constraints: vec![],
            min_healthy_percent: 75,
            max_percent: 125,
            task_definition: TaskDefinition {
                arn: "a:1".into(),
                cpu: 1,
                memory: 1,
                host_ports: vec![],
                needs: TaskNeeds::default(),
            },
            deployments: vec![],
            tags: BTreeMap::new(),
            scaled_by: vec![],
        };
        // "if the minimum healthy percent is 75% and the desired task count is two, then the
        // scheduler can't stop any tasks"
        assert_eq!(s.min_healthy_tasks(), 2);
        s.desired = 3;
        // "if the maximum percent is 125 and the desired task count is three, the scheduler
        // can't start any tasks"
        assert_eq!(s.max_tasks(), 3);
    }
}

/// One service as a fresh read shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    /// The service.
    pub service: Service,
    /// Its live tasks (desiredStatus RUNNING).
    pub tasks: Vec<Task>,
}

impl ServiceState {
    /// Tasks counted healthy.
    pub fn healthy(&self) -> u32 {
        self.tasks.iter().filter(|t| t.healthy).count() as u32
    }
}
