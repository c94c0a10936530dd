//! The simulator behind the [`Backend`] seam: snapshots and actions as the ECS API would
//! serve them, every call counted by operation name as a real client would make it, API
//! faults with SDK-like retries, and crash points for the crash matrix.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::action::Action;
use ballast_core::backend::{
    Backend, BackendError, GroupInfo, GroupInstance, HttpRequest, Lifecycle, MetricQuery, PROTECTION_BATCH,
    TaskProtection, snapshot_calls,
};
use ballast_core::duration::Millis;
use ballast_core::model::{
    ContainerInstance, Deployment, InstanceStatus, Resources, Service, Snapshot, Task, TaskDefinition, TaskStatus,
};

use crate::engine::{InstState, Sim};
use crate::scheduler::TState;

/// An Auto Scaling group's default cooldown.
pub const GROUP_COOLDOWN: Millis = Millis::secs(300);

/// Attempts per call, as the AWS SDK's standard retry mode (3).
pub const SDK_ATTEMPTS: u32 = 3;

/// The simulator as a backend for one controller invocation.
pub struct SimBackend<'a> {
    sim: &'a mut Sim,
    crash_after: Option<u64>,
    task_defs_seen: BTreeSet<String>,
    acted: bool,
    /// The client's own token buckets (one run's process), when it paces itself.
    pacing: Option<ballast_core::throttle::Buckets>,
    /// The client keeps the task definitions it described across runs (a warm Lambda
    /// function's process): they are immutable.
    warm: bool,
}

impl<'a> SimBackend<'a> {
    /// Wraps the simulator; `crash_after` = kill the process right after that many mutating
    /// calls in the whole simulation.
    pub fn new(sim: &'a mut Sim, crash_after: Option<u64>) -> Self {
        SimBackend { sim, crash_after, task_defs_seen: BTreeSet::new(), acted: false, pacing: None, warm: false }
    }

    /// A client that keeps the task definitions it described from run to run (in
    /// [`Sim::task_defs_known`]), as ballast's Lambda function does while its process lives.
    pub fn warm(mut self) -> Self {
        self.warm = true;
        self.task_defs_seen = std::mem::take(&mut self.sim.task_defs_known);
        self
    }

    /// A client that waits for a token of its own buckets (at `share` of the published
    /// limits) before each attempt, as ballast's AWS adapter does.
    pub fn paced(mut self, share: f64) -> Self {
        self.pacing = Some(ballast_core::throttle::Buckets::new(share));
        self
    }

    fn count(&mut self, op: &str, n: u64) {
        *self.sim.acct.api.entry(op.to_string()).or_default() += n;
    }

    /// One API call with fault injection and SDK-like retries (each attempt counted).
    fn call(&mut self, op: &str) -> Result<(), BackendError> {
        self.attempts(op, SDK_ATTEMPTS, None)
    }

