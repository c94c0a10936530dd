//! Reading a whole cluster: every list paginated to the end at 100 per page, describes
//! batched at the API's maximum (100 container instances, 10 services, 100 tasks), each task
//! definition described once per process (they are immutable).
//!
//! Calls for a cluster of N instances, S services, T tasks (desiredStatus RUNNING) and D task
//! definitions not seen before (docs/aws.md, "Calls per snapshot"):
//! `⌈N/100⌉ + ⌈N/100⌉ + ⌈S/100⌉ + ⌈S/10⌉ + ⌈T/100⌉ + ⌈T/100⌉ + D`, each list at least one
//! page. The simulator counts the same calls (ballast-sim `backend.rs`).
//!
//! Choices: only ACTIVE and DRAINING instances are kept (REGISTERING, DEREGISTERING and
//! INACTIVE ones take no tasks and cannot be drained); tasks are listed with desiredStatus
//! RUNNING (a task being stopped has already given its resources back, ecs-behaviour.md §1.1);
//! an instance or task that vanishes between list and describe (a `MISSING` failure) is
//! left out of the snapshot; task scale-in protection is not in DescribeTasks, so it is read
//! (GetTaskProtection, [`task_protection`]) only for the tasks a plan may touch: the services
//! whose tasks it moves (before deciding again), a surge's service right before it protects,
//! the victims right before they go, and right before each StopTask ([`crate::write`]); that
//! costs ⌈T/10⌉ calls per touched service instead of per snapshot.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types::{
    ClusterField, DesiredStatus, HealthStatus, PlacementConstraintType, PlacementStrategyType, SchedulingStrategy,
    ServiceField,
};
use ballast_core::backend::{BackendError, GroupInfo, GroupInstance, Lifecycle, TaskProtection};
use ballast_core::duration::Millis;
use ballast_core::model::{
    BinpackField, Constraint, ContainerInstance, Deployment, InstanceStatus, Resources, Service, Snapshot, Strategy,
    Task, TaskDefinition, TaskStatus,
};

use ballast_core::model::ServiceState;

use crate::Clients;
use crate::calls::Gate;
use crate::errors::{failure, to};

/// Reads the whole cluster.
pub async fn snapshot(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
    defs: &mut BTreeMap<String, TaskDefinition>,
) -> Result<Snapshot, BackendError> {
    let taken_at = crate::wall_clock();
    let instances = instances(c, gate, cluster).await?;
    let mut services = services(c, gate, cluster).await?;
    let raw_tasks = tasks(c, gate, cluster).await?;
    let wanted: BTreeSet<String> = services
        .iter()
        .map(|s| s.task_definition.arn.clone())
        .chain(raw_tasks.iter().filter_map(|t| t.task_definition_arn().map(str::to_string)))
        .filter(|a| !a.is_empty())
        .collect();
    for arn in wanted {
        if let std::collections::btree_map::Entry::Vacant(slot) = defs.entry(arn) {
            let d = task_definition(c, gate, slot.key()).await?;
            slot.insert(d);
        }
    }
    for s in &mut services {
        if let Some(d) = defs.get(&s.task_definition.arn) {
            adopt(s, d);
        }
    }
    let tasks = raw_tasks.iter().filter_map(|t| task(t, defs)).collect();
    Ok(Snapshot { cluster: cluster.to_string(), taken_at, instances, services, tasks })
}

/// One container instance (DescribeContainerInstances of one ARN): what a guard on it reads.
/// `None` when it is gone (a `MISSING` failure).
pub async fn one_instance(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
    arn: &str,
) -> Result<Option<ContainerInstance>, BackendError> {
    gate.pass("DescribeContainerInstances").await;
    let r = c
        .ecs
        .describe_container_instances()
        .cluster(cluster)
        .container_instances(arn)
        .include(aws_sdk_ecs::types::ContainerInstanceField::Tags)
        .send()
        .await
        .map_err(to("DescribeContainerInstances"))?;
    Ok(r.container_instances().iter().filter_map(instance).next())
}

