//! The simulated ECS service scheduler: replica services (start, replace, scale in, roll a
//! deployment, replace tasks on DRAINING instances within the health budget), daemon
//! services (one task per eligible ACTIVE instance, last to stop on a DRAINING one) and
//! standalone tasks (placed once, never replaced). Choices: docs/simulator.md.

use std::collections::BTreeMap;

use ballast_core::duration::Millis;
use ballast_core::model::{Constraint, Strategy};
use ballast_core::placement::{TaskSpec, compile};

use crate::engine::{Cause, Ev, InstState, Sim};

/// Task lifecycle in the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TState {
    /// Placed, starting (not yet healthy).
    Pending,
    /// Running and healthy.
    Running,
    /// Stop requested (resources already released, §9.9).
    Stopping,
    /// Gone.
    Stopped,
}

/// A simulated task.
#[derive(Debug, Clone)]
pub struct SimTask {
    /// Task ARN.
    pub arn: String,
    /// Owning service, if any.
    pub service: Option<usize>,
    /// Standalone spec index, if standalone.
    pub standalone: Option<usize>,
    /// Node index.
    pub node: usize,
    /// Lifecycle.
    pub state: TState,
    /// Deployment it belongs to.
    pub deployment: u32,
    /// Scale-in protection until.
    pub protected_until: Millis,
}

/// A simulated service.
#[derive(Debug, Clone)]
pub struct Svc {
    /// Name.
    pub name: String,
    /// Daemon.
    pub daemon: bool,
    /// Desired count now.
    pub desired: u32,
    /// Desired count the scenario gave (availability denominator).
    pub scenario_desired: u32,
    /// The last desired change came from the policy.
    pub desired_by_policy: bool,
    /// Configured strategy.
    pub strategy: Vec<Strategy>,
    /// Constraints.
    pub constraints: Vec<Constraint>,
    /// Placement spec.
    pub spec: TaskSpec,
    /// minimumHealthyPercent.
    pub min_healthy: u32,
    /// maximumPercent.
    pub max_percent: u32,
    /// Start duration.
    pub start: Millis,
    /// Stop duration.
    pub stop: Millis,
    /// Utilisation fractions.
    pub utilization: (f64, f64),
    /// Current deployment id.
    pub deployment: u32,
    /// The current deployment was forced by the policy.
    pub deployment_by_policy: bool,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Tasks wanted but not placeable at the last pass.
    pub unplaced: u32,
    /// Healthy tasks missing because of the policy.
    pub policy_missing: u32,
    /// Placement attempts in a row that left tasks unplaced (the scheduler's back-off).
    pub place_failures: u32,
    /// No placement is attempted before then (the back-off after a failed attempt).
    pub retry_at: Millis,
    /// The task definition ARN of the current deployment (`NAME:1` from a scenario).
    pub task_def: String,
    /// Earlier deployments whose tasks may still run with another task definition (the twin's
    /// UpdateService with a new one): (deployment, task definition ARN, spec).
    pub old_specs: Vec<(u32, String, TaskSpec)>,
}

impl Sim {
    pub(crate) fn init_services(&mut self) {
        for s in &self.sc.services {
            let spec = TaskSpec {
                group: format!("service:{}", s.name),
                cpu: s.cpu,
                memory: s.memory,
                host_ports: s.ports.clone(),
                strategy: if s.daemon {
                    vec![]
                } else if s.strategy.is_empty() {
                    Strategy::service_default()
                } else {
                    s.strategy.clone()
                },
                rules: compile(&s.constraints),
                needs: s.needs.clone(),
            };
            self.svcs.push(Svc {
                name: s.name.clone(),
                daemon: s.daemon,
                desired: s.desired,
                scenario_desired: s.desired,
                desired_by_policy: false,
                strategy: s.strategy.clone(),
                constraints: s.constraints.clone(),
                spec,
                min_healthy: s.min_healthy_percent,
                max_percent: s.max_percent,
                start: s.start,
                stop: s.stop,
                utilization: s.utilization,
                deployment: 1,
                deployment_by_policy: false,
                tags: s.tags.clone(),
                unplaced: 0,
                policy_missing: 0,
                place_failures: 0,
                retry_at: Millis(0),
                task_def: format!(
                    "arn:aws:ecs:{}:{}:task-definition/{}:1",
                    self.region,
                    crate::engine::ACCOUNT,
                    s.name
                ),
                old_specs: vec![],
            });
            self.svc_live.push(vec![]);
        }
        for s in &self.sc.standalone {
            self.standalone_specs.push(TaskSpec {
                group: format!("family:{}", s.name),
                cpu: s.cpu,
                memory: s.memory,
                host_ports: vec![],
                strategy: vec![],
                rules: vec![],
                needs: Default::default(),
            });
        }
    }