    /// Up to `n` attempts of one call; with `action`, a mutating call whose change is made by
    /// the attempt that gets through. A timed-out attempt of it has made the change half of
    /// the time (the answer was lost, not the request), as on AWS; the next attempt then
    /// sends it again.
    fn attempts(&mut self, op: &str, n: u32, action: Option<&Action>) -> Result<(), BackendError> {
        let mut last = None;
        for attempt in 0..n {
            if let Some(b) = self.pacing.as_mut() {
                let wait = b.take(op, self.sim.now);
                if wait > Millis(0) {
                    let t = self.sim.now + wait;
                    self.sim.advance_to(t);
                }
            }
            self.count(op, 1);
            // Each attempt takes the API's latency; the cluster moves on meanwhile.
            let latency = self.sim.sc.timing.api_latency;
            if latency > Millis(0) {
                let t = self.sim.now + latency;
                self.sim.advance_to(t);
            }
            let refused = self.sim.sc.timing.throttling && !self.sim.server_buckets.admit(op, self.sim.now);
            let fault = match self.sim.faults {
                _ if refused => Some(BackendError::Throttled { operation: op.into() }),
                Some((th, er, to, until)) if self.sim.now <= until => {
                    let r = self.sim.fault_rng.unit();
                    if r < th {
                        Some(BackendError::Throttled { operation: op.into() })
                    } else if r < th + er {
                        Some(BackendError::Server { operation: op.into(), message: "InternalError (simulated)".into() })
                    } else if r < th + er + to {
                        Some(BackendError::Timeout { operation: op.into() })
                    } else {
                        None
                    }
                }
                _ => None,
            };
            match fault {
                None => return action.map_or(Ok(()), |a| self.sim.apply_action(a)),
                Some(e) => {
                    if let (Some(a), BackendError::Timeout { .. }) = (action, &e)
                        && self.sim.fault_rng.unit() < 0.5
                    {
                        // Its result is the answer that was lost.
                        let _ = self.sim.apply_action(a);
                    }
                    last = Some(e);
                    // Exponential backoff with jitter, as the SDK: base 1 s, at most 20 s.
                    let base = 1000u64 << attempt;
                    let wait = (self.sim.fault_rng.unit() * base as f64) as u64;
                    let t = self.sim.now + Millis(wait.min(20_000));
                    self.sim.advance_to(t);
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }
}

impl Sim {
    /// The cluster as DescribeContainerInstances/DescribeServices/DescribeTasks show it.
    pub fn snapshot(&self) -> Snapshot {
        let instances = (0..self.insts.len()).filter_map(|n| self.instance_view(n)).collect();
        let services = (0..self.svcs.len()).map(|s| self.service_view(s)).collect();
        let tasks =
            (0..self.insts.len()).flat_map(|n| self.node_live[n].iter()).filter_map(|&t| self.task_view(t)).collect();
        Snapshot { cluster: self.sc.cluster.clone(), taken_at: self.now, instances, services, tasks }
    }

    /// One service and its live tasks, as DescribeServices and DescribeTasks show them.
    pub(crate) fn service_state_view(&self, s: usize) -> ballast_core::model::ServiceState {
        let mut live: Vec<usize> = self.svc_live[s].clone();
        // In the snapshot's order (by instance, then placement).
        live.sort_by_key(|&t| (self.tasks[t].node, t));
        ballast_core::model::ServiceState {
            service: self.service_view(s),
            tasks: live.into_iter().filter_map(|t| self.task_view(t)).filter(|t| t.is_live()).collect(),
        }
    }

    /// Container instance `n` as DescribeContainerInstances shows it (`None`: not registered).
    pub(crate) fn instance_view(&self, n: usize) -> Option<ContainerInstance> {
        let i = &self.insts[n];
        let status = match i.state {
            InstState::Active => InstanceStatus::Active,
            InstState::Draining => InstanceStatus::Draining,
            _ => return None,
        };
        let node = &self.cs.nodes[n];
        let (mut running, mut pending) = (0, 0);
        for &t in &self.node_live[n] {
            match self.tasks[t].state {
                TState::Running => running += 1,
                TState::Pending => pending += 1,
                _ => {}
            }
        }
        Some(ContainerInstance {
            arn: i.arn.clone(),
            ec2_instance_id: i.ec2_id.clone(),
            status,
            agent_connected: node.agent_connected,
            registered: node.registered,
            remaining: Resources { cpu: node.free.cpu, memory: node.free.memory },
            ports_in_use: node.ports.iter().copied().collect(),
            attributes: node.attributes.clone(),
            registered_at: node.registered_at,
            running_tasks: running + pending,
            pending_tasks: pending,
            extra: ballast_core::model::InstanceExtras {
                gpus: self.sc.groups[i.group].gpus,
                gpus_free: node.extra.gpus_free,
                udp_ports_in_use: node.extra.udp.iter().copied().collect(),
                agent_version: Some(node.extra.agent_version.clone()).filter(|v| !v.is_empty()),
                awsvpc_limit: ballast_core::placement::awsvpc_task_limit(
                    &i.itype,
                    node.attributes.contains_key("ecs.awsvpc-trunk-id"),
                ),
                tags: self.sc.groups[i.group].tags.clone(),
            },
        })
    }

    /// Service `s` as DescribeServices shows it.
    pub(crate) fn service_view(&self, s: usize) -> Service {
        let svc = &self.svcs[s];
        let live: Vec<usize> =
            self.svc_live[s].iter().copied().filter(|&t| self.tasks[t].state != TState::Stopping).collect();
        let running = live.iter().filter(|&&t| self.tasks[t].state == TState::Running).count() as u32;
        let old_deps: BTreeSet<u32> =
            live.iter().map(|&t| self.tasks[t].deployment).filter(|&d| d != svc.deployment).collect();
        let mut deployments = vec![Deployment {
            id: format!("ecs-svc/{}", svc.deployment),
            status: "PRIMARY".into(),
            desired: svc.desired,
            running: live.iter().filter(|&&t| self.tasks[t].deployment == svc.deployment).count() as u32,
            rollout_state: if old_deps.is_empty() { "COMPLETED".into() } else { "IN_PROGRESS".into() },
        }];
        for d in old_deps {
            deployments.push(Deployment {
                id: format!("ecs-svc/{d}"),
                status: "ACTIVE".into(),
                desired: 0,
                running: live.iter().filter(|&&t| self.tasks[t].deployment == d).count() as u32,
                rollout_state: "COMPLETED".into(),
            });
        }
        Service {
            name: svc.name.clone(),
            arn: self.ecs_arn("service", &format!("{}/{}", self.sc.cluster, svc.name)),
            daemon: svc.daemon,
            desired: svc.desired,
            running,
            pending: live.len() as u32 - running,
            strategy: svc.strategy.clone(),
            constraints: svc.constraints.clone(),
            min_healthy_percent: svc.min_healthy,
            max_percent: svc.max_percent,
            task_definition: TaskDefinition {
                arn: svc.task_def.clone(),
                cpu: svc.spec.cpu,
                memory: svc.spec.memory,
                host_ports: svc.spec.host_ports.clone(),
                needs: svc.spec.needs.clone(),
            },
            deployments,
            tags: svc.tags.clone(),
            scaled_by: vec![],
        }
    }

    /// Task `t` as DescribeTasks shows it (`None`: stopped).
    pub(crate) fn task_view(&self, t: usize) -> Option<Task> {
        let task = &self.tasks[t];
        let n = task.node;
        let (group, svc, cpu, memory, ports, util) = match (task.service, task.standalone) {
            (Some(s), _) => {
                let sv = &self.svcs[s];
                let spec = self.spec_ref(t);
                (
                    spec.group.clone(),
                    Some(sv.name.clone()),
                    spec.cpu,
                    spec.memory,
                    spec.host_ports.clone(),
                    Some(sv.utilization),
                )
            }
            (None, Some(k)) => {
                let sp = &self.standalone_specs[k];
                (sp.group.clone(), None, sp.cpu, sp.memory, vec![], Some((0.5, 0.5)))
            }
            _ => return None,
        };
        let (last, desired) = match task.state {
            TState::Pending => (TaskStatus::Pending, TaskStatus::Running),
            TState::Running => (TaskStatus::Running, TaskStatus::Running),
            TState::Stopping => (TaskStatus::Running, TaskStatus::Stopped),
            TState::Stopped => return None,
        };
        Some(Task {
            arn: task.arn.clone(),
            group,
            started_by: task.service.map(|_| format!("ecs-svc/{}", task.deployment)),
            service: svc,
            instance_arn: self.insts[n].arn.clone(),
            last_status: last,
            desired_status: desired,
            cpu,
            memory,
            host_ports: ports,
            healthy: task.state == TState::Running,
            protected: task.protected_until > self.now,
            utilization: util,
        })
    }

    fn node_by_arn(&self, arn: &str) -> Option<usize> {
        self.insts.iter().position(|i| i.arn == arn && matches!(i.state, InstState::Active | InstState::Draining))
    }

    fn service_by_name(&self, name: &str) -> Option<usize> {
        self.svcs.iter().position(|s| s.name == name)
    }

    /// Applies a policy's action (after the call succeeded).
    pub(crate) fn apply_action(&mut self, a: &Action) -> Result<(), BackendError> {
        let op = a.operation().to_string();
        let nf = |what: &str| BackendError::NotFound { operation: op.clone(), what: what.to_string() };
        match a {
            Action::SetInstanceState { instance_arns, status, .. } => {
                let mut found = false;
                for arn in instance_arns {
                    if let Some(n) = self.node_by_arn(arn) {
                        found = true;
                        self.set_status(n, *status == InstanceStatus::Draining, true);
                    }
                }
                if !found {
                    return Err(nf("container instance"));
                }
            }
            Action::PutAttribute { instance_arn, name, value } => {
                let n = self.node_by_arn(instance_arn).ok_or_else(|| nf(instance_arn))?;
                self.cs.nodes[n].attributes.insert(name.clone(), value.clone());
            }
            Action::DeleteAttribute { instance_arn, name } => {
                let n = self.node_by_arn(instance_arn).ok_or_else(|| nf(instance_arn))?;
                self.cs.nodes[n].attributes.remove(name);
            }
            Action::StopTask { task_arn, .. } => {
                let t = self.task_ids.get(task_arn).copied().ok_or_else(|| nf(task_arn))?;
                self.stop_task(t, crate::engine::Cause::Policy);
            }
            Action::SetServiceDesired { service, desired, .. } => {
                let s = self.service_by_name(service).ok_or_else(|| nf(service))?;
                if self.svcs[s].daemon {
                    return Err(BackendError::Invalid {
                        operation: op,
                        message: "a DAEMON service has no desired count".into(),
                    });
                }
                if self.svcs[s].desired != *desired {
                    self.svcs[s].desired = *desired;
                    self.service_updated(s);
                }
                self.svcs[s].desired_by_policy = true;
            }
            Action::ForceNewDeployment { service, .. } => {
                let s = self.service_by_name(service).ok_or_else(|| nf(service))?;
                self.svcs[s].deployment += 1;
                self.svcs[s].deployment_by_policy = true;
                if self.svcs[s].daemon {
                    // A daemon's new deployment replaces its task on each instance in place.
                    let live: Vec<usize> = self.svc_live[s].clone();
                    for t in live {
                        self.stop_task(t, crate::engine::Cause::Policy);
                    }
                }
                self.service_updated(s);
            }
            Action::SetTaskProtection { task_arns, protected, expires_in_minutes } => {
                let until = if *protected { self.now + Millis::mins(*expires_in_minutes as u64) } else { Millis(0) };
                for &k in task_arns.iter().filter_map(|a| self.task_ids.get(a)) {
                    let t = &mut self.tasks[k];
                    t.protected_until = until;
                }
            }
            Action::TagService { service, key, value } => {
                let s = self.service_by_name(service).ok_or_else(|| nf(service))?;
                self.svcs[s].tags.insert(key.clone(), value.clone());
            }
            Action::UntagService { service, key } => {
                let s = self.service_by_name(service).ok_or_else(|| nf(service))?;
                self.svcs[s].tags.remove(key);
            }
            Action::TagCluster { key, value } => {
                self.cluster_tags.insert(key.clone(), value.clone());
            }
            Action::UntagCluster { key } => {
                self.cluster_tags.remove(key);
            }
            Action::SetGroupDesired { group, desired, honor_cooldown, .. } => {
                let g = self.sc.groups.iter().position(|x| &x.name == group).ok_or_else(|| nf(group))?;
                let spec = &self.sc.groups[g];
                if *desired < spec.min || *desired > spec.max {
                    return Err(BackendError::Invalid {
                        operation: op,
                        message: format!("ValidationError: desired {desired} is outside [{}, {}]", spec.min, spec.max),
                    });
                }
                if *honor_cooldown && self.now < self.groups[g].cooldown_until {
                    return Err(BackendError::Conflict {
                        operation: op,
                        message: "ScalingActivityInProgress: the group's cooldown has not ended".into(),
                    });
                }
                self.set_group_desired(g, *desired);
                self.groups[g].cooldown_until = self.now + GROUP_COOLDOWN;
                self.fill_group_by(g, crate::engine::Cause::Policy);
            }
            Action::SetGroupLimits { group, min, max } => {
                let g = self.sc.groups.iter().position(|x| &x.name == group).ok_or_else(|| nf(group))?;
                if min > max {
                    return Err(BackendError::Invalid {
                        operation: op,
                        message: format!("ValidationError: MinSize {min} is above MaxSize {max}"),
                    });
                }
                // As Auto Scaling: a desired capacity outside the new range moves to its
                // nearest bound.
                self.sc.groups[g].min = *min;
                self.sc.groups[g].max = *max;
                let d = self.groups[g].desired.clamp(*min, *max);
                if d != self.groups[g].desired {
                    self.set_group_desired(g, d);
                    self.fill_group_by(g, crate::engine::Cause::Policy);
                }
            }
            Action::TerminateInstance { ec2_instance_id, decrement, .. } => {
                let n = self
                    .insts
                    .iter()
                    .position(|i| &i.ec2_id == ec2_instance_id && i.state != InstState::Gone)
                    .ok_or_else(|| nf(ec2_instance_id))?;
                let g = self.insts[n].group;
                if *decrement {
                    if self.groups[g].desired <= self.sc.groups[g].min {
                        return Err(BackendError::Invalid {
                            operation: op,
                            message: "ValidationError: decrementing would take the group below its minimum".into(),
                        });
                    }
                    let d = self.groups[g].desired - 1;
                    self.set_group_desired(g, d);
                }
                self.groups[g].cooldown_until = self.now + GROUP_COOLDOWN;
                self.terminate(n, crate::engine::Cause::Policy);
                self.fill_group(g);
            }
        }
        // The scheduler reacts at once (same instant), as ECS does within seconds.
        self.reconcile();
        Ok(())
    }
}

/// The snapshot as DescribeTasks shows it: without scale-in protection, which only
/// GetTaskProtection tells ([`Backend::task_protection`]), as on AWS.
fn hide_protection(mut snap: Snapshot) -> Snapshot {
    for t in &mut snap.tasks {
        t.protected = false;
    }
    snap
}

impl Backend for SimBackend<'_> {
    fn snapshot(&mut self, cluster: &str) -> Result<Snapshot, BackendError> {
        if cluster != self.sim.sc.cluster {
            self.call("DescribeClusters")?;
            return Err(BackendError::NotFound {
                operation: "DescribeClusters".into(),
                what: format!("cluster {cluster}"),
            });
        }
        // As the AWS adapter reads a cluster (ballast_core::backend::snapshot_calls); ListTasks
        // asks for desiredStatus RUNNING only, so tasks already being stopped are not listed.
        // The counts are the cluster's as the reads start; the snapshot is what they return.
        let sim = &*self.sim;
        let registered =
            sim.insts.iter().filter(|i| matches!(i.state, InstState::Active | InstState::Draining)).count();
        let is_live = |t: usize| matches!(sim.tasks[t].state, TState::Pending | TState::Running);
        let live_tasks = || (0..sim.insts.len()).flat_map(|n| sim.node_live[n].iter().copied()).filter(|&t| is_live(t));
        let live = live_tasks().count();
        // Task definitions of services and of standalone tasks (one per family), each once.
        let defs: BTreeSet<&String> = sim
            .svcs
            .iter()
            .map(|s| &s.task_def)
            .chain(live_tasks().filter_map(|t| sim.tasks[t].standalone.map(|k| &sim.standalone_specs[k].group)))
            .collect();
        let new_defs: Vec<String> = defs.into_iter().filter(|d| !self.task_defs_seen.contains(*d)).cloned().collect();
        let calls = snapshot_calls(registered, sim.svcs.len(), live, new_defs.len());
        for (op, n) in calls {
            for _ in 0..n {
                self.call(op)?;
            }
        }
        self.task_defs_seen.extend(new_defs);
        if self.warm {
            self.sim.task_defs_known.extend(self.task_defs_seen.iter().cloned());
        }
        // As the state is once the calls are answered (they take time).
        Ok(hide_protection(self.sim.snapshot()))
    }

    fn task_protection(
        &mut self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<BTreeMap<String, TaskProtection>, BackendError> {
        for _ in 0..task_arns.len().div_ceil(PROTECTION_BATCH).max(1) {
            self.call("GetTaskProtection")?;
        }
        if cluster != self.sim.sc.cluster {
            return Err(BackendError::NotFound {
                operation: "GetTaskProtection".into(),
                what: format!("cluster {cluster}"),
            });
        }
        let now = self.sim.now;
        Ok(task_arns
            .iter()
            .map(|a| {
                let until = self
                    .sim
                    .task_ids
                    .get(a)
                    .map(|&k| &self.sim.tasks[k])
                    .filter(|t| t.state != TState::Stopped)
                    .map_or(Millis(0), |t| t.protected_until);
                let p = if until > now {
                    TaskProtection { enabled: true, expires: Some(until) }
                } else {
                    TaskProtection::default()
                };
                (a.clone(), p)
            })
            .collect())
    }

    fn apply(&mut self, cluster: &str, action: &Action) -> Result<(), BackendError> {
        if cluster != self.sim.sc.cluster {
            return Err(BackendError::NotFound {
                operation: action.operation().into(),
                what: format!("cluster {cluster}"),
            });
        }
        if let Action::StopTask { task_arn, .. } = action {
            // As the AWS adapter: scale-in protection is read right before a stop, and a
            // protected task is never stopped.
            self.call("GetTaskProtection")?;
            if self.sim.task_ids.get(task_arn).is_some_and(|&k| self.sim.tasks[k].protected_until > self.sim.now) {
                return Err(BackendError::Invalid {
                    operation: "StopTask".into(),
                    message: format!("task {task_arn} has scale-in protection; ballast never stops a protected task"),
                });
            }
        }
        let lease = matches!(action, Action::TagCluster { .. } | Action::UntagCluster { .. });
        if !self.acted && !lease {
            // The bound from this state (the run's first mutating call); the report keeps
            // the largest over the runs that acted.
            self.acted = true;
            let snap = self.sim.snapshot();
            let lb = ballast_core::planner::min_moves(&snap);
            if self.sim.acct.min_moves.is_none_or(|m| lb > m) {
                self.sim.acct.min_moves = Some(lb);
                self.sim.acct.min_moves_state = Some(snap);
            }
        }
        // As the AWS adapter: a non-idempotent action gets one attempt, no SDK retries.
        let n = if action.idempotent() { SDK_ATTEMPTS } else { 1 };
        self.attempts(action.operation(), n, Some(action))?;
        self.sim.mutations += 1;
        if self.crash_after == Some(self.sim.mutations) {
            self.sim.acct.crashes += 1;
            return Err(BackendError::Crashed);
        }
        Ok(())
    }

    fn cluster_tags(&mut self, cluster: &str) -> Result<BTreeMap<String, String>, BackendError> {
        self.call("DescribeClusters")?;
        if cluster != self.sim.sc.cluster {
            return Err(BackendError::NotFound {
                operation: "DescribeClusters".into(),
                what: format!("cluster {cluster}"),
            });
        }
        Ok(self.sim.cluster_tags.clone())
    }

    fn group(&mut self, name: &str) -> Result<GroupInfo, BackendError> {
        self.call("DescribeAutoScalingGroups")?;
        let g = self.sim.sc.groups.iter().position(|x| x.name == name).ok_or_else(|| BackendError::NotFound {
            operation: "DescribeAutoScalingGroups".into(),
            what: format!("group {name}"),
        })?;
        let spec = &self.sim.sc.groups[g];
        Ok(GroupInfo {
            name: name.to_string(),
            desired: self.sim.groups[g].desired,
            min: spec.min,
            max: spec.max,
            cooldown: Some(spec.cooldown),
            instances: self
                .sim
                .group_members(g)
                .into_iter()
                .map(|n| {
                    let i = &self.sim.insts[n];
                    let lifecycle = match i.state {
                        _ if i.notice => Lifecycle::Leaving,
                        InstState::Booting => Lifecycle::Launching,
                        InstState::Active | InstState::Draining => Lifecycle::InService,
                        _ => Lifecycle::Leaving,
                    };
                    GroupInstance { ec2_instance_id: i.ec2_id.clone(), lifecycle }
                })
                .collect(),
        })
    }

    fn metric_data(&mut self, queries: &[MetricQuery]) -> Result<Vec<Option<f64>>, BackendError> {
        // GetMetricData takes up to 500 queries per call.
        for _ in 0..queries.len().div_ceil(500) {
            self.call("GetMetricData")?;
        }
        Ok(queries.iter().map(|q| self.sim.metric_value(q)).collect())
    }

    fn http(&mut self, req: &HttpRequest) -> Result<Vec<u8>, BackendError> {
        // Not an AWS call: not counted in api_calls. Faults of the scenario's api_faults apply
        // to AWS calls only.
        self.sim.http_answer(req)
    }

    fn now(&self) -> Millis {
        self.sim.now
    }

    fn instances(&mut self, cluster: &str, status: InstanceStatus) -> Result<Vec<ContainerInstance>, BackendError> {
        if cluster != self.sim.sc.cluster {
            self.call("ListContainerInstances")?;
            return Err(BackendError::NotFound {
                operation: "ListContainerInstances".into(),
                what: format!("cluster {cluster}"),
            });
        }
        let state = if status == InstanceStatus::Draining { InstState::Draining } else { InstState::Active };
        let n = self.sim.insts.iter().filter(|i| i.state == state).count();
        for _ in 0..n.div_ceil(100).max(1) {
            self.call("ListContainerInstances")?;
        }
        for _ in 0..n.div_ceil(100) {
            self.call("DescribeContainerInstances")?;
        }
        Ok((0..self.sim.insts.len())
            .filter(|&n| self.sim.insts[n].state == state)
            .filter_map(|n| self.sim.instance_view(n))
            .collect())
    }

    fn instance(&mut self, cluster: &str, arn: &str) -> Result<Option<ContainerInstance>, BackendError> {
        self.call("DescribeContainerInstances")?;
        if cluster != self.sim.sc.cluster {
            return Err(BackendError::NotFound {
                operation: "DescribeContainerInstances".into(),
                what: format!("cluster {cluster}"),
            });
        }
        Ok(self.sim.node_by_arn(arn).and_then(|n| self.sim.instance_view(n)))
    }

    fn service_state(
        &mut self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ballast_core::model::ServiceState>, BackendError> {
        self.call("DescribeServices")?;
        if cluster != self.sim.sc.cluster {
            return Err(BackendError::NotFound {
                operation: "DescribeServices".into(),
                what: format!("cluster {cluster}"),
            });
        }
        let Some(s) = self.sim.svcs.iter().position(|x| x.name == service) else { return Ok(None) };
        let live = self.sim.svc_live[s].iter().filter(|&&t| self.sim.tasks[t].state != TState::Stopping).count();
        for _ in 0..live.div_ceil(100).max(1) {
            self.call("ListTasks")?;
        }
        for _ in 0..live.div_ceil(100) {
            self.call("DescribeTasks")?;
        }
        // As the state is once the calls are answered (they take time); DescribeTasks does not
        // show protection.
        let mut state = self.sim.service_state_view(s);
        for t in &mut state.tasks {
            t.protected = false;
        }
        Ok(Some(state))
    }

    fn services(&mut self, cluster: &str) -> Result<Vec<Service>, BackendError> {
        if cluster != self.sim.sc.cluster {
            self.call("ListServices")?;
            return Err(BackendError::NotFound {
                operation: "ListServices".into(),
                what: format!("cluster {cluster}"),
            });
        }
        let n = self.sim.svcs.len();
        for _ in 0..n.div_ceil(100).max(1) {
            self.call("ListServices")?;
        }
        for _ in 0..n.div_ceil(10) {
            self.call("DescribeServices")?;
        }
        Ok((0..self.sim.svcs.len()).map(|s| self.sim.service_view(s)).collect())
    }

    fn metric_statistics(&mut self, q: &MetricQuery, window: Millis) -> Result<Vec<(Millis, f64)>, BackendError> {
        self.call("GetMetricStatistics")?;
        Ok(self.sim.metric_statistics(q, window))
    }

    fn sleep(&mut self, d: Millis) -> Result<(), BackendError> {
        let t = self.sim.now + d;
        self.sim.advance_to(t);
        Ok(())
    }
}