/// Scale-in protection of up to 10 tasks (GetTaskProtection). A task the answer names as a
/// failure with reason MISSING (stopped meanwhile) is unprotected; an expired protection is
/// off. Expiry in epoch milliseconds.
pub async fn task_protection(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
    arns: &[String],
) -> Result<BTreeMap<String, TaskProtection>, BackendError> {
    let mut out: BTreeMap<String, TaskProtection> =
        arns.iter().map(|a| (a.clone(), TaskProtection::default())).collect();
    if arns.is_empty() {
        return Ok(out);
    }
    gate.pass("GetTaskProtection").await;
    let r = c
        .ecs
        .get_task_protection()
        .cluster(cluster)
        .set_tasks(Some(arns.to_vec()))
        .send()
        .await
        .map_err(to("GetTaskProtection"))?;
    if let Some(f) = r.failures().iter().find(|f| f.reason() != Some("MISSING")) {
        return Err(failure("GetTaskProtection", f.arn(), f.reason(), f.detail()));
    }
    let now = crate::wall_clock().0 as i64;
    for t in r.protected_tasks() {
        let Some(arn) = t.task_arn() else { continue };
        let expires = t.expiration_date().and_then(|d| d.to_millis().ok());
        if t.protection_enabled() && expires.is_none_or(|e| e > now) {
            out.insert(
                arn.to_string(),
                TaskProtection { enabled: true, expires: expires.map(|e| Millis(e.max(0) as u64)) },
            );
        }
    }
    Ok(out)
}

/// One service and its live tasks (DescribeServices of one service, ListTasks of the service
/// with desiredStatus RUNNING, DescribeTasks per 100): what a guard or a wait on that service
/// reads. Task definitions come from `defs` (described once per process). `None`: no such
/// service.
pub async fn service_state(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
    name: &str,
    defs: &mut BTreeMap<String, TaskDefinition>,
) -> Result<Option<ServiceState>, BackendError> {
    gate.pass("DescribeServices").await;
    let r = c
        .ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(to("DescribeServices"))?;
    let Some(mut svc) = r.services().iter().find_map(service) else { return Ok(None) };
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        gate.pass("ListTasks").await;
        let page = c
            .ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(name)
            .desired_status(DesiredStatus::Running)
            .max_results(100)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(to("ListTasks"))?;
        arns.extend(page.task_arns().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    let mut raw = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(100) {
        gate.pass("DescribeTasks").await;
        let r = c
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(to("DescribeTasks"))?;
        report_failures("DescribeTasks", r.failures());
        raw.extend(r.tasks().iter().cloned());
    }
    let wanted: BTreeSet<String> = std::iter::once(svc.task_definition.arn.clone())
        .chain(raw.iter().filter_map(|t| t.task_definition_arn().map(str::to_string)))
        .filter(|a| !a.is_empty())
        .collect();
    for arn in wanted {
        if let std::collections::btree_map::Entry::Vacant(slot) = defs.entry(arn) {
            let d = task_definition(c, gate, slot.key()).await?;
            slot.insert(d);
        }
    }
    if let Some(d) = defs.get(&svc.task_definition.arn) {
        adopt(&mut svc, d);
    }
    let tasks = raw.iter().filter_map(|t| task(t, defs)).collect();
    Ok(Some(ServiceState { service: svc, tasks }))
}

async fn instances(c: &Clients, gate: &Gate, cluster: &str) -> Result<Vec<ContainerInstance>, BackendError> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        gate.pass("ListContainerInstances").await;
        let page = c
            .ecs
            .list_container_instances()
            .cluster(cluster)
            .max_results(100)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(to("ListContainerInstances"))?;
        arns.extend(page.container_instance_arns().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(100) {
        gate.pass("DescribeContainerInstances").await;
        let r = c
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(chunk.to_vec()))
            .include(aws_sdk_ecs::types::ContainerInstanceField::Tags)
            .send()
            .await
            .map_err(to("DescribeContainerInstances"))?;
        report_failures("DescribeContainerInstances", r.failures());
        out.extend(r.container_instances().iter().filter_map(instance));
    }
    out.sort_by(|a, b| a.arn.cmp(&b.arn));
    Ok(out)
}