    /// The cluster as it runs when the scenario starts: daemons first, then each service's
    /// tasks placed one by one by its own strategy, then standalone tasks (random placement).
    pub(crate) fn initial_placement(&mut self) {
        for s in 0..self.svcs.len() {
            if self.svcs[s].daemon {
                self.reconcile_daemon(s);
            }
        }
        for s in 0..self.svcs.len() {
            if !self.svcs[s].daemon {
                for _ in 0..self.svcs[s].desired {
                    let spec = self.svcs[s].spec.clone();
                    match self.cs.choose(&spec, &mut self.rng) {
                        Some(n) => {
                            self.start_task(Some(s), None, n);
                        }
                        None => break,
                    }
                }
            }
        }
        for k in 0..self.standalone_specs.len() {
            for _ in 0..self.sc.standalone[k].count {
                let spec = self.standalone_specs[k].clone();
                if let Some(n) = self.cs.choose(&spec, &mut self.rng) {
                    self.start_task(None, Some(k), n);
                }
            }
        }
        for t in &mut self.tasks {
            if t.state == TState::Pending {
                t.state = TState::Running;
            }
        }
        // Initial tasks are already running when the scenario starts; their queued health
        // events are harmless (task_healthy ignores running tasks).
    }

    /// The task definition ARN and spec of deployment `d` of service `s`: an earlier
    /// deployment's own when the twin changed the task definition since, else the current.
    pub(crate) fn deployment_def(&self, s: usize, d: u32) -> (&str, &TaskSpec) {
        let svc = &self.svcs[s];
        match svc.old_specs.iter().find(|(x, _, _)| *x == d && *x != svc.deployment) {
            Some((_, arn, spec)) => (arn, spec),
            None => (&svc.task_def, &svc.spec),
        }
    }

    /// Task `t`'s placement spec (its deployment's, for a service task).
    pub(crate) fn spec_ref(&self, t: usize) -> &TaskSpec {
        let task = &self.tasks[t];
        match (task.service, task.standalone) {
            (Some(s), _) => self.deployment_def(s, task.deployment).1,
            (None, Some(k)) => &self.standalone_specs[k],
            _ => unreachable!("a task is a service task or a standalone task"),
        }
    }

    pub(crate) fn spec_of(&self, t: usize) -> TaskSpec {
        self.spec_ref(t).clone()
    }

    /// Adds a service (the twin's CreateService); the scheduler places its tasks at once.
    pub(crate) fn add_service(&mut self, svc: Svc) -> usize {
        let s = self.svcs.len();
        self.svcs.push(svc);
        self.svc_live.push(vec![]);
        self.service_updated(s);
        self.reconcile();
        s
    }

    /// The service was updated (desired count or a new deployment): the scheduler evaluates
    /// it at once, whatever back-off an earlier failed placement started.
    pub(crate) fn service_updated(&mut self, s: usize) {
        self.svcs[s].place_failures = 0;
        self.svcs[s].retry_at = Millis(0);
        self.dirty.insert(s);
    }

