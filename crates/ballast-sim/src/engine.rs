//! The simulator's state and clock: instances and groups, the event queue, scenario events.
//!
//! Time advances only through [`Sim::advance_to`] / [`Sim::run_until_trigger`]; every batch
//! of events at one instant is followed by one service-scheduler pass over the services it
//! touched, then by the instance events it caused (one per instance and instant).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_core::model::{Resources, attr};
use ballast_core::placement::{ClusterState, Node, TaskSpec};
use ballast_core::rng::Rng;

use crate::report::Accounting;
use crate::scenario::{Capacity, EventKind, Scenario};

/// Instance lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstState {
    /// Launched, not yet registered.
    Booting,
    /// Registered, ACTIVE.
    Active,
    /// Registered, DRAINING.
    Draining,
    /// Terminated and deregistered.
    Gone,
}

/// One EC2 instance (and its container instance once registered).
#[derive(Debug, Clone)]
pub struct Inst {
    /// EC2 id.
    pub ec2_id: String,
    /// Container instance ARN.
    pub arn: String,
    /// Group index.
    pub group: usize,
    /// AZ.
    pub az: String,
    /// Instance type.
    pub itype: String,
    /// Spot capacity.
    pub spot: bool,
    /// Lifecycle.
    pub state: InstState,
    /// Set DRAINING by the policy (and not re-activated since).
    pub drained_by_policy: bool,
    /// Launch time.
    pub launched_at: Millis,
    /// Termination time.
    pub gone_at: Option<Millis>,
    /// A Spot interruption notice was given.
    pub notice: bool,
    /// When it registered (became ACTIVE).
    pub active_at: Option<Millis>,
    /// When its Spot interruption notice came.
    pub notice_at: Option<Millis>,
    /// Event version counter.
    pub version: u64,
    /// $/hour.
    pub price: f64,
}

/// A capacity group (Auto Scaling group or Spot pool).
#[derive(Debug, Clone)]
pub struct Group {
    /// Desired capacity.
    pub desired: u32,
    /// Launches refused until (Spot outage).
    pub blocked_until: Millis,
    /// Round-robin index over instance types.
    pub next_type: usize,
    /// Every change of the desired capacity (time, new value), the first at time 0: the
    /// history the `AWS/EC2Spot` metrics are computed from.
    pub desired_history: Vec<(Millis, u32)>,
    /// A SetDesiredCapacity with HonorCooldown is refused until then (the group's default
    /// cooldown, 300 s, after the last scaling activity a policy started).
    pub cooldown_until: Millis,
}

/// Who caused a task to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The scenario (or ECS on its own).
    Scenario,
    /// The policy under test.
    Policy,
}

