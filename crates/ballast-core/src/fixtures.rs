//! Builders for snapshots in tests (used by this crate's tests and by the other crates').

use std::collections::BTreeMap;

use crate::duration::Millis;
use crate::model::*;

/// Builds a [`Snapshot`] fluently.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    snap: Snapshot,
    next_task: u32,
}

impl SnapshotBuilder {
    /// An empty cluster called `name`.
    pub fn new(name: &str) -> Self {
        SnapshotBuilder { snap: Snapshot { cluster: name.into(), ..Default::default() }, next_task: 0 }
    }

    /// Adds an ACTIVE instance `id` in `az` with `cpu`/`memory`.
    pub fn instance(mut self, id: &str, az: &str, cpu: i64, memory: i64) -> Self {
        let mut attributes = BTreeMap::new();
        attributes.insert(attr::AZ.to_string(), az.to_string());
        attributes.insert(attr::INSTANCE_TYPE.to_string(), "m5.large".to_string());
        self.snap.instances.push(ContainerInstance {
            arn: format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}"),
            ec2_instance_id: format!("i-{id}"),
            status: InstanceStatus::Active,
            agent_connected: true,
            registered: Resources { cpu, memory },
            remaining: Resources { cpu, memory },
            ports_in_use: vec![],
            attributes,
            registered_at: Millis(0),
            running_tasks: 0,
            pending_tasks: 0,
            extra: Default::default(),
        });
        self
    }

    /// Sets an attribute on instance `id`.
    pub fn attribute(mut self, id: &str, name: &str, value: &str) -> Self {
        let arn = format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}");
        let i = self.snap.instances.iter_mut().find(|i| i.arn == arn).expect("instance");
        i.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets instance `id` DRAINING.
    pub fn draining(mut self, id: &str) -> Self {
        let arn = format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}");
        self.snap.instances.iter_mut().find(|i| i.arn == arn).expect("instance").status = InstanceStatus::Draining;
        self
    }

    /// Adds a replica service (100/200) with strategy and constraint texts.
    pub fn service(mut self, name: &str, cpu: i64, memory: i64, strategy: &[&str], constraints: &[&str]) -> Self {
        self.snap.services.push(Service {
            name: name.into(),
            arn: format!("arn:aws:ecs:us-east-1:1:service/c/{name}"),
            daemon: false,
            desired: 0,
            running: 0,
            pending: 0,
            strategy: strategy.iter().map(|s| Strategy::parse(s).expect("strategy")).collect(),
            constraints: constraints.iter().map(|s| Constraint::parse(s).expect("constraint")).collect(),
            min_healthy_percent: 100,
            max_percent: 200,
            task_definition: TaskDefinition {
                arn: format!("{name}:1"),
                cpu,
                memory,
                host_ports: vec![],
                needs: Default::default(),
            },
            deployments: vec![],
            tags: BTreeMap::new(),
            scaled_by: vec![],
        });
        self
    }

    /// Sets a service's health budget.
    pub fn budget(mut self, name: &str, min: u32, max: u32) -> Self {
        let s = self.snap.services.iter_mut().find(|s| s.name == name).expect("service");
        s.min_healthy_percent = min;
        s.max_percent = max;
        self
    }

    /// Marks a service as a daemon.
    pub fn daemon(mut self, name: &str) -> Self {
        self.snap.services.iter_mut().find(|s| s.name == name).expect("service").daemon = true;
        self
    }

    /// Puts `n` running tasks of service `name` on instance `id` (raising desired).
    pub fn tasks(mut self, name: &str, id: &str, n: u32) -> Self {
        let svc = self.snap.services.iter_mut().find(|s| s.name == name).expect("service");
        svc.desired += n;
        svc.running += n;
        let (cpu, memory) = (svc.task_definition.cpu, svc.task_definition.memory);
        let arn = format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}");
        let inst = self.snap.instances.iter_mut().find(|i| i.arn == arn).expect("instance");
        for _ in 0..n {
            inst.remaining.cpu -= cpu;
            inst.remaining.memory -= memory;
            inst.running_tasks += 1;
            self.next_task += 1;
            self.snap.tasks.push(Task {
                arn: format!("arn:aws:ecs:us-east-1:1:task/c/t{:05}", self.next_task),
                group: format!("service:{name}"),
                started_by: Some("ecs-svc/1".into()),
                service: Some(name.into()),
                instance_arn: arn.clone(),
                last_status: TaskStatus::Running,
                desired_status: TaskStatus::Running,
                cpu,
                memory,
                host_ports: vec![],
                healthy: true,
                protected: false,
                utilization: Some((0.5, 0.5)),
            });
        }
        self
    }

    /// Adds `n` standalone tasks on instance `id`.
    pub fn standalone(mut self, family: &str, id: &str, n: u32, cpu: i64, memory: i64) -> Self {
        let arn = format!("arn:aws:ecs:us-east-1:1:container-instance/c/{id}");
        let inst = self.snap.instances.iter_mut().find(|i| i.arn == arn).expect("instance");
        for _ in 0..n {
            inst.remaining.cpu -= cpu;
            inst.remaining.memory -= memory;
            self.next_task += 1;
            self.snap.tasks.push(Task {
                arn: format!("arn:aws:ecs:us-east-1:1:task/c/t{:05}", self.next_task),
                group: format!("family:{family}"),
                started_by: None,
                service: None,
                instance_arn: arn.clone(),
                last_status: TaskStatus::Running,
                desired_status: TaskStatus::Running,
                cpu,
                memory,
                host_ports: vec![],
                healthy: true,
                protected: false,
                utilization: None,
            });
        }
        self
    }

    /// The snapshot.
    pub fn build(self) -> Snapshot {
        self.snap
    }
}