    /// Places a new task on node `n` (PENDING; healthy after the service's start time).
    pub(crate) fn start_task(&mut self, service: Option<usize>, standalone: Option<usize>, n: usize) -> usize {
        let id = self.tasks.len();
        let spec = match service {
            Some(s) => self.svcs[s].spec.clone(),
            None => self.standalone_specs[standalone.expect("standalone")].clone(),
        };
        self.cs.place(n, &spec);
        self.reserved.cpu += spec.cpu;
        self.reserved.memory += spec.memory;
        let arn = self.ecs_arn("task", &format!("{}/{}", self.sc.cluster, hex_id(self.sc.seed, id as u64)));
        self.task_ids.insert(arn.clone(), id);
        self.tasks.push(SimTask {
            arn,
            service,
            standalone,
            node: n,
            state: TState::Pending,
            deployment: service.map_or(0, |s| self.svcs[s].deployment),
            protected_until: Millis(0),
        });
        self.node_live[n].push(id);
        let start = match service {
            Some(s) => {
                self.svc_live[s].push(id);
                self.svcs[s].start
            }
            None => {
                self.standalone_live += 1;
                Millis::secs(10)
            }
        };
        self.push(self.now + start, Ev::TaskHealthy(id));
        self.node_events.insert(n);
        id
    }

    pub(crate) fn task_healthy(&mut self, t: usize) {
        if self.tasks[t].state != TState::Pending {
            return;
        }
        self.tasks[t].state = TState::Running;
        if let Some(s) = self.tasks[t].service {
            let svc = &mut self.svcs[s];
            svc.policy_missing = svc.policy_missing.saturating_sub(1);
            self.dirty.insert(s);
            self.settle_missing(s);
            self.trace_change();
        }
        self.node_events.insert(self.tasks[t].node);
    }

    /// Requests a stop: resources are released now, the task is gone after `stop`.
    pub(crate) fn stop_task(&mut self, t: usize, cause: Cause) {
        self.stop_task_as(t, cause, false);
    }

    /// As [`Sim::stop_task`]; `scale_in`: the scheduler stops a surplus task because the
    /// desired count is lower (no longer wanted, so never missing).
    pub(crate) fn stop_task_as(&mut self, t: usize, cause: Cause, scale_in: bool) {
        let state = self.tasks[t].state;
        if state != TState::Pending && state != TState::Running {
            return;
        }
        let spec = self.spec_of(t);
        let n = self.tasks[t].node;
        self.cs.remove(n, &spec);
        self.reserved.cpu -= spec.cpu;
        self.reserved.memory -= spec.memory;
        self.tasks[t].state = TState::Stopping;
        self.account_stop(t, state, cause, scale_in);
        let stop = self.tasks[t].service.map_or(Millis::secs(30), |s| self.svcs[s].stop);
        self.push(self.now + stop, Ev::TaskGone(t));
        self.node_events.insert(n);
    }

    /// Kills a task at once (its instance died).
    pub(crate) fn kill_task(&mut self, t: usize, cause: Cause) {
        let state = self.tasks[t].state;
        if state == TState::Stopped {
            return;
        }
        if state != TState::Stopping {
            let spec = self.spec_of(t);
            self.cs.remove(self.tasks[t].node, &spec);
            self.reserved.cpu -= spec.cpu;
            self.reserved.memory -= spec.memory;
            self.tasks[t].state = TState::Stopping;
            self.account_stop(t, state, cause, false);
            // A service task killed with its instance is lost (a standalone one was counted by
            // account_stop already).
            if cause == Cause::Policy && self.tasks[t].service.is_some() {
                self.acct.tasks_lost += 1;
            }
        }
        self.tasks[t].state = TState::Stopping;
        self.task_gone(t);
    }

    fn account_stop(&mut self, t: usize, was: TState, cause: Cause, scale_in: bool) {
        // Freed resources may let a waiting daemon task in.
        self.dirty.extend((0..self.svcs.len()).filter(|&s| self.svcs[s].daemon));
        match self.tasks[t].service {
            Some(s) if self.svcs[s].daemon => {
                // A daemon task is not replaced elsewhere: never a restart (reported apart).
                if cause == Cause::Policy {
                    self.acct.daemon_tasks_stopped += 1;
                }
                self.dirty.insert(s);
            }
            Some(s) => {
                self.dirty.insert(s);
                if cause == Cause::Policy {
                    self.acct.tasks_restarted += 1;
                    if scale_in {
                        self.acct.tasks_scaled_in += 1;
                    } else if was == TState::Running {
                        self.svcs[s].policy_missing += 1;
                    }
                }
                self.settle_missing(s);
                self.note_availability(s);
            }
            None => {
                self.standalone_live -= 1;
                if cause == Cause::Policy {
                    self.acct.tasks_lost += 1;
                }
            }
        }
    }