/// Logs `failures` entries: a vanished target (`MISSING`) is expected between a list and a
/// describe and is left out; anything else is worth a warning.
fn report_failures(op: &str, failures: &[aws_sdk_ecs::types::Failure]) {
    for f in failures {
        let e = failure(op, f.arn(), f.reason(), f.detail());
        match e {
            BackendError::NotFound { .. } => tracing::info!("{e}; left out of the snapshot"),
            _ => tracing::warn!("{e}"),
        }
    }
}

fn resource(list: &[aws_sdk_ecs::types::Resource], name: &str) -> Option<i64> {
    list.iter().find(|r| r.name() == Some(name)).map(|r| match (i64::from(r.integer_value()), r.long_value()) {
        (0, 0) => r.double_value() as i64,
        (0, l) => l,
        (i, _) => i,
    })
}

/// A service takes its task definition, whose placement constraints ECS applies on top of
/// the service's own (ecs-behaviour.md §1.1, step 2).
fn adopt(s: &mut Service, d: &TaskDefinition) {
    s.task_definition = d.clone();
    for c in &d.needs.constraints {
        if !s.constraints.contains(c) {
            s.constraints.push(c.clone());
        }
    }
}

fn ports<'a>(list: &'a [aws_sdk_ecs::types::Resource], name: &'a str) -> impl Iterator<Item = u16> + 'a {
    list.iter()
        .filter(move |r| r.name() == Some(name))
        .flat_map(|r| r.string_set_value().iter().filter_map(|p| p.parse().ok()))
}

/// GPUs in a resource list (`GPU`, a STRINGSET of GPU ids).
fn gpus(list: &[aws_sdk_ecs::types::Resource]) -> u32 {
    list.iter().filter(|r| r.name() == Some("GPU")).map(|r| r.string_set_value().len() as u32).sum()
}

fn instance(ci: &aws_sdk_ecs::types::ContainerInstance) -> Option<ContainerInstance> {
    let status = match ci.status()? {
        "ACTIVE" => InstanceStatus::Active,
        "DRAINING" => InstanceStatus::Draining,
        _ => return None,
    };
    let reg = ci.registered_resources();
    let rem = ci.remaining_resources();
    let mut ports_in_use: Vec<u16> = ports(reg, "PORTS").chain(ports(rem, "PORTS")).collect();
    ports_in_use.sort_unstable();
    ports_in_use.dedup();
    let mut udp: Vec<u16> = ports(reg, "PORTS_UDP").chain(ports(rem, "PORTS_UDP")).collect();
    udp.sort_unstable();
    udp.dedup();
    let attributes: BTreeMap<String, String> =
        ci.attributes().iter().map(|a| (a.name().to_string(), a.value().unwrap_or("").to_string())).collect();
    let awsvpc_limit = attributes
        .get("ecs.instance-type")
        .and_then(|t| ballast_core::placement::awsvpc_task_limit(t, attributes.contains_key("ecs.awsvpc-trunk-id")));
    let registered = Resources { cpu: resource(reg, "CPU").unwrap_or(0), memory: resource(reg, "MEMORY").unwrap_or(0) };
    Some(ContainerInstance {
        arn: ci.container_instance_arn()?.to_string(),
        ec2_instance_id: ci.ec2_instance_id().unwrap_or_default().to_string(),
        status,
        agent_connected: ci.agent_connected(),
        registered,
        remaining: Resources {
            cpu: resource(rem, "CPU").unwrap_or(registered.cpu),
            memory: resource(rem, "MEMORY").unwrap_or(registered.memory),
        },
        ports_in_use,
        attributes,
        registered_at: ci
            .registered_at()
            .and_then(|d| d.to_millis().ok())
            .map_or(Millis(0), |m| Millis(m.max(0) as u64)),
        running_tasks: ci.running_tasks_count().max(0) as u32,
        pending_tasks: ci.pending_tasks_count().max(0) as u32,
        extra: ballast_core::model::InstanceExtras {
            gpus: gpus(reg),
            // No GPU entry among the remaining resources: none reserved.
            gpus_free: if rem.iter().any(|r| r.name() == Some("GPU")) { gpus(rem) } else { gpus(reg) },
            udp_ports_in_use: udp,
            agent_version: ci.version_info().and_then(|v| v.agent_version()).map(str::to_string),
            awsvpc_limit,
            tags: ci
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect(),
        },
    })
}

