//! The ECS scheduler's placement rules, in one place.
//!
//! [`ClusterState`] holds, per container instance, what placement needs (free CPU and memory,
//! ports, attributes, schedulability) and, per task group, how many live tasks each instance
//! runs. The simulator places every task through it; the planner predicts replacements with it.
//!
//! The pipeline follows ecs-behaviour.md §1.1: (1) resources and ports fit, the instance is
//! ACTIVE with its agent connected; (2) constraints hold; (3) strategies filter the candidates
//! lexicographically (each rule keeps its best-scoring candidates, the next rule breaks ties);
//! (4) a seeded random choice among the remaining ties (docs/simulator.md, choices 1–4).

use std::collections::{BTreeMap, BTreeSet};

use crate::cql::{Expr, Subject};
use crate::duration::Millis;
use crate::model::{BinpackField, Constraint, Resources, Service, Snapshot, Strategy, TaskNeeds};
use crate::rng::Rng;

use crate::model::attr::AZ_SPREAD as AZ_FIELD;

/// Container instance ARN → node index (hashed with foldhash: a plan looks up every task's
/// instance, up to 100,000 of them).
pub type NodeIndex = foldhash::HashMap<String, usize>;

/// The snapshot's instances by ARN, each at its position in `snap.instances` (the node index
/// [`ClusterState::from_snapshot`] gives it).
pub fn node_index(snap: &Snapshot) -> NodeIndex {
    snap.instances.iter().enumerate().map(|(i, inst)| (inst.arn.clone(), i)).collect()
}

/// Per task of the snapshot (same positions), the position in `snap.instances` (its node) of
/// its instance, if the task is live (desiredStatus RUNNING) and its instance is in the
/// snapshot. The index is borrowed: the simulator measures every tick, and an owned one would
/// copy every instance's ARN each time.
pub fn task_nodes(snap: &Snapshot) -> Vec<Option<usize>> {
    let index: foldhash::HashMap<&str, usize> =
        snap.instances.iter().enumerate().map(|(k, i)| (i.arn.as_str(), k)).collect();
    snap.tasks.iter().map(|t| if t.is_live() { index.get(t.instance_arn.as_str()).copied() } else { None }).collect()
}

/// A constraint, compiled.
#[derive(Debug, Clone)]
pub enum Rule {
    /// One task of the group per instance.
    DistinctInstance,
    /// Instances matching the expression.
    MemberOf(Expr),
}

/// Everything placement needs to know about a task to be placed.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// Task group (`service:NAME`, `family:NAME`).
    pub group: String,
    /// CPU units.
    pub cpu: i64,
    /// Memory, MiB.
    pub memory: i64,
    /// Host ports.
    pub host_ports: Vec<u16>,
    /// Strategy chain (empty: no strategy, random among candidates).
    pub strategy: Vec<Strategy>,
    /// Constraints.
    pub rules: Vec<Rule>,
    /// GPUs, UDP ports, an ENI, attributes.
    pub needs: TaskNeeds,
}

impl TaskSpec {
    /// The spec of a service's tasks, with ECS's default strategy when none is set.
    pub fn for_service(svc: &Service) -> TaskSpec {
        TaskSpec {
            group: svc.group(),
            cpu: svc.task_definition.cpu,
            memory: svc.task_definition.memory,
            host_ports: svc.task_definition.host_ports.clone(),
            strategy: if svc.daemon { vec![] } else { svc.effective_strategy() },
            rules: compile(&svc.constraints),
            needs: svc.task_definition.needs.clone(),
        }
    }
}

/// Compiles constraints (expressions that fail to parse were rejected at the boundary and
/// match nothing here).
pub fn compile(constraints: &[Constraint]) -> Vec<Rule> {
    constraints
        .iter()
        .map(|c| match c {
            Constraint::DistinctInstance => Rule::DistinctInstance,
            Constraint::MemberOf(e) => Rule::MemberOf(
                Expr::parse(e).unwrap_or_else(|_| Expr::parse("attribute:__never__ exists").expect("static")),
            ),
        })
        .collect()
}