/// What the controller is woken for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// The scheduled run.
    Tick,
    /// An "ECS Container Instance State Change" event.
    Instance(InstanceStateChange),
    /// An "EC2 Spot Instance Interruption Warning" for this EC2 instance (2 minutes before).
    SpotWarning(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ev {
    Scenario(usize),
    Boot(usize),
    SpotKill(usize),
    OutageEnd(usize),
    TaskHealthy(usize),
    TaskGone(usize),
    Retry(usize),
    MetricSample,
    SchedPass,
    Tick,
}

/// The simulated ECS cluster.
pub struct Sim {
    /// The scenario.
    pub sc: Scenario,
    /// Simulated time.
    pub now: Millis,
    pub(crate) rng: Rng,
    pub(crate) fault_rng: Rng,
    /// Placement state (nodes parallel to `insts`).
    pub cs: ClusterState,
    /// Instances.
    pub insts: Vec<Inst>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Services.
    pub svcs: Vec<crate::scheduler::Svc>,
    /// Tasks (index = id).
    pub tasks: Vec<crate::scheduler::SimTask>,
    /// Task ARN → id (the executor reads protection and stops tasks by ARN, in clusters of
    /// 100,000 tasks).
    pub(crate) task_ids: std::collections::HashMap<String, usize>,
    pub(crate) svc_live: Vec<Vec<usize>>,
    pub(crate) node_live: Vec<Vec<usize>>,
    pub(crate) standalone_specs: Vec<TaskSpec>,
    queue: BinaryHeap<Reverse<(Millis, u64, Ev)>>,
    seq: u64,
    pub(crate) dirty: BTreeSet<usize>,
    pub(crate) node_events: BTreeSet<usize>,
    /// Triggers for the controller, in order.
    pub triggers: VecDeque<Trigger>,
    /// The cluster's resource tags (where ballast keeps its run lease).
    pub cluster_tags: BTreeMap<String, String>,
    /// A controller run is in progress (scheduled runs are skipped meanwhile).
    pub busy: bool,
    /// Report accounting.
    pub acct: Accounting,
    pub(crate) faults: Option<(f64, f64, f64, Millis)>,
    /// Mutating calls the policy made.
    pub mutations: u64,
    /// Check the invariants after every batch (tests).
    pub check: bool,
    /// Task definitions a warm client has described (see `SimBackend::warm`).
    pub task_defs_known: BTreeSet<String>,
    /// CPU and memory reserved by live tasks (pending and running) over the whole cluster.
    pub reserved: Resources,
    /// The `AWS/ECS` metrics sampled once a minute (index = minute).
    pub ecs_samples: Vec<Option<crate::cloudwatch::EcsSample>>,
    pub(crate) sample_due: bool,
    /// ECS's and CloudWatch's server-side throttling, shared by every caller of the account.
    pub server_buckets: ballast_core::throttle::ServerBuckets,
    /// The scheduled run's period (the scenario's `controller.every`, or the policy's own).
    pub tick_every: Millis,
    /// Invariant violations found (first few).
    pub violations: Vec<String>,
    /// Standalone tasks pending or running (kept as they start and stop: the capacity
    /// accounting reads it at every advance of the clock).
    pub(crate) standalone_live: u32,
    /// The region its ARNs name: the scenario's first AZ without its letter (`us-east-1a` →
    /// `us-east-1`).
    pub region: String,
}

/// The account id in the simulator's ARNs.
pub const ACCOUNT: &str = "123456789012";

/// The region an AZ name belongs to (`eu-west-2b` → `eu-west-2`; a Local Zone's
/// `us-west-2-lax-1a` → `us-west-2`).
pub fn region_of(az: &str) -> String {
    let parts: Vec<&str> = az.split('-').collect();
    if parts.len() >= 3 {
        let num: String = parts[2].chars().take_while(char::is_ascii_digit).collect();
        if !num.is_empty() {
            return format!("{}-{}-{num}", parts[0], parts[1]);
        }
    }
    az.trim_end_matches(|c: char| c.is_ascii_lowercase()).to_string()
}

/// The container agent version simulated instances report (for `agentVersion` queries).
pub const SIM_AGENT_VERSION: &str = "1.89.0";

impl Sim {
    /// A cluster as the scenario starts: initial instances registered and tasks running; the
    /// controller is woken every `controller.every`.
    pub fn new(sc: &Scenario) -> Sim {
        Sim::with_period(sc, sc.controller.every)
    }

    /// As [`Sim::new`], with the scheduled run every `every` (a policy with a cadence of its
    /// own, such as a baseline's published schedule).
    pub fn with_period(sc: &Scenario, every: Millis) -> Sim {
        let mut rng = Rng::new(sc.seed);
        let fault_rng = rng.fork(0xFA17);
        let mut sim = Sim {
            sc: sc.clone(),
            now: Millis(0),
            rng,
            fault_rng,
            cs: ClusterState::default(),
            insts: vec![],
            groups: sc
                .groups
                .iter()
                .map(|g| Group {
                    desired: g.desired,
                    blocked_until: Millis(0),
                    next_type: 0,
                    desired_history: vec![(Millis(0), g.desired)],
                    cooldown_until: Millis(0),
                })
                .collect(),
            svcs: vec![],
            tasks: vec![],
            task_ids: Default::default(),
            svc_live: vec![],
            node_live: vec![],
            standalone_specs: vec![],
            queue: BinaryHeap::new(),
            seq: 0,
            dirty: BTreeSet::new(),
            node_events: BTreeSet::new(),
            triggers: VecDeque::new(),
            cluster_tags: BTreeMap::new(),
            busy: false,
            acct: Accounting::default(),
            faults: None,
            mutations: 0,
            check: false,
            tick_every: every,
            server_buckets: Default::default(),
            ecs_samples: vec![],
            reserved: Resources { cpu: 0, memory: 0 },
            task_defs_known: BTreeSet::new(),
            sample_due: false,
            violations: vec![],
            region: region_of(sc.azs.first().map_or("us-east-1a", String::as_str)),
            standalone_live: 0,
        };
        sim.init_services();
        for g in 0..sim.groups.len() {
            for _ in 0..sim.groups[g].desired {
                let n = sim.launch(g);
                sim.register(n);
            }
        }
        sim.initial_placement();
        sim.node_events.clear();
        sim.triggers.clear();
        for (i, e) in sc.events.iter().enumerate() {
            sim.push(e.at, Ev::Scenario(i));
        }
        sim.push(every, Ev::Tick);
        sim.push(Millis::secs(60), Ev::SchedPass);
        sim.push(Millis(0), Ev::MetricSample);
        sim.account_start();
        sim
    }

    /// The cluster's ARN.
    pub fn cluster_arn(&self) -> String {
        format!("arn:aws:ecs:{}:{ACCOUNT}:cluster/{}", self.region, self.sc.cluster)
    }

    /// An ECS ARN of this account and region (`kind` = `task`, `service`, …).
    pub fn ecs_arn(&self, kind: &str, rest: &str) -> String {
        format!("arn:aws:ecs:{}:{ACCOUNT}:{kind}/{rest}", self.region)
    }

    pub(crate) fn push(&mut self, at: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    fn peek_time(&self) -> Option<Millis> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Processes every event up to and including `t`, then sets the clock to `t`.
    pub fn advance_to(&mut self, t: Millis) {
        while let Some(next) = self.peek_time() {
            if next > t {
                break;
            }
            self.batch(next);
        }
        if t > self.now {
            self.account_advance(t);
            self.now = t;
        }
    }

    /// Runs until the controller has something to do, or `end`. Returns the trigger.
    pub fn run_until_trigger(&mut self, end: Millis) -> Option<Trigger> {
        loop {
            if let Some(tr) = self.triggers.pop_front() {
                return Some(tr);
            }
            match self.peek_time() {
                Some(t) if t <= end => self.batch(t),
                _ => {
                    self.advance_to(end);
                    return self.triggers.pop_front();
                }
            }
        }
    }

    fn batch(&mut self, t: Millis) {
        if t > self.now {
            self.account_advance(t);
            self.now = t;
        }
        while self.peek_time() == Some(t) {
            let Reverse((_, _, ev)) = self.queue.pop().expect("peeked");
            self.handle(ev);
        }
        self.reconcile();
        if std::mem::take(&mut self.sample_due) {
            self.take_ecs_sample();
        }
        self.flush_node_events();
        self.account_batch();
        if self.check
            && self.violations.len() < 5
            && let Err(e) = self.check_invariants()
        {
            self.violations.push(format!("{}: {e}", self.now));
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Scenario(i) => self.scenario_event(i),
            Ev::Boot(n) => {
                if self.insts[n].state == InstState::Booting {
                    self.register(n);
                }
            }
            Ev::SpotKill(n) => self.terminate(n, crate::engine::Cause::Scenario),
            Ev::OutageEnd(g) => self.fill_group(g),
            Ev::TaskHealthy(t) => self.task_healthy(t),
            Ev::TaskGone(t) => self.task_gone(t),
            Ev::Retry(s) => {
                self.dirty.insert(s);
            }
            Ev::MetricSample => {
                self.sample_due = true;
                self.push(self.now + crate::cloudwatch::SAMPLE_EVERY, Ev::MetricSample);
            }
            Ev::SchedPass => {
                self.dirty.extend(0..self.svcs.len());
                self.push(self.now + Millis::secs(60), Ev::SchedPass);
            }
            Ev::Tick => {
                if !self.busy {
                    self.triggers.push_back(Trigger::Tick);
                } else {
                    self.acct.skipped_runs += 1;
                }
                self.push(self.now + self.tick_every, Ev::Tick);
            }
        }
    }

    fn scenario_event(&mut self, i: usize) {
        let kind = self.sc.events[i].kind.clone();
        match kind {
            EventKind::SetGroupDesired { group, desired } => {
                self.set_group_desired(group, desired);
                self.fill_group(group);
            }
            EventKind::SetServiceDesired { service, desired } => {
                let s = &mut self.svcs[service];
                s.desired = desired;
                s.scenario_desired = desired;
                s.desired_by_policy = false;
                self.service_updated(service);
                // The denominator changed: what the policy still costs is re-accounted.
                self.settle_missing(service);
                self.note_availability(service);
            }
            EventKind::InterruptSpot { group, fraction } => {
                let live: Vec<usize> =
                    self.group_members(group).into_iter().filter(|&n| !self.insts[n].notice).collect();
                let k = ((live.len() as f64) * fraction).ceil() as usize;
                let mut pool = live;
                for _ in 0..k.min(pool.len()) {
                    let n = pool.swap_remove(self.rng.below(pool.len()));
                    self.notice(n);
                }
            }
            EventKind::TerminateInstances { group, count } => {
                let mut pool = self.group_members(group);
                for _ in 0..(count as usize).min(pool.len()) {
                    let n = pool.swap_remove(self.rng.below(pool.len()));
                    self.terminate(n, Cause::Scenario);
                }
                self.fill_group(group);
            }
            EventKind::SpotOutage { group, until } => {
                self.groups[group].blocked_until = until;
                for n in self.group_members(group) {
                    if !self.insts[n].notice {
                        self.notice(n);
                    }
                }
                self.push(until, Ev::OutageEnd(group));
            }
            EventKind::ApiFaults { throttle_rate, error_rate, timeout_rate, until } => {
                self.faults = Some((throttle_rate, error_rate, timeout_rate, until));
            }
            EventKind::SetUtilization { service, cpu, memory } => {
                self.svcs[service].utilization = (cpu, memory);
            }
        }
    }

    /// Sets a group's desired capacity and records the change.
    pub(crate) fn set_group_desired(&mut self, g: usize, desired: u32) {
        let grp = &mut self.groups[g];
        grp.desired = desired;
        grp.desired_history.push((self.now, desired));
    }

    fn notice(&mut self, n: usize) {
        self.insts[n].notice = true;
        self.insts[n].notice_at = Some(self.now);
        if self.sc.controller.on_instance_events {
            self.triggers.push_back(Trigger::SpotWarning(self.insts[n].ec2_id.clone()));
        }
        self.push(self.now + Millis::mins(2), Ev::SpotKill(n));
    }

    /// Live (not terminated) instances of a group, booting included.
    pub fn group_members(&self, g: usize) -> Vec<usize> {
        (0..self.insts.len()).filter(|&n| self.insts[n].group == g && self.insts[n].state != InstState::Gone).collect()
    }

    /// Launches or terminates instances until the group matches its desired capacity.
    pub(crate) fn fill_group(&mut self, g: usize) {
        self.fill_group_by(g, Cause::Scenario);
    }

    /// As [`Sim::fill_group`]; instances scaled in are charged to `cause`.
    pub(crate) fn fill_group_by(&mut self, g: usize, cause: Cause) {
        let members = self.group_members(g);
        let desired = self.groups[g].desired as usize;
        if members.len() < desired {
            if self.sc.groups[g].capacity == Capacity::Spot && self.now < self.groups[g].blocked_until {
                return;
            }
            for _ in members.len()..desired {
                let n = self.launch(g);
                let at = self.now + self.sc.groups[g].boot;
                self.push(at, Ev::Boot(n));
            }
        } else if members.len() > desired {
            for _ in desired..members.len() {
                let Some(n) = self.scale_in_victim(g) else { break };
                self.terminate(n, cause);
            }
        }
    }

    /// The Auto Scaling default termination policy, as modelled: the AZ with the most
    /// instances of the group, an instance still booting first, then a seeded random one.
    fn scale_in_victim(&mut self, g: usize) -> Option<usize> {
        let members = self.group_members(g);
        let mut per_az: BTreeMap<&str, usize> = BTreeMap::new();
        for &n in &members {
            *per_az.entry(self.insts[n].az.as_str()).or_default() += 1;
        }
        let most = *per_az.values().max()?;
        let az: String = per_az.iter().find(|(_, c)| **c == most).map(|(a, _)| a.to_string())?;
        let in_az: Vec<usize> = members.into_iter().filter(|&n| self.insts[n].az == az).collect();
        if let Some(&b) = in_az.iter().find(|&&n| self.insts[n].state == InstState::Booting) {
            return Some(b);
        }
        Some(in_az[self.rng.below(in_az.len())])
    }

    /// Creates a booting instance in the group's least-used AZ.
    pub(crate) fn launch(&mut self, g: usize) -> usize {
        let spec = &self.sc.groups[g];
        let members = self.group_members(g);
        let az = self
            .sc
            .azs
            .iter()
            .min_by_key(|a| members.iter().filter(|&&n| &self.insts[n].az == *a).count())
            .cloned()
            .expect("at least one AZ");
        let itype = spec.instance_types[self.groups[g].next_type % spec.instance_types.len()].clone();
        self.groups[g].next_type += 1;
        let t = &self.sc.catalogue[&itype];
        let spot = spec.capacity == Capacity::Spot;
        let n = self.insts.len();
        let id =
            format!("{:017x}", 0x0ba1_1a57_0000_0000u64 ^ (self.sc.seed.wrapping_mul(0x9E37_79B9) << 20) ^ n as u64);
        let ec2_id = format!("i-{}", &id[id.len() - 17..]);
        let arn = format!(
            "arn:aws:ecs:{}:{ACCOUNT}:container-instance/{}/{}",
            self.region,
            self.sc.cluster,
            crate::scheduler::hex_id(self.sc.seed ^ 0xC1, n as u64)
        );
        let mut attributes = BTreeMap::new();
        attributes.insert(attr::AZ.to_string(), az.clone());
        attributes.insert(attr::INSTANCE_TYPE.to_string(), itype.clone());
        attributes.insert(attr::AMI_ID.to_string(), "ami-0ba11a5700000001".to_string());
        attributes.insert(attr::OS_TYPE.to_string(), "linux".to_string());
        attributes.insert("ecs.cpu-architecture".to_string(), t.arch.to_string());
        let trunked = self.sc.groups[g].eni_trunking;
        if trunked {
            attributes.insert("ecs.awsvpc-trunk-id".to_string(), format!("eni-{}", &id[id.len() - 17..]));
        }
        let gpus = self.sc.groups[g].gpus;
        self.cs.add_node(Node {
            id: arn.clone(),
            ec2_id: ec2_id.clone(),
            attributes,
            active: false,
            agent_connected: false,
            registered: Resources { cpu: t.cpu, memory: t.memory },
            free: Resources { cpu: t.cpu, memory: t.memory },
            ports: [22u16, 2375, 2376, 51678, 51679].into_iter().collect(),
            live_tasks: 0,
            registered_at: Millis(0),
            az: String::new(),
            az_id: 0,
            extra: ballast_core::placement::NodeExtras {
                gpus_free: gpus,
                udp: Default::default(),
                agent_version: SIM_AGENT_VERSION.into(),
                awsvpc_free: ballast_core::placement::awsvpc_task_limit(&itype, trunked),
            },
        });
        self.insts.push(Inst {
            ec2_id,
            arn,
            group: g,
            az,
            itype,
            spot,
            state: InstState::Booting,
            drained_by_policy: false,
            launched_at: self.now,
            gone_at: None,
            notice: false,
            active_at: None,
            notice_at: None,
            version: 1,
            price: if spot { t.spot_price } else { t.price },
        });
        self.node_live.push(vec![]);
        n
    }

    fn register(&mut self, n: usize) {
        self.insts[n].state = InstState::Active;
        self.insts[n].active_at = Some(self.now);
        let node = &mut self.cs.nodes[n];
        node.active = true;
        node.agent_connected = true;
        node.registered_at = self.now;
        self.dirty.extend(0..self.svcs.len());
        // The registration event shows the instance as it joins: empty, before the
        // scheduler places anything (daemon tasks included) on it.
        self.insts[n].version += 1;
        if self.sc.controller.on_instance_events {
            let ev = self.instance_event(n);
            self.triggers.push_back(Trigger::Instance(ev));
        }
    }

    /// Terminates an instance: its tasks die with it and it deregisters.
    pub(crate) fn terminate(&mut self, n: usize, cause: Cause) {
        if self.insts[n].state == InstState::Gone {
            return;
        }
        for t in self.node_live[n].clone() {
            self.kill_task(t, cause);
        }
        let i = &mut self.insts[n];
        i.state = InstState::Gone;
        i.gone_at = Some(self.now);
        let node = &mut self.cs.nodes[n];
        node.active = false;
        node.agent_connected = false;
        self.dirty.extend(0..self.svcs.len());
        self.node_events.insert(n);
        let g = self.insts[n].group;
        if self.group_members(g).len() < self.groups[g].desired as usize {
            self.fill_group(g);
        }
    }

    /// Sets an instance ACTIVE or DRAINING (an UpdateContainerInstancesState call).
    pub(crate) fn set_status(&mut self, n: usize, draining: bool, by_policy: bool) {
        let i = &mut self.insts[n];
        if i.state != InstState::Active && i.state != InstState::Draining {
            return;
        }
        i.state = if draining { InstState::Draining } else { InstState::Active };
        i.drained_by_policy = draining && by_policy;
        self.cs.nodes[n].active = !draining;
        self.dirty.extend(0..self.svcs.len());
        self.node_events.insert(n);
    }

    fn flush_node_events(&mut self) {
        let nodes = std::mem::take(&mut self.node_events);
        for n in nodes {
            self.insts[n].version += 1;
            if !self.sc.controller.on_instance_events {
                continue;
            }
            let ev = self.instance_event(n);
            self.triggers.push_back(Trigger::Instance(ev));
        }
    }

    /// The state change event of instance `n` as it is now.
    pub fn instance_event(&self, n: usize) -> InstanceStateChange {
        let i = &self.insts[n];
        let node = &self.cs.nodes[n];
        let status = match i.state {
            InstState::Active => "ACTIVE",
            InstState::Draining => "DRAINING",
            InstState::Booting => "REGISTERING",
            InstState::Gone => "INACTIVE",
        };
        let (mut running, mut pending) = (0, 0);
        for &t in &self.node_live[n] {
            match self.tasks[t].state {
                crate::scheduler::TState::Running => running += 1,
                crate::scheduler::TState::Pending => pending += 1,
                _ => {}
            }
        }
        InstanceStateChange {
            cluster_arn: self.cluster_arn(),
            container_instance_arn: i.arn.clone(),
            ec2_instance_id: i.ec2_id.clone(),
            status: status.into(),
            agent_connected: node.agent_connected,
            running_tasks_count: running,
            pending_tasks_count: pending,
            attributes: node.attributes.clone(),
            version: i.version,
            time: self.now,
        }
    }
}