async fn services(c: &Clients, gate: &Gate, cluster: &str) -> Result<Vec<Service>, BackendError> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        gate.pass("ListServices").await;
        let page = c
            .ecs
            .list_services()
            .cluster(cluster)
            .max_results(100)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(to("ListServices"))?;
        arns.extend(page.service_arns().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(10) {
        gate.pass("DescribeServices").await;
        let r = c
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .include(ServiceField::Tags)
            .send()
            .await
            .map_err(to("DescribeServices"))?;
        report_failures("DescribeServices", r.failures());
        for s in r.services() {
            if let Some(svc) = service(s) {
                out.push((svc, providers_of(s)));
            }
        }
    }
    // Services on a capacity provider that scales its group itself: a surge would make it
    // launch instances (the planner leaves them alone and says why).
    let used: BTreeSet<String> = out.iter().flat_map(|(_, p)| p.iter().cloned()).collect();
    let managed = if used.is_empty() { BTreeSet::new() } else { managed_providers(c, gate, &used).await? };
    let mut out: Vec<Service> = out
        .into_iter()
        .map(|(mut s, p)| {
            for name in p.iter().filter(|n| managed.contains(*n)) {
                s.scaled_by.push(format!("capacity provider {name} (managed scaling)"));
            }
            s
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn strategy(p: &aws_sdk_ecs::types::PlacementStrategy) -> Option<Strategy> {
    match p.r#type()? {
        PlacementStrategyType::Random => Some(Strategy::Random),
        PlacementStrategyType::Spread => Some(Strategy::Spread(p.field().unwrap_or("instanceId").to_string())),
        PlacementStrategyType::Binpack => match p.field()?.to_ascii_lowercase().as_str() {
            "cpu" => Some(Strategy::Binpack(BinpackField::Cpu)),
            "memory" => Some(Strategy::Binpack(BinpackField::Memory)),
            _ => None,
        },
        _ => None,
    }
}

fn service(s: &aws_sdk_ecs::types::Service) -> Option<Service> {
    if s.status() != Some("ACTIVE") {
        return None;
    }
    let daemon = s.scheduling_strategy() == Some(&SchedulingStrategy::Daemon);
    let dc = s.deployment_configuration();
    let (min_default, max_default) = if daemon { (0, 100) } else { (100, 200) };
    Some(Service {
        name: s.service_name()?.to_string(),
        arn: s.service_arn()?.to_string(),
        daemon,
        desired: s.desired_count().max(0) as u32,
        running: s.running_count().max(0) as u32,
        pending: s.pending_count().max(0) as u32,
        strategy: s.placement_strategy().iter().filter_map(strategy).collect(),
        constraints: s
            .placement_constraints()
            .iter()
            .filter_map(|p| match p.r#type()? {
                PlacementConstraintType::DistinctInstance => Some(Constraint::DistinctInstance),
                PlacementConstraintType::MemberOf => Some(Constraint::MemberOf(p.expression()?.to_string())),
                _ => None,
            })
            .collect(),
        min_healthy_percent: dc.and_then(|d| d.minimum_healthy_percent()).unwrap_or(min_default).max(0) as u32,
        max_percent: dc.and_then(|d| d.maximum_percent()).unwrap_or(max_default).max(0) as u32,
        task_definition: TaskDefinition {
            arn: s.task_definition().unwrap_or_default().to_string(),
            cpu: 0,
            memory: 0,
            host_ports: vec![],
            needs: Default::default(),
        },
        deployments: s
            .deployments()
            .iter()
            .map(|d| Deployment {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                desired: d.desired_count().max(0) as u32,
                running: d.running_count().max(0) as u32,
                rollout_state: d.rollout_state().map(|r| r.as_str().to_string()).unwrap_or_default(),
            })
            .collect(),
        tags: s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
        scaled_by: vec![],
    })
}

/// The capacity providers a service's tasks run on (its capacityProviderStrategy).
fn providers_of(s: &aws_sdk_ecs::types::Service) -> Vec<String> {
    s.capacity_provider_strategy().iter().map(|p| p.capacity_provider().to_string()).collect()
}

/// Which of these capacity providers scale their Auto Scaling group themselves (managed
/// scaling ENABLED), by DescribeCapacityProviders (up to 100 names a call). `FARGATE` and
/// `FARGATE_SPOT` are not EC2 capacity and are left out.
async fn managed_providers(
    c: &Clients,
    gate: &Gate,
    names: &BTreeSet<String>,
) -> Result<BTreeSet<String>, BackendError> {
    let names: Vec<String> = names.iter().filter(|n| !n.starts_with("FARGATE")).cloned().collect();
    let mut out = BTreeSet::new();
    for chunk in names.chunks(100) {
        gate.pass("DescribeCapacityProviders").await;
        let r = c
            .ecs
            .describe_capacity_providers()
            .set_capacity_providers(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(to("DescribeCapacityProviders"))?;
        for p in r.capacity_providers() {
            let managed = p
                .auto_scaling_group_provider()
                .and_then(|a| a.managed_scaling())
                .and_then(|m| m.status())
                .is_some_and(|s| s.as_str() == "ENABLED");
            if managed && let Some(n) = p.name() {
                out.insert(n.to_string());
            }
        }
    }
    Ok(out)
}

async fn tasks(c: &Clients, gate: &Gate, cluster: &str) -> Result<Vec<aws_sdk_ecs::types::Task>, BackendError> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        gate.pass("ListTasks").await;
        let page = c
            .ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(DesiredStatus::Running)
            .max_results(100)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(to("ListTasks"))?;
        arns.extend(page.task_arns().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(100) {
        gate.pass("DescribeTasks").await;
        let r = c
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(to("DescribeTasks"))?;
        report_failures("DescribeTasks", r.failures());
        out.extend(r.tasks().iter().cloned());
    }
    Ok(out)
}

fn status(s: Option<&str>) -> TaskStatus {
    match s.unwrap_or("") {
        "RUNNING" => TaskStatus::Running,
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING" => TaskStatus::Stopping,
        "STOPPED" | "DELETED" => TaskStatus::Stopped,
        _ => TaskStatus::Pending,
    }
}

fn task(t: &aws_sdk_ecs::types::Task, defs: &BTreeMap<String, TaskDefinition>) -> Option<Task> {
    let instance_arn = t.container_instance_arn()?.to_string();
    let def = t.task_definition_arn().and_then(|a| defs.get(a));
    let group = t.group().unwrap_or_default().to_string();
    let service = group.strip_prefix("service:").map(str::to_string);
    let last_status = status(t.last_status());
    let mut host_ports: Vec<u16> = t
        .containers()
        .iter()
        .flat_map(|c| c.network_bindings().iter().filter_map(|b| b.host_port().and_then(|p| u16::try_from(p).ok())))
        .collect();
    if host_ports.is_empty()
        && let Some(d) = def
    {
        host_ports = d.host_ports.clone();
    }
    host_ports.sort_unstable();
    host_ports.dedup();
    let num = |s: Option<&str>| s.and_then(|v| v.trim().parse::<i64>().ok());
    Some(Task {
        arn: t.task_arn()?.to_string(),
        group,
        started_by: t.started_by().map(str::to_string),
        service,
        instance_arn,
        last_status,
        desired_status: status(t.desired_status()),
        cpu: num(t.cpu()).or(def.map(|d| d.cpu)).unwrap_or(0),
        memory: num(t.memory()).or(def.map(|d| d.memory)).unwrap_or(0),
        host_ports,
        healthy: last_status == TaskStatus::Running && t.health_status() != Some(&HealthStatus::Unhealthy),
        protected: false,
        utilization: None,
    })
}

/// One task definition, reduced to what placement needs: reserved CPU and memory at task
/// level, else the containers' sum (memoryReservation, else memory), and the host ports.
pub async fn task_definition(c: &Clients, gate: &Gate, arn: &str) -> Result<TaskDefinition, BackendError> {
    gate.pass("DescribeTaskDefinition").await;
    let r = c.ecs.describe_task_definition().task_definition(arn).send().await.map_err(to("DescribeTaskDefinition"))?;
    let Some(d) = r.task_definition() else {
        return Err(BackendError::NotFound { operation: "DescribeTaskDefinition".into(), what: arn.to_string() });
    };
    let host_mode = d.network_mode().map(|m| m.as_str()) == Some("host");
    let containers = d.container_definitions();
    let sum_cpu: i64 = containers.iter().map(|c| i64::from(c.cpu())).sum();
    let sum_mem: i64 = containers.iter().map(|c| i64::from(c.memory_reservation().or(c.memory()).unwrap_or(0))).sum();
    let num = |s: Option<&str>| s.and_then(|v| v.trim().parse::<i64>().ok());
    let mut host_ports: Vec<u16> = containers
        .iter()
        .flat_map(|c| c.port_mappings())
        .filter_map(|p| if host_mode { p.host_port().or(p.container_port()) } else { p.host_port() })
        .filter(|&p| p > 0)
        .filter_map(|p| u16::try_from(p).ok())
        .collect();
    host_ports.sort_unstable();
    host_ports.dedup();
    // TCP unless a mapping says UDP.
    let is_udp = |p: &aws_sdk_ecs::types::PortMapping| p.protocol().map(|x| x.as_str()) == Some("udp");
    let host_port = |p: &aws_sdk_ecs::types::PortMapping| {
        if host_mode { p.host_port().or(p.container_port()) } else { p.host_port() }
    };
    let tcp: Vec<u16> = containers
        .iter()
        .flat_map(|c| c.port_mappings())
        .filter(|p| !is_udp(p))
        .filter_map(host_port)
        .filter_map(|p| u16::try_from(p).ok().filter(|&p| p > 0))
        .collect();
    host_ports.retain(|p| tcp.contains(p));
    let mut udp_ports: Vec<u16> = containers
        .iter()
        .flat_map(|c| c.port_mappings())
        .filter(|p| is_udp(p))
        .filter_map(host_port)
        .filter_map(|p| u16::try_from(p).ok().filter(|&p| p > 0))
        .collect();
    udp_ports.sort_unstable();
    udp_ports.dedup();
    let gpus: u32 = containers
        .iter()
        .flat_map(|c| c.resource_requirements())
        .filter(|r| r.r#type().as_str() == "GPU")
        .filter_map(|r| r.value().trim().parse::<u32>().ok())
        .sum();
    let constraints = d
        .placement_constraints()
        .iter()
        .filter(|p| p.r#type().map(|t| t.as_str()) == Some("memberOf"))
        .filter_map(|p| p.expression().map(|e| Constraint::MemberOf(e.to_string())))
        .collect();
    let requires =
        d.requires_attributes().iter().map(|a| (a.name().to_string(), a.value().map(str::to_string))).collect();
    Ok(TaskDefinition {
        arn: arn.to_string(),
        cpu: num(d.cpu()).unwrap_or(sum_cpu),
        memory: num(d.memory()).unwrap_or(sum_mem),
        host_ports,
        needs: ballast_core::model::TaskNeeds {
            gpus,
            udp_ports,
            awsvpc: d.network_mode().map(|m| m.as_str()) == Some("awsvpc"),
            requires,
            constraints,
        },
    })
}

/// A cluster's ARN and resource tags (DescribeClusters with TAGS).
pub async fn cluster_tags(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
) -> Result<(String, BTreeMap<String, String>), BackendError> {
    gate.pass("DescribeClusters").await;
    let r = c
        .ecs
        .describe_clusters()
        .clusters(cluster)
        .include(ClusterField::Tags)
        .send()
        .await
        .map_err(to("DescribeClusters"))?;
    let Some(cl) = r.clusters().iter().find(|c| c.status() != Some("INACTIVE")) else {
        return Err(BackendError::NotFound {
            operation: "DescribeClusters".into(),
            what: format!("cluster {cluster}"),
        });
    };
    let tags =
        cl.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))).collect();
    Ok((cl.cluster_arn().unwrap_or_default().to_string(), tags))
}

/// The names of the ACTIVE clusters tagged `key` (with `value`, when given).
pub async fn discover(c: &Clients, gate: &Gate, key: &str, value: Option<&str>) -> Result<Vec<String>, BackendError> {
    let mut arns = Vec::new();
    let mut next: Option<String> = None;
    loop {
        gate.pass("ListClusters").await;
        let page = c
            .ecs
            .list_clusters()
            .max_results(100)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(to("ListClusters"))?;
        arns.extend(page.cluster_arns().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        gate.pass("DescribeClusters").await;
        let r = c
            .ecs
            .describe_clusters()
            .set_clusters(Some(chunk.to_vec()))
            .include(ClusterField::Tags)
            .send()
            .await
            .map_err(to("DescribeClusters"))?;
        for cl in r.clusters() {
            let tagged = cl.tags().iter().any(|t| t.key() == Some(key) && value.is_none_or(|v| t.value() == Some(v)));
            if tagged
                && cl.status() == Some("ACTIVE")
                && let Some(n) = cl.cluster_name()
            {
                out.push(n.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One Auto Scaling group: desired, min, max and its instances (InService ones marked).
pub async fn group(c: &Clients, gate: &Gate, name: &str) -> Result<GroupInfo, BackendError> {
    gate.pass("DescribeAutoScalingGroups").await;
    let r = c
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(to("DescribeAutoScalingGroups"))?;
    let g = r.auto_scaling_groups().iter().find(|g| g.auto_scaling_group_name() == Some(name)).ok_or_else(|| {
        BackendError::NotFound { operation: "DescribeAutoScalingGroups".into(), what: format!("group {name}") }
    })?;
    let n = |v: Option<i32>| v.unwrap_or(0).max(0) as u32;
    Ok(GroupInfo {
        name: name.to_string(),
        desired: n(g.desired_capacity()),
        min: n(g.min_size()),
        max: n(g.max_size()),
        cooldown: g.default_cooldown().map(|s| Millis::secs(s.max(0) as u64)),
        instances: g
            .instances()
            .iter()
            .filter_map(|i| {
                let lifecycle = match i.lifecycle_state().map(|s| s.as_str()).unwrap_or("") {
                    "InService" => Lifecycle::InService,
                    s if s.starts_with("Pending") || s.starts_with("Warmed") => Lifecycle::Launching,
                    _ => Lifecycle::Leaving,
                };
                Some(GroupInstance { ec2_instance_id: i.instance_id()?.to_string(), lifecycle })
            })
            .collect(),
    })
}

/// Which of these services Application Auto Scaling scales (a scalable target on
/// `ecs:service:DesiredCount` with resource id `service/CLUSTER/NAME`), with its policies'
/// kinds in words (one DescribeScalableTargets, one DescribeScalingPolicies per target found).
pub async fn scalable_targets(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
    services: &[String],
) -> Result<BTreeMap<String, Vec<String>>, BackendError> {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let ids: Vec<String> = services.iter().map(|s| format!("service/{cluster}/{s}")).collect();
    gate.pass("DescribeScalableTargets").await;
    let r = c
        .appscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .set_resource_ids(Some(ids))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .map_err(to("DescribeScalableTargets"))?;
    let mut out = BTreeMap::new();
    for t in r.scalable_targets() {
        let Some(name) = t.resource_id().rsplit('/').next().map(str::to_string) else { continue };
        gate.pass("DescribeScalingPolicies").await;
        let p = c
            .appscaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(t.resource_id())
            .send()
            .await
            .map_err(to("DescribeScalingPolicies"))?;
        let kinds: BTreeSet<String> =
            p.scaling_policies().iter().map(|x| x.policy_type().as_str().to_string()).collect();
        let what = if kinds.is_empty() {
            format!("Application Auto Scaling (min {}, max {})", t.min_capacity(), t.max_capacity())
        } else {
            format!(
                "Application Auto Scaling ({}; min {}, max {})",
                kinds.into_iter().collect::<Vec<_>>().join(", "),
                t.min_capacity(),
                t.max_capacity()
            )
        };
        out.entry(name).or_insert_with(Vec::new).push(what);
    }
    Ok(out)
}