/// One container instance as placement sees it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Container instance ARN.
    pub id: String,
    /// EC2 instance id.
    pub ec2_id: String,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// ACTIVE (not DRAINING).
    pub active: bool,
    /// Agent connected.
    pub agent_connected: bool,
    /// Registered resources.
    pub registered: Resources,
    /// Unreserved resources.
    pub free: Resources,
    /// Host ports in use.
    pub ports: BTreeSet<u16>,
    /// Live tasks (desiredStatus RUNNING).
    pub live_tasks: u32,
    /// Registration time.
    pub registered_at: Millis,
    /// The AZ attribute, cached by [`ClusterState::add_node`] (spread over AZs is the
    /// commonest rule and is evaluated for every instance on every placement).
    pub az: String,
    /// The AZ's index in [`ClusterState::az_names`], set by [`ClusterState::add_node`]
    /// (counting per AZ by index, not by comparing names, keeps a 100,000-task plan fast).
    pub az_id: usize,
    /// GPUs, UDP ports, ENI attachment points, the agent's version.
    pub extra: NodeExtras,
}

/// What a node offers beyond CPU, memory and TCP ports.
#[derive(Debug, Clone, Default)]
pub struct NodeExtras {
    /// GPUs not reserved.
    pub gpus_free: u32,
    /// UDP host ports in use.
    pub udp: BTreeSet<u16>,
    /// The agent's version ("" unknown).
    pub agent_version: String,
    /// awsvpc tasks it can still take (`None`: its type's limit is unknown, so none applied).
    pub awsvpc_free: Option<u32>,
}

/// How many awsvpc tasks one instance of `instance_type` can hold: its network interfaces
/// less the primary one, or with ENI trunking (`trunked`: the instance has the
/// `ecs.awsvpc-trunk-id` attribute) its branch interfaces. From the EC2 "network interfaces
/// per instance type" table and the ECS developer guide's "Supported Amazon EC2 instance
/// types" for trunking, for the families ballast's catalogue knows (m5, c5, r5, m6i, c6i,
/// r6i, m6g, c6g, r6g, m7g, c7g, r7g, t3); `None` for any other type (no limit applied, a
/// documented choice: docs/simulator.md).
pub fn awsvpc_task_limit(instance_type: &str, trunked: bool) -> Option<u32> {
    let (family, size) = instance_type.split_once('.')?;
    let known = ["m5", "c5", "r5", "m6i", "c6i", "r6i", "m6g", "c6g", "r6g", "m7g", "c7g", "r7g"];
    // (interfaces, branch interfaces with trunking)
    let (enis, branches) = match (family, size) {
        ("t3", "nano" | "micro") => (2, 0),
        ("t3", "small" | "medium" | "large") => (3, 0),
        ("t3", "xlarge" | "2xlarge") => (4, 0),
        (f, _) if !known.contains(&f) => return None,
        (_, "medium") => (2, 4),
        (_, "large") => (3, 10),
        (_, "xlarge") => (4, 20),
        (_, "2xlarge") => (4, 40),
        (_, "4xlarge") => (8, 60),
        (_, "8xlarge" | "9xlarge" | "12xlarge") => (8, 60),
        (_, "16xlarge" | "18xlarge" | "24xlarge" | "metal") => (15, 120),
        _ => return None,
    };
    Some(if trunked && branches > 0 { branches } else { enis - 1 })
}

impl Node {
    /// Takes new tasks: ACTIVE with a connected agent.
    pub fn schedulable(&self) -> bool {
        self.active && self.agent_connected
    }
}

/// Per-instance resources and per-group task counts: the state placement decides on.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    /// The instances, in a stable order.
    pub nodes: Vec<Node>,
    groups: foldhash::HashMap<String, Vec<u32>>,
    /// The AZs seen, indexed by [`Node::az_id`].
    pub az_names: Vec<String>,
}

struct NodeSubject<'a> {
    state: &'a ClusterState,
    i: usize,
}

impl Subject for NodeSubject<'_> {
    fn values(&self, subject: &str) -> Vec<String> {
        let n = &self.state.nodes[self.i];
        match subject {
            "ec2InstanceId" => vec![n.ec2_id.clone()],
            "agentConnected" => vec![n.agent_connected.to_string()],
            "runningTasksCount" => vec![n.live_tasks.to_string()],
            "registeredAt" => vec![n.registered_at.0.to_string()],
            "agentVersion" if !n.extra.agent_version.is_empty() => vec![n.extra.agent_version.clone()],
            "agentVersion" => vec![],
            "task:group" => self
                .state
                .groups
                .iter()
                .filter(|(_, v)| v.get(self.i).copied().unwrap_or(0) > 0)
                .map(|(g, _)| g.clone())
                .collect(),
            s => s.strip_prefix("attribute:").and_then(|a| n.attributes.get(a)).cloned().into_iter().collect(),
        }
    }
}