    /// A service with at least the scenario's desired count healthy misses nothing, whatever
    /// stopped before (so a stop during a surge, or one later masked by the scenario's own
    /// losses, is never counted against the policy). Nor does one with its whole desired
    /// count healthy after the policy lowered it below the scenario's (an autoscale
    /// scale-in): the tasks it scaled in are surplus, never missing (`tasks_scaled_in`), so
    /// a stop made before its replacement was healthy is settled once the service is whole
    /// at the count the policy chose. Without this, an instance drained after a scale-in, its
    /// task replaced before it stopped, counted missing until demand rose back.
    pub(crate) fn settle_missing(&mut self, s: usize) {
        if self.svcs[s].policy_missing == 0 {
            return;
        }
        let healthy = self.svc_live[s].iter().filter(|&&t| self.tasks[t].state == TState::Running).count() as u32;
        if healthy >= self.svcs[s].scenario_desired.min(self.svcs[s].desired.max(1)) {
            self.svcs[s].policy_missing = 0;
        }
    }

    pub(crate) fn task_gone(&mut self, t: usize) {
        if self.tasks[t].state == TState::Stopped {
            return;
        }
        self.tasks[t].state = TState::Stopped;
        let n = self.tasks[t].node;
        self.node_live[n].retain(|&x| x != t);
        if let Some(s) = self.tasks[t].service {
            self.svc_live[s].retain(|&x| x != t);
            self.dirty.insert(s);
        }
        self.node_events.insert(n);
        // A DRAINING instance's daemon tasks stop once its replica tasks are gone.
        if self.insts[n].state == InstState::Draining {
            self.dirty.extend((0..self.svcs.len()).filter(|&s| self.svcs[s].daemon));
        }
    }

    /// One scheduler pass over the services touched since the last one.
    pub(crate) fn reconcile(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        // Daemons first: "the daemon task is the first task to launch on the instances".
        for &s in &dirty {
            if self.svcs[s].daemon {
                self.reconcile_daemon(s);
            }
        }
        for &s in &dirty {
            if !self.svcs[s].daemon {
                self.reconcile_replica(s);
            }
        }
    }

    fn live(&self, s: usize, st: TState) -> Vec<usize> {
        self.svc_live[s].iter().copied().filter(|&t| self.tasks[t].state == st).collect()
    }

    fn is_old(&self, s: usize, t: usize) -> bool {
        self.tasks[t].deployment != self.svcs[s].deployment || self.insts[self.tasks[t].node].state != InstState::Active
    }

    fn old_cause(&self, s: usize, t: usize) -> Cause {
        let inst = &self.insts[self.tasks[t].node];
        let drained = inst.state == InstState::Draining && inst.drained_by_policy;
        let redeployed = self.tasks[t].deployment != self.svcs[s].deployment && self.svcs[s].deployment_by_policy;
        if drained || redeployed { Cause::Policy } else { Cause::Scenario }
    }