impl ClusterState {
    /// Whether instance `i` matches a cluster query language expression (a `memberOf`
    /// constraint's, or ListContainerInstances' `filter`).
    pub fn matches(&self, i: usize, e: &crate::cql::Expr) -> bool {
        e.eval(&NodeSubject { state: self, i })
    }

    /// Builds the state from a snapshot: free resources and ports as reported, group counts
    /// from the live tasks. Returns the state and the ARN → node index map.
    pub fn from_snapshot(snap: &Snapshot) -> (ClusterState, NodeIndex) {
        let idx = node_index(snap);
        let st = ClusterState::from_snapshot_at(snap, &task_nodes(snap));
        (st, idx)
    }

    /// [`ClusterState::from_snapshot`] with each task's node already looked up
    /// ([`task_nodes`]; the planner looks up each of up to 100,000 tasks' instance once).
    pub fn from_snapshot_at(snap: &Snapshot, task_nodes: &[Option<usize>]) -> ClusterState {
        let mut st = ClusterState::default();
        for inst in &snap.instances {
            st.add_node(Node {
                id: inst.arn.clone(),
                ec2_id: inst.ec2_instance_id.clone(),
                attributes: inst.attributes.clone(),
                active: inst.status == crate::model::InstanceStatus::Active,
                agent_connected: inst.agent_connected,
                registered: inst.registered,
                free: inst.remaining,
                ports: inst.ports_in_use.iter().copied().collect(),
                live_tasks: 0,
                registered_at: inst.registered_at,
                az: String::new(),
                az_id: 0,
                extra: NodeExtras {
                    gpus_free: inst.extra.gpus_free,
                    udp: inst.extra.udp_ports_in_use.iter().copied().collect(),
                    agent_version: inst.extra.agent_version.clone().unwrap_or_default(),
                    awsvpc_free: inst.extra.awsvpc_limit,
                },
            });
        }
        let awsvpc: std::collections::HashSet<&str> =
            snap.services.iter().filter(|s| s.task_definition.needs.awsvpc).map(|s| s.name.as_str()).collect();
        for (t, node) in snap.tasks.iter().zip(task_nodes) {
            if let Some(i) = *node {
                st.count(&t.group, i, 1);
                let n = &mut st.nodes[i];
                n.live_tasks += 1;
                if t.service.as_deref().is_some_and(|s| awsvpc.contains(s)) {
                    n.extra.awsvpc_free = n.extra.awsvpc_free.map(|f| f.saturating_sub(1));
                }
            }
        }
        st
    }

    /// Adds an instance; returns its index.
    pub fn add_node(&mut self, mut node: Node) -> usize {
        node.az = node.attributes.get(crate::model::attr::AZ).cloned().unwrap_or_default();
        node.az_id = match self.az_names.iter().position(|a| *a == node.az) {
            Some(k) => k,
            None => {
                self.az_names.push(node.az.clone());
                self.az_names.len() - 1
            }
        };
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Removes the last instance added (a virtual instance that turned out not to help).
    pub fn pop_node(&mut self) {
        if self.nodes.pop().is_some() {
            let n = self.nodes.len();
            for v in self.groups.values_mut() {
                v.truncate(n);
            }
        }
    }

    /// Live tasks of `group` per AZ (index = [`Node::az_id`]).
    pub fn az_counts(&self, group: &str) -> Vec<u32> {
        let mut out = vec![0u32; self.az_names.len()];
        if let Some(v) = self.groups.get(group) {
            for (i, &c) in v.iter().enumerate() {
                if c > 0 {
                    out[self.nodes[i].az_id] += c;
                }
            }
        }
        out
    }

    /// Live tasks of `group` on node `i`.
    pub fn group_count(&self, group: &str, i: usize) -> u32 {
        self.groups.get(group).and_then(|v| v.get(i)).copied().unwrap_or(0)
    }

    /// Live tasks of `group` per node (index = node; may be shorter than `nodes`).
    pub fn group_counts(&self, group: &str) -> &[u32] {
        self.groups.get(group).map(Vec::as_slice).unwrap_or(&[])
    }

    fn count(&mut self, group: &str, i: usize, delta: i32) {
        let v = match self.groups.get_mut(group) {
            Some(v) => v,
            None => self.groups.entry(group.to_string()).or_default(),
        };
        if v.len() <= i {
            v.resize(self.nodes.len().max(i + 1), 0);
        }
        v[i] = (v[i] as i64 + delta as i64).max(0) as u32;
    }

    /// Reserves a task's resources and ports on node `i` and counts it in its group.
    pub fn place(&mut self, i: usize, spec: &TaskSpec) {
        let n = &mut self.nodes[i];
        n.free.cpu -= spec.cpu;
        n.free.memory -= spec.memory;
        n.ports.extend(spec.host_ports.iter().copied());
        n.extra.gpus_free = n.extra.gpus_free.saturating_sub(spec.needs.gpus);
        n.extra.udp.extend(spec.needs.udp_ports.iter().copied());
        if spec.needs.awsvpc {
            n.extra.awsvpc_free = n.extra.awsvpc_free.map(|f| f.saturating_sub(1));
        }
        n.live_tasks += 1;
        self.count(&spec.group, i, 1);
    }

    /// Releases what [`ClusterState::place`] reserved (desiredStatus becomes STOPPED; §9.9).
    pub fn remove(&mut self, i: usize, spec: &TaskSpec) {
        let n = &mut self.nodes[i];
        n.free.cpu += spec.cpu;
        n.free.memory += spec.memory;
        for p in &spec.host_ports {
            n.ports.remove(p);
        }
        n.extra.gpus_free += spec.needs.gpus;
        for p in &spec.needs.udp_ports {
            n.extra.udp.remove(p);
        }
        if spec.needs.awsvpc {
            n.extra.awsvpc_free = n.extra.awsvpc_free.map(|f| f + 1);
        }
        n.live_tasks = n.live_tasks.saturating_sub(1);
        self.count(&spec.group, i, -1);
    }

    /// Steps 1 and 2: resources (CPU, memory, GPUs, TCP and UDP ports, an ENI attachment
    /// point for awsvpc), required attributes, status and constraints.
    pub fn fits(&self, i: usize, spec: &TaskSpec) -> bool {
        let n = &self.nodes[i];
        n.schedulable()
            && n.free.cpu >= spec.cpu
            && n.free.memory >= spec.memory
            && spec.host_ports.iter().all(|p| !n.ports.contains(p))
            && self.offers(i, &spec.needs)
            && self.constraints_hold(i, spec)
    }

    /// Whether node `i` has what `needs` asks beyond CPU, memory and TCP ports.
    pub fn offers(&self, i: usize, needs: &TaskNeeds) -> bool {
        let n = &self.nodes[i];
        n.extra.gpus_free >= needs.gpus
            && needs.udp_ports.iter().all(|p| !n.extra.udp.contains(p))
            && (!needs.awsvpc || n.extra.awsvpc_free.is_none_or(|f| f > 0))
            && needs.requires.iter().all(|(name, value)| match (n.attributes.get(name), value) {
                (Some(v), Some(want)) => v == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
    }

    /// Whether node `i` satisfies the spec's constraints (ignoring resources and status).
    pub fn constraints_hold(&self, i: usize, spec: &TaskSpec) -> bool {
        spec.rules.iter().all(|r| match r {
            Rule::DistinctInstance => self.group_count(&spec.group, i) == 0,
            Rule::MemberOf(e) => e.eval(&NodeSubject { state: self, i }),
        })
    }

    /// Whether node `i` satisfies the spec's memberOf expressions (status and resources aside).
    pub fn member_of_holds(&self, i: usize, spec: &TaskSpec) -> bool {
        spec.rules.iter().all(|r| match r {
            Rule::DistinctInstance => true,
            Rule::MemberOf(e) => e.eval(&NodeSubject { state: self, i }),
        })
    }

    /// Whether node `i` could ever host the group by its memberOf constraints (what the
    /// planner calls eligible: schedulable and matching, resources aside).
    pub fn eligible(&self, i: usize, spec: &TaskSpec) -> bool {
        self.nodes[i].schedulable()
            && spec.rules.iter().all(|r| match r {
                Rule::DistinctInstance => true,
                Rule::MemberOf(e) => e.eval(&NodeSubject { state: self, i }),
            })
    }

    /// All instances a task could be placed on now.
    pub fn candidates(&self, spec: &TaskSpec) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.fits(i, spec)).collect()
    }

    /// The value node `i` has for a spread field (`instanceId`/`host`: the instance itself).
    pub fn spread_value<'a>(&'a self, i: usize, field: &str) -> &'a str {
        let n = &self.nodes[i];
        match field {
            "instanceId" | "host" => &n.id,
            AZ_FIELD => &n.az,
            f => f.strip_prefix("attribute:").and_then(|a| n.attributes.get(a)).map(String::as_str).unwrap_or(""),
        }
    }

    /// Each of `nodes`' value of a spread field as a dense id (first appearance order), and
    /// how many values there are: AZs by [`Node::az_id`] order of appearance, `instanceId`
    /// one value per node, other attributes by a hash of the value (the planner asks this for
    /// every instance, for every service).
    pub fn value_ids(&self, field: &str, nodes: &[usize]) -> (Vec<usize>, usize) {
        if field == "instanceId" || field == "host" {
            return ((0..nodes.len()).collect(), nodes.len());
        }
        if field == AZ_FIELD {
            let mut id = vec![usize::MAX; self.az_names.len()];
            let mut n = 0;
            let of = nodes
                .iter()
                .map(|&i| {
                    let a = &mut id[self.nodes[i].az_id];
                    if *a == usize::MAX {
                        *a = n;
                        n += 1;
                    }
                    *a
                })
                .collect();
            return (of, n);
        }
        let mut ids: foldhash::HashMap<&str, usize> = Default::default();
        let of = nodes
            .iter()
            .map(|&i| {
                let n = ids.len();
                *ids.entry(self.spread_value(i, field)).or_insert(n)
            })
            .collect();
        (of, ids.len())
    }

    /// Live tasks of `group` per value of `field`, over every instance.
    pub fn value_counts<'a>(&'a self, group: &str, field: &str) -> Vec<(&'a str, u32)> {
        let mut out: Vec<(&str, u32)> = Vec::new();
        let per_node = field == "instanceId" || field == "host";
        if field == AZ_FIELD {
            // In order of first appearance, as below.
            let counts = self.az_counts(group);
            let mut seen = vec![false; counts.len()];
            if let Some(v) = self.groups.get(group) {
                for (i, &c) in v.iter().enumerate() {
                    let a = self.nodes[i].az_id;
                    if c > 0 && !seen[a] {
                        seen[a] = true;
                        out.push((self.az_names[a].as_str(), counts[a]));
                    }
                }
            }
            return out;
        }
        if let Some(v) = self.groups.get(group) {
            for (i, &c) in v.iter().enumerate() {
                if c > 0 && per_node {
                    // Every instance is its own value: no search needed.
                    out.push((&self.nodes[i].id, c));
                } else if c > 0 {
                    let val = self.spread_value(i, field);
                    match out.iter_mut().find(|(k, _)| *k == val) {
                        Some(e) => e.1 += c,
                        None => out.push((val, c)),
                    }
                }
            }
        }
        out
    }

    /// Each node's score under one rule (`None` for `random`, which scores nothing):
    /// spread → tasks of the group with the node's value; binpack → the node's free amount.
    fn rule_scores(&self, rule: &Strategy, group: &str, nodes: &[usize]) -> Option<Vec<i64>> {
        Some(match rule {
            Strategy::Spread(field) if field == "instanceId" || field == "host" => {
                let counts = self.group_counts(group);
                nodes.iter().map(|&i| counts.get(i).copied().unwrap_or(0) as i64).collect()
            }
            Strategy::Spread(field) if field == AZ_FIELD => {
                let counts = self.az_counts(group);
                nodes.iter().map(|&i| counts[self.nodes[i].az_id] as i64).collect()
            }
            Strategy::Spread(field) => {
                let counts = self.value_counts(group, field);
                nodes
                    .iter()
                    .map(|&i| {
                        let v = self.spread_value(i, field);
                        counts.iter().find(|(k, _)| *k == v).map_or(0, |e| e.1) as i64
                    })
                    .collect()
            }
            Strategy::Binpack(BinpackField::Cpu) => nodes.iter().map(|&i| self.nodes[i].free.cpu).collect(),
            Strategy::Binpack(BinpackField::Memory) => nodes.iter().map(|&i| self.nodes[i].free.memory).collect(),
            Strategy::Random => return None,
        })
    }

    /// Keeps the items whose node scores best under each rule in turn (lowest for placement,
    /// highest for scale-in); `node_of` maps an item to its node.
    fn filter_rules(
        &self,
        rules: &[Strategy],
        group: &str,
        mut items: Vec<usize>,
        node_of: impl Fn(usize) -> usize,
        highest: bool,
    ) -> Vec<usize> {
        for rule in rules {
            if items.len() <= 1 {
                break;
            }
            let nodes: Vec<usize> = items.iter().map(|&k| node_of(k)).collect();
            let Some(score) = self.rule_scores(rule, group, &nodes) else { continue };
            let best = if highest { score.iter().max() } else { score.iter().min() }.copied().expect("non-empty");
            items = items.into_iter().zip(score).filter(|(_, s)| *s == best).map(|(k, _)| k).collect();
        }
        items
    }

    /// Step 3: the candidates that every strategy rule, in order, scores best.
    pub fn rank(&self, spec: &TaskSpec, cands: Vec<usize>) -> Vec<usize> {
        self.filter_rules(&spec.strategy, &spec.group, cands, |i| i, false)
    }

    /// The tied best candidates for a task (empty: it cannot be placed now).
    pub fn best_ties(&self, spec: &TaskSpec) -> Vec<usize> {
        // The first rule scored while the candidates are found, keeping only the best (the
        // planner asks this for every task it places, over every instance); the same ties, in
        // the same order, as `rank(spec, candidates(spec))`.
        let first: Option<Box<dyn Fn(usize) -> i64 + '_>> = match spec.strategy.first() {
            Some(Strategy::Spread(f)) if f == "instanceId" || f == "host" => {
                let counts = self.group_counts(&spec.group);
                Some(Box::new(move |i| counts.get(i).copied().unwrap_or(0) as i64))
            }
            Some(Strategy::Spread(f)) if f == AZ_FIELD => {
                let counts = self.az_counts(&spec.group);
                Some(Box::new(move |i| counts[self.nodes[i].az_id] as i64))
            }
            Some(Strategy::Binpack(BinpackField::Cpu)) => Some(Box::new(|i| self.nodes[i].free.cpu)),
            Some(Strategy::Binpack(BinpackField::Memory)) => Some(Box::new(|i| self.nodes[i].free.memory)),
            _ => None,
        };
        let Some(score) = first else {
            let c = self.candidates(spec);
            return if c.is_empty() { c } else { self.rank(spec, c) };
        };
        let mut best = i64::MAX;
        let mut ties = Vec::new();
        for i in (0..self.nodes.len()).filter(|&i| self.fits(i, spec)) {
            let v = score(i);
            if v < best {
                best = v;
                ties.clear();
            }
            if v == best {
                ties.push(i);
            }
        }
        self.filter_rules(&spec.strategy[1..], &spec.group, ties, |i| i, false)
    }

    /// Step 4: where ECS would place the task (seeded choice among ties), or `None`.
    pub fn choose(&self, spec: &TaskSpec, rng: &mut Rng) -> Option<usize> {
        let ties = self.best_ties(spec);
        if ties.is_empty() { None } else { Some(ties[rng.below(ties.len())]) }
    }

    /// ECS's scale-in choice (§1.5): among `tasks` (node index, protected), the positions of
    /// the tied best tasks to stop. With spread rules, a task whose value holds the most tasks of
    /// the group (keeping the best spread); with binpack, the instance with the most of the
    /// resource left; protected tasks are never chosen.
    pub fn scale_in_ties(&self, spec: &TaskSpec, tasks: &[(usize, bool)]) -> Vec<usize> {
        let cands: Vec<usize> = (0..tasks.len()).filter(|&k| !tasks[k].1).collect();
        let strategy = if spec.strategy.is_empty() { Strategy::service_default() } else { spec.strategy.clone() };
        self.filter_rules(&strategy, &spec.group, cands, |k| tasks[k].0, true)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reference_tests;