    fn reconcile_replica(&mut self, s: usize) {
        let mut pending = self.live(s, TState::Pending);
        let mut running = self.live(s, TState::Running);
        let stopping = self.live(s, TState::Stopping).len();
        let desired = self.svcs[s].desired as usize;
        // 1. Scale in surplus tasks of the current deployment (pending ones first, then ECS's
        //    scale-in choice among unprotected tasks).
        let new_count = |sim: &Sim, p: &[usize], r: &[usize]| p.iter().chain(r).filter(|&&t| !sim.is_old(s, t)).count();
        let cause = if self.svcs[s].desired_by_policy { Cause::Policy } else { Cause::Scenario };
        while new_count(self, &pending, &running) > desired {
            if let Some(pos) = pending.iter().position(|&t| !self.is_old(s, t)) {
                let t = pending.remove(pos);
                self.stop_task_as(t, cause, true);
                continue;
            }
            let cands: Vec<usize> = running.iter().copied().filter(|&t| !self.is_old(s, t)).collect();
            let view: Vec<(usize, bool)> =
                cands.iter().map(|&t| (self.tasks[t].node, self.tasks[t].protected_until > self.now)).collect();
            let ties = self.cs.scale_in_ties(&self.svcs[s].spec, &view);
            if ties.is_empty() {
                break; // every remaining task is protected
            }
            let t = cands[ties[self.rng.below(ties.len())]];
            running.retain(|&x| x != t);
            self.stop_task_as(t, cause, true);
        }
        // 2. Start what is missing, within maximumPercent (pending, running and stopping count).
        let news = new_count(self, &pending, &running);
        let cap = (desired as u64 * self.svcs[s].max_percent as u64 / 100) as usize;
        let in_flight = pending.len() + running.len() + stopping;
        let want = desired.saturating_sub(news);
        let can = want.min(cap.saturating_sub(in_flight));
        let mut placed = 0;
        // The scheduler backs off after a pass that could not place everything (docs/simulator.md).
        let (first, max) = self.sc.timing.placement_retry;
        let attempt = can > 0 && (first == Millis(0) || self.now >= self.svcs[s].retry_at);
        if attempt {
            for _ in 0..can {
                let spec = self.svcs[s].spec.clone();
                match self.cs.choose(&spec, &mut self.rng) {
                    Some(n) => {
                        let t = self.start_task(Some(s), None, n);
                        pending.push(t);
                        placed += 1;
                    }
                    None => break,
                }
            }
            if placed < can && first > Millis(0) {
                let svc = &mut self.svcs[s];
                let delay = Millis(first.0.saturating_mul(1u64 << svc.place_failures.min(30))).min(max);
                svc.place_failures += 1;
                svc.retry_at = self.now + delay;
                let at = svc.retry_at;
                self.push(at, Ev::Retry(s));
            } else if placed == can {
                self.svcs[s].place_failures = 0;
            }
        }
        self.svcs[s].unplaced = (can - placed) as u32;
        // 3. Stop old tasks (other deployment, or on a DRAINING instance) within
        //    minimumHealthyPercent: pending ones at once, running ones while enough stay healthy.
        let min_h = (desired as u64 * self.svcs[s].min_healthy as u64).div_ceil(100) as usize;
        let mut healthy = running.len();
        for t in pending.clone() {
            if self.is_old(s, t) {
                let c = self.old_cause(s, t);
                self.stop_task(t, c);
            }
        }
        let olds: Vec<usize> = running.iter().copied().filter(|&t| self.is_old(s, t)).collect();
        for t in olds {
            if healthy > min_h && healthy > 0 {
                let c = self.old_cause(s, t);
                self.stop_task(t, c);
                healthy -= 1;
            } else {
                break;
            }
        }
    }

    fn reconcile_daemon(&mut self, s: usize) {
        let spec = self.svcs[s].spec.clone();
        for n in 0..self.insts.len() {
            let has: Vec<usize> = self.node_live[n]
                .iter()
                .copied()
                .filter(|&t| {
                    self.tasks[t].service == Some(s) && matches!(self.tasks[t].state, TState::Pending | TState::Running)
                })
                .collect();
            match self.insts[n].state {
                InstState::Active => {
                    let fits_rules = self.cs.constraints_hold(n, &spec);
                    if has.is_empty() && fits_rules && self.cs.fits(n, &spec) {
                        self.start_task(Some(s), None, n);
                    } else if !has.is_empty() && !self.cs.eligible(n, &spec) {
                        for t in has {
                            self.stop_task(t, Cause::Scenario);
                        }
                    }
                }
                InstState::Draining => {
                    let replicas_left =
                        self.node_live[n].iter().any(|&t| self.tasks[t].service.is_some_and(|x| !self.svcs[x].daemon));
                    if !replicas_left {
                        let cause = if self.insts[n].drained_by_policy { Cause::Policy } else { Cause::Scenario };
                        for t in has {
                            self.stop_task(t, cause);
                        }
                    }
                }
                _ => {}
            }
        }
        self.svcs[s].desired =
            self.svc_live[s].iter().filter(|&&t| self.tasks[t].state != TState::Stopping).count() as u32;
    }
}

/// A 32-hex-digit id, as ECS task ids look, derived from the seed and a counter.
pub fn hex_id(seed: u64, n: u64) -> String {
    let mut r = ballast_core::rng::Rng::new(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    format!("{:016x}{:016x}", r.next_u64(), r.next_u64())
}
