//! The autoscale job (seed 003, ecs-autoscale, done safely; docs/autoscale.md) as a pure
//! decision: scale each configured service by its rules, then size the cluster's Auto Scaling
//! group so that every wanted task fits with the buffer to spare.
//!
//! - **Services**, in name order: the first rule whose value is known and within its bounds
//!   wins; new desired = clamp(desired + action, min, max) — the base is the desired count,
//!   never the running count. A rule with an unknown value does nothing, and no scale-in rule
//!   fires after one (an unknown never shrinks a service). Cooldowns, kept in the service tag
//!   `ballast:autoscaled` (`out@<ms>` / `in@<ms>`, written before the change so that a crash
//!   can never scale twice): no scale-out within [`SCALE_OUT_COOLDOWN`] of a scale-out, no
//!   scale-in within [`SCALE_IN_COOLDOWN`] of any scaling. A DAEMON service is refused.
//! - **Instances**: the tasks still wanted (desired less those live on ACTIVE instances, for
//!   every replica service, with the new desired counts) are placed with the core's placement
//!   model on the ACTIVE instances, then on the instances still booting (this group's and any
//!   other job's), then on as many new instances as they need — each shaped like the group's
//!   registered instances — and the buffer must fit as one more task. Scale-out sets the
//!   group's desired capacity to cover them, taking back this job's own drains first.
//! - **Consolidation** (nothing wanted, nothing booting, the group's youngest instance at
//!   least [`SCALE_IN_COOLDOWN`] old): the instances to keep are chosen first — the least
//!   loaded members go while every task on them (and the buffer) fits on the rest, never an
//!   instance that would receive a task of another one leaving, so each task moves once — and
//!   all the others are marked (`ballast.drained-by=ballast-autoscale`) and drained at once,
//!   so ECS places their tasks only on instances that stay. A later run terminates a marked
//!   instance with a decrement once no task is left. An instance with a standalone task is
//!   never chosen (its task would be killed), and one someone else drained is never touched.
//!   The group's min and max are respected; they are changed only when the configuration
//!   sets both.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::action::Action;
use crate::autoscale::{AutoscaleConfig, ServiceScaling, Source, extract_field};
use crate::backend::{GroupInfo, Lifecycle};
use crate::duration::Millis;
use crate::model::{ContainerInstance, InstanceStatus, Snapshot, attr};
use crate::placement::{ClusterState, Node, TaskSpec};
use crate::plan::{Act, Guard, JobKind, Step};
use crate::view::{View, http_request};

use super::is_member;

/// The mark on an instance this job drains to scale in.
pub const SCALE_IN: &str = "ballast-autoscale";
/// The attribute on an instance this job took back from a scale-in drain: when (ms). No
/// consolidation starts within [`SCALE_IN_COOLDOWN`] of one (it would only flap).
pub const KEPT_AT: &str = "ballast.kept-at";
/// How many ways of breaking the scheduler's ties a consolidation must survive.
const TIE_TRIALS: u64 = 8;
/// The service tag holding the last scaling (`out@<ms>` or `in@<ms>`).
pub const SCALED_TAG: &str = "ballast:autoscaled";
/// No scale-out of a service within this of its last scale-out.
pub const SCALE_OUT_COOLDOWN: Millis = Millis::mins(3);
/// No scale-in of a service within this of its last scaling; no instance scale-in within
/// this of the group's youngest instance registering.
pub const SCALE_IN_COOLDOWN: Millis = Millis::mins(10);

/// What one service's scaling decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDecision {
    /// Service name.
    pub service: String,
    /// Desired before.
    pub desired: u32,
    /// Desired after (equal when nothing changes).
    pub new_desired: u32,
    /// Why, in one line.
    pub why: String,
}

/// What the job decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AutoscaleDecision {
    /// Each configured service.
    pub services: Vec<ServiceDecision>,
    /// Configured services the job refuses (DAEMON, or not in the cluster).
    pub refused: Vec<String>,
    /// Metric values read, by `service.alias` (`None`: unknown).
    pub metrics: BTreeMap<String, Option<f64>>,
    /// Tasks wanted and not placed on ACTIVE instances.
    pub waiting_tasks: u32,
    /// The group's desired capacity before.
    pub group_desired: u32,
    /// The group's desired capacity after the plan.
    pub new_group_desired: u32,
    /// What the instance scaling decided, in one line.
    pub decision: String,
    /// EC2 ids to drain (consolidation).
    pub drain: Vec<String>,
    /// EC2 ids to terminate (drained and empty).
    pub terminate: Vec<String>,
    /// EC2 ids taken back from a scale-in drain.
    pub take_back: Vec<String>,
}

/// Every metric value of the configuration from the view: `service → alias → value`.
pub fn metric_values(view: &View, cfg: &AutoscaleConfig) -> BTreeMap<String, BTreeMap<String, Option<f64>>> {
    let mut out = BTreeMap::new();
    for (name, s) in &cfg.services {
        let mut vals = BTreeMap::new();
        for (alias, src) in &s.metrics {
            let v = match src {
                Source::CloudWatch(q) => view.metric(q),
                Source::Http { field, .. } => match http_request(src).and_then(|r| view.http.get(&r)) {
                    Some(Ok(body)) => extract_field(body, field).ok(),
                    _ => None,
                },
            };
            vals.insert(alias.clone(), v);
        }
        out.insert(name.clone(), vals);
    }
    out
}

/// The last scaling recorded on a service: (scaled out?, when).
pub fn last_scaled(tags: &BTreeMap<String, String>) -> Option<(bool, Millis)> {
    let v = tags.get(SCALED_TAG)?;
    let (dir, at) = v.split_once('@')?;
    Some((dir == "out", Millis(at.parse().ok()?)))
}

/// Decides one service's new desired count.
pub fn decide_service(
    name: &str,
    s: &ServiceScaling,
    desired: u32,
    values: &BTreeMap<String, Option<f64>>,
    last: Option<(bool, Millis)>,
    now: Millis,
) -> ServiceDecision {
    let known: BTreeMap<String, f64> = values.iter().filter_map(|(k, v)| v.map(|v| (k.clone(), v))).collect();
    let mut unknown_before = false;
    let mut step = 0i64;
    let mut why = "no rule matched".to_string();
    for (i, r) in s.rules.iter().enumerate() {
        let Some(v) = r.expr.eval(&known) else {
            unknown_before = true;
            continue;
        };
        if r.min.is_some_and(|lo| v < lo) || r.max.is_some_and(|hi| v > hi) {
            continue;
        }
        if r.action < 0 && unknown_before {
            why = format!("rule {} ({} = {v}) would scale in, but an earlier rule's metric is unknown", i + 1, r.text);
            break;
        }
        step = r.action;
        why = format!("rule {} matched: {} = {v}", i + 1, r.text);
        break;
    }
    let target = (desired as i64 + step).clamp(s.min as i64, s.max as i64) as u32;
    if target == desired {
        if step != 0 {
            why = format!("{why}; already at its {}", if step > 0 { "max" } else { "min" });
        }
        return ServiceDecision { service: name.into(), desired, new_desired: desired, why };
    }
    let out = target > desired;
    if let Some((was_out, at)) = last {
        let since = now - at;
        let blocked = if out { was_out && since < SCALE_OUT_COOLDOWN } else { since < SCALE_IN_COOLDOWN };
        if blocked {
            let cd = if out { SCALE_OUT_COOLDOWN } else { SCALE_IN_COOLDOWN };
            why = format!("{why}; waiting for its scale-{} cooldown ({cd})", if out { "out" } else { "in" });
            return ServiceDecision { service: name.into(), desired, new_desired: desired, why };
        }
    }
    ServiceDecision { service: name.into(), desired, new_desired: target, why }
}

/// The services' decisions and their steps; records metrics and refusals in `out`.
pub fn services(view: &View, cfg: &AutoscaleConfig, out: &mut AutoscaleDecision) -> Vec<Step> {
    let snap = &view.snapshot;
    let values = metric_values(view, cfg);
    let mut steps = Vec::new();
    for (name, s) in &cfg.services {
        let Some(svc) = snap.service(name) else {
            out.refused.push(format!("{name}: no such service in the cluster"));
            continue;
        };
        if svc.daemon {
            out.refused.push(format!(
                "{name}: a DAEMON service runs one task per instance and has no desired count to scale; \
                 remove it from the autoscale definition"
            ));
            continue;
        }
        if svc.ignored() {
            out.refused.push(format!("{name}: tagged {}; not scaled", attr::IGNORE_TAG));
            continue;
        }
        if !svc.scaled_by.is_empty() {
            out.refused.push(format!(
                "{name}: already scaled by {}; two scalers would fight over its desired count, so ballast leaves it (remove one)",
                svc.scaled_by.join(" and ")
            ));
            continue;
        }
        let vals = values.get(name).cloned().unwrap_or_default();
        for (a, v) in &vals {
            out.metrics.insert(format!("{name}.{a}"), *v);
        }
        let d = decide_service(name, s, svc.desired, &vals, last_scaled(&svc.tags), snap.taken_at);
        if d.new_desired != d.desired {
            let dir = if d.new_desired > d.desired { "out" } else { "in" };
            steps.push(Step::one(
                JobKind::Autoscale,
                format!("{name}: {} → {}: {}", d.desired, d.new_desired, d.why),
                Guard::ServiceDesired { service: name.clone(), desired: d.desired },
                vec![
                    Act::send(Action::TagService {
                        service: name.clone(),
                        key: SCALED_TAG.into(),
                        value: format!("{dir}@{}", snap.taken_at.0),
                    }),
                    Act::send(Action::SetServiceDesired {
                        service: name.clone(),
                        desired: d.new_desired,
                        reason: format!("ballast autoscale: {}", d.why),
                    }),
                ],
            ));
        }
        out.services.push(d);
    }
    steps
}

fn tasks_on(snap: &Snapshot, arn: &str) -> usize {
    snap.tasks.iter().filter(|t| t.is_live() && t.instance_arn == arn).count()
}

fn has_standalone(snap: &Snapshot, arn: &str) -> bool {
    snap.tasks.iter().any(|t| t.is_live() && t.instance_arn == arn && t.service.is_none())
}

/// The shape of a new instance of the group: a registered member's size and attributes
/// (the largest, by CPU then memory); without one, the largest instance of the cluster.
fn template(snap: &Snapshot, g: &GroupInfo) -> Option<ContainerInstance> {
    let pick = |it: &mut dyn Iterator<Item = &ContainerInstance>| {
        it.max_by_key(|i| (i.registered.cpu, i.registered.memory, std::cmp::Reverse(i.ec2_instance_id.clone())))
            .cloned()
    };
    pick(&mut snap.instances.iter().filter(|i| is_member(g, i))).or_else(|| pick(&mut snap.instances.iter()))
}

/// Adds a new (virtual) instance shaped like `t`, in AZ `az`, with the daemons' tasks on it.
fn add_virtual(st: &mut ClusterState, t: &ContainerInstance, az: &str, daemons: &[TaskSpec], k: usize) -> usize {
    let mut attributes = t.attributes.clone();
    attributes.retain(|k, _| k != attr::BALLAST_DRAIN);
    attributes.insert(attr::AZ.into(), az.into());
    let i = st.add_node(Node {
        id: format!("new-{k}"),
        ec2_id: format!("new-{k}"),
        attributes,
        active: true,
        agent_connected: true,
        registered: t.registered,
        free: t.registered,
        ports: BTreeSet::new(),
        live_tasks: 0,
        registered_at: Millis(0),
        az: String::new(),
        az_id: 0,
        extra: crate::placement::NodeExtras {
            gpus_free: t.extra.gpus,
            udp: BTreeSet::new(),
            agent_version: t.extra.agent_version.clone().unwrap_or_default(),
            awsvpc_free: t.extra.awsvpc_limit,
        },
    });
    for d in daemons {
        if st.fits(i, d) {
            st.place(i, d);
        }
    }
    i
}

/// Places one task where ECS would (the best-ranked candidate, first in the stable order).
pub fn place_one(st: &mut ClusterState, spec: &TaskSpec) -> bool {
    match st.best_ties(spec).first() {
        Some(&i) => {
            st.place(i, spec);
            true
        }
        None => false,
    }
}

/// The buffer as a phantom task (none when both buffers are 0).
pub fn buffer_spec(cfg: &AutoscaleConfig) -> Option<TaskSpec> {
    (cfg.cpu_buffer > 0 || cfg.mem_buffer > 0).then(|| TaskSpec {
        group: "ballast:buffer".into(),
        cpu: cfg.cpu_buffer,
        memory: cfg.mem_buffer,
        host_ports: vec![],
        strategy: vec![],
        rules: vec![],
        needs: Default::default(),
    })
}

fn buffer_fits(st: &ClusterState, buffer: &Option<TaskSpec>) -> bool {
    buffer.as_ref().is_none_or(|b| !st.candidates(b).is_empty())
}

/// The tasks each replica service still wants placed: desired (`desired` overrides it) less
/// those live on ACTIVE instances (those on DRAINING ones are being replaced), largest first.
pub fn wanted(snap: &Snapshot, desired: &BTreeMap<String, u32>) -> Vec<TaskSpec> {
    let active: BTreeSet<&str> =
        snap.instances.iter().filter(|i| i.status == InstanceStatus::Active).map(|i| i.arn.as_str()).collect();
    let mut out = Vec::new();
    for s in snap.services.iter().filter(|s| !s.daemon) {
        let want = desired.get(&s.name).copied().unwrap_or(s.desired);
        let live = snap.service_tasks(&s.name).filter(|t| active.contains(t.instance_arn.as_str())).count() as u32;
        let spec = TaskSpec::for_service(s);
        out.extend(std::iter::repeat_n(spec, want.saturating_sub(live) as usize));
    }
    out.sort_by_key(|t| std::cmp::Reverse((t.cpu, t.memory)));
    out
}

/// How many new instances the wanted tasks and the buffer need, beyond those booting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// New instances, beyond those booting.
    pub new_instances: u32,
    /// Tasks no instance of the group's shape can take (or no room is left for).
    pub incompatible: u32,
}

/// Places `tasks` (then the buffer) on the ACTIVE instances, the `booting` ones and up to
/// `room` new ones shaped like the group's; how many new ones that takes.
pub fn instances_needed(
    snap: &Snapshot,
    g: &GroupInfo,
    tasks: &[TaskSpec],
    buffer: &Option<TaskSpec>,
    booting: u32,
    room: u32,
) -> Need {
    let (mut st, _) = ClusterState::from_snapshot(snap);
    let Some(t) = template(snap, g) else {
        // Nothing registered anywhere: one instance to learn the shape from.
        let any = !tasks.is_empty() || buffer.is_some();
        return Need { new_instances: u32::from(any && booting == 0 && room > 0), incompatible: 0 };
    };
    let daemons: Vec<TaskSpec> = snap.services.iter().filter(|s| s.daemon).map(TaskSpec::for_service).collect();
    let mut azs: Vec<String> = snap.instances.iter().filter_map(|i| i.attr(attr::AZ).map(str::to_string)).collect();
    azs.sort();
    azs.dedup();
    if azs.is_empty() {
        azs.push(String::new());
    }
    let mut added = 0u32;
    for _ in 0..booting {
        add_virtual(&mut st, &t, &azs[added as usize % azs.len()], &daemons, added as usize);
        added += 1;
    }
    let mut incompatible = 0;
    for spec in tasks.iter().chain(buffer.iter()) {
        if place_one(&mut st, spec) {
            continue;
        }
        if added - booting >= room {
            incompatible += 1;
            continue;
        }
        add_virtual(&mut st, &t, &azs[added as usize % azs.len()], &daemons, added as usize);
        added += 1;
        if !place_one(&mut st, spec) {
            // Not even an empty instance of the group's shape takes it: adding more won't help.
            st.pop_node();
            added -= 1;
            incompatible += 1;
        }
    }
    Need { new_instances: added - booting, incompatible }
}

/// Instances a group has launched that have not registered yet (booting).
pub fn booting(snap: &Snapshot, g: &GroupInfo) -> u32 {
    let registered: BTreeSet<&str> = snap.instances.iter().map(|i| i.ec2_instance_id.as_str()).collect();
    g.instances
        .iter()
        .filter(|m| m.lifecycle != Lifecycle::Leaving && !registered.contains(m.ec2_instance_id.as_str()))
        .count() as u32
}

fn take_back(inst: &ContainerInstance, reason: &str, now: Millis) -> Step {
    let mut acts = Vec::new();
    if inst.status == InstanceStatus::Draining {
        acts.push(Act::send(Action::SetInstanceState {
            instance_arns: vec![inst.arn.clone()],
            status: InstanceStatus::Active,
            reason: reason.into(),
        }));
    }
    acts.push(Act::send(Action::DeleteAttribute { instance_arn: inst.arn.clone(), name: attr::BALLAST_DRAIN.into() }));
    acts.push(Act::send(Action::PutAttribute {
        instance_arn: inst.arn.clone(),
        name: KEPT_AT.into(),
        value: now.0.to_string(),
    }));
    Step::one(
        JobKind::Autoscale,
        format!("{}: {reason}", inst.ec2_instance_id),
        Guard::InstanceIs { arn: inst.arn.clone(), status: inst.status },
        acts,
    )
}

/// The instance half of the job: `desired` are the services' desired counts after this run
/// (`other_booting`: instances other jobs are adding, which take waiting tasks too).
pub fn instances(
    view: &View,
    cfg: &AutoscaleConfig,
    desired: &BTreeMap<String, u32>,
    other_booting: u32,
    out: &mut AutoscaleDecision,
) -> Vec<Step> {
    let snap = &view.snapshot;
    let mut steps = Vec::new();
    let Some(g0) = view.groups.get(&cfg.group) else {
        out.decision = format!("the Auto Scaling group {} was not found; instances left as they are", cfg.group);
        return steps;
    };
    let mut g = g0.clone();
    if let Some((lo, hi)) = cfg.group_limits
        && (g.min, g.max) != (lo, hi)
    {
        steps.push(Step::one(
            JobKind::Autoscale,
            format!("{}: minimum and maximum as configured ({lo}, {hi})", g.name),
            Guard::Always,
            vec![Act::send(Action::SetGroupLimits { group: g.name.clone(), min: lo, max: hi })],
        ));
        g.min = lo;
        g.max = hi;
        g.desired = g.desired.clamp(lo, hi);
    }
    out.group_desired = g.desired;
    out.new_group_desired = g.desired;
    let mut group_desired = g.desired;
    // 1. This job's own drains: those that cannot empty are given up; the rest are in flight.
    let mut in_flight: Vec<&ContainerInstance> = Vec::new();
    for inst in snap.instances.iter().filter(|i| i.attr(attr::BALLAST_DRAIN) == Some(SCALE_IN) && is_member(&g, i)) {
        let give_back = inst.status == InstanceStatus::Active || has_standalone(snap, &inst.arn);
        if give_back || group_desired <= g.min {
            // Marked but never drained (a run stopped between the two calls), holding a
            // standalone task that would be killed, or no longer above the group's minimum.
            steps.push(take_back(inst, "ballast autoscale: this instance stays", snap.taken_at));
            out.take_back.push(inst.ec2_instance_id.clone());
        } else {
            in_flight.push(inst);
        }
    }
    // Empty ones first: taken back first when capacity is wanted again, terminated otherwise.
    in_flight.sort_by_key(|i| (tasks_on(snap, &i.arn) > 0, i.ec2_instance_id.clone()));
    // 2. What the wanted tasks need (the instances in flight are not counted: they are leaving).
    let tasks = wanted(snap, desired);
    out.waiting_tasks = tasks.len() as u32;
    let buffer = buffer_spec(cfg);
    let boot = booting(snap, &g) + other_booting;
    let room = g.max.saturating_sub(group_desired);
    let need = instances_needed(snap, &g, &tasks, &buffer, boot, room + in_flight.len() as u32);
    if need.new_instances > 0 {
        // Take this job's own drains back before launching anything (never terminate one and
        // launch another in the same breath).
        let mut left = need.new_instances;
        for inst in &in_flight {
            if left == 0 {
                break;
            }
            steps.push(take_back(inst, "ballast autoscale: the cluster needs this instance again", snap.taken_at));
            out.take_back.push(inst.ec2_instance_id.clone());
            left -= 1;
        }
        let target = (group_desired + left).min(g.max);
        if target > group_desired {
            steps.push(Step::one(
                JobKind::Autoscale,
                format!("scale {} out from {group_desired} to {target}", g.name),
                Guard::GroupDesired { group: g.name.clone(), desired: group_desired },
                vec![Act::send(Action::SetGroupDesired {
                    group: g.name.clone(),
                    desired: target,
                    honor_cooldown: false,
                    reason: format!(
                        "ballast autoscale: {} waiting task(s){} need {} more instance(s)",
                        tasks.len(),
                        if buffer.is_some() { " and the buffer" } else { "" },
                        left
                    ),
                })],
            ));
            out.decision = format!("scale {} out from {group_desired} to {target}", g.name);
            group_desired = target;
        } else {
            out.decision = format!("take back {} draining instance(s)", out.take_back.len());
        }
        if need.incompatible > 0 {
            out.decision.push_str(&format!(
                "; {} task(s) fit no instance of the group's shape, or the group is at its max ({})",
                need.incompatible, g.max
            ));
        }
        out.new_group_desired = group_desired;
        return steps;
    }
    // Nothing more is wanted: the drains in flight that are empty go.
    let mut still: Vec<&ContainerInstance> = Vec::new();
    for inst in in_flight {
        if tasks_on(snap, &inst.arn) == 0 && group_desired > g.min {
            steps.push(Step::one(
                JobKind::Autoscale,
                format!("terminate {}: drained and empty", inst.ec2_instance_id),
                Guard::all(vec![
                    Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Draining },
                    Guard::InstanceEmpty { arn: inst.arn.clone() },
                ]),
                vec![Act::send(Action::TerminateInstance {
                    ec2_instance_id: inst.ec2_instance_id.clone(),
                    decrement: true,
                    reason: "ballast autoscale: scale-in; drained and empty".into(),
                })],
            ));
            group_desired -= 1;
            out.terminate.push(inst.ec2_instance_id.clone());
        } else {
            still.push(inst);
        }
    }
    let in_flight = still;
    out.new_group_desired = group_desired;
    if need.incompatible > 0 {
        out.decision = format!(
            "{} task(s) cannot be placed: the group is at its max ({}) or no instance of its shape fits them",
            need.incompatible, g.max
        );
        return steps;
    }
    if boot > 0 || !tasks.is_empty() {
        out.decision = format!("{boot} instance(s) booting cover the {} waiting task(s)", tasks.len());
        return steps;
    }
    // 3. Consolidation.
    let youngest = snap.instances.iter().filter(|i| is_member(&g, i)).map(|i| i.registered_at).max();
    if youngest.is_some_and(|y| snap.taken_at - y < SCALE_IN_COOLDOWN) {
        out.decision =
            format!("every task fits; scale-in waits until the group's newest instance is {SCALE_IN_COOLDOWN} old");
        return steps;
    }
    let kept = snap
        .instances
        .iter()
        .filter(|i| is_member(&g, i))
        .filter_map(|i| i.attr(KEPT_AT).and_then(|v| v.parse::<u64>().ok()))
        .max();
    if kept.is_some_and(|k| snap.taken_at - Millis(k) < SCALE_IN_COOLDOWN) {
        out.decision =
            format!("every task fits; scale-in waits {SCALE_IN_COOLDOWN} after an instance was taken back from one");
        return steps;
    }
    let staying = group_desired.saturating_sub(in_flight.len() as u32);
    let may = staying.saturating_sub(g.min);
    let chosen = consolidate(snap, &g, &buffer, may);
    if chosen.is_empty() {
        out.decision = if may == 0 {
            format!("every task fits; the group is at its minimum ({})", g.min)
        } else {
            "every task fits; no instance's tasks fit on the others".into()
        };
        return steps;
    }
    for inst in &chosen {
        steps.push(Step::one(
            JobKind::Autoscale,
            format!("drain {}: its tasks fit on the instances that stay", inst.ec2_instance_id),
            Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Active },
            vec![
                Act::send(Action::PutAttribute {
                    instance_arn: inst.arn.clone(),
                    name: attr::BALLAST_DRAIN.into(),
                    value: SCALE_IN.into(),
                }),
                Act::send(Action::SetInstanceState {
                    instance_arns: vec![inst.arn.clone()],
                    status: InstanceStatus::Draining,
                    reason: "ballast autoscale: consolidating; its tasks fit on the instances that stay".into(),
                }),
            ],
        ));
        out.drain.push(inst.ec2_instance_id.clone());
    }
    out.decision = format!("consolidate: drain {} instance(s) whose tasks fit on the others", chosen.len());
    steps
}

/// Up to `may` ACTIVE members to give back, the least loaded first, each only when every task
/// on it that is not a daemon's (and the buffer) fits on the instances that stay, as ECS would
/// place them, and when no task of an instance already chosen was placed on it (so that every
/// task moves once).
fn consolidate<'a>(
    snap: &'a Snapshot,
    g: &GroupInfo,
    buffer: &Option<TaskSpec>,
    may: u32,
) -> Vec<&'a ContainerInstance> {
    let (mut st, idx) = ClusterState::from_snapshot(snap);
    let reserved = |i: &ContainerInstance| {
        let f = |r: i64, left: i64| if r > 0 { (r - left) as f64 / r as f64 } else { 1.0 };
        f(i.registered.cpu, i.remaining.cpu).max(f(i.registered.memory, i.remaining.memory))
    };
    let mut cands: Vec<&ContainerInstance> = snap
        .instances
        .iter()
        .filter(|i| {
            i.status == InstanceStatus::Active
                && i.agent_connected
                && is_member(g, i)
                && !i.ignored()
                && !i.attributes.contains_key(attr::BALLAST_DRAIN)
                && !has_standalone(snap, &i.arn)
        })
        .collect();
    cands.sort_by(|a, b| reserved(a).total_cmp(&reserved(b)).then_with(|| a.ec2_instance_id.cmp(&b.ec2_instance_id)));
    let mut chosen = Vec::new();
    let mut receiving: BTreeSet<usize> = BTreeSet::new();
    for inst in cands {
        if chosen.len() as u32 >= may {
            break;
        }
        let n = idx[&inst.arn];
        if receiving.contains(&n) {
            continue;
        }
        let moving: Vec<TaskSpec> = snap
            .tasks
            .iter()
            .filter(|t| t.is_live() && t.instance_arn == inst.arn && !snap.is_daemon_task(t))
            .filter_map(|t| t.service.as_deref().and_then(|s| snap.service(s)))
            .map(TaskSpec::for_service)
            .collect();
        // The scheduler breaks ties at random: the tasks (and the buffer) must fit whichever
        // way it does (the first of the ties, then seeded draws).
        let drain = |st: &ClusterState, draw: Option<u64>| {
            let mut trial = st.clone();
            trial.nodes[n].active = false;
            let mut rng = draw.map(crate::rng::Rng::new);
            let mut landed = Vec::new();
            let ok = moving.iter().all(|spec| {
                trial.remove(n, spec);
                let ties = trial.best_ties(spec);
                let pick = match (&mut rng, ties.is_empty()) {
                    (_, true) => return false,
                    (Some(r), false) => ties[r.below(ties.len())],
                    (None, false) => ties[0],
                };
                trial.place(pick, spec);
                landed.push(pick);
                true
            }) && buffer_fits(&trial, buffer);
            ok.then_some((trial, landed))
        };
        let Some((trial, mut landed)) = drain(&st, None) else { continue };
        let robust = (1..=TIE_TRIALS).all(|k| match drain(&st, Some(k ^ ((n as u64) << 8))) {
            Some((_, l)) => {
                landed.extend(l);
                true
            }
            None => false,
        });
        if robust {
            st = trial;
            receiving.extend(landed);
            chosen.push(inst);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoscale::Rule;
    use crate::expr::Expr;

    fn svc(rules: &[(&str, i64, Option<f64>, Option<f64>)]) -> ServiceScaling {
        ServiceScaling {
            min: 1,
            max: 5,
            metrics: BTreeMap::new(),
            rules: rules
                .iter()
                .map(|(t, a, lo, hi)| Rule {
                    text: t.to_string(),
                    expr: Expr::parse(t).unwrap(),
                    action: *a,
                    min: *lo,
                    max: *hi,
                })
                .collect(),
        }
    }

    fn vals(q: Option<f64>, c: Option<f64>) -> BTreeMap<String, Option<f64>> {
        [("q".to_string(), q), ("c".to_string(), c)].into_iter().collect()
    }

    #[test]
    fn first_matching_rule_wins_from_the_desired_count_clamped() {
        let s = svc(&[("q", 2, Some(5.0), None), ("q", -1, None, Some(3.0))]);
        let now = Millis::mins(60);
        assert_eq!(decide_service("w", &s, 2, &vals(Some(9.0), None), None, now).new_desired, 4);
        assert_eq!(decide_service("w", &s, 4, &vals(Some(9.0), None), None, now).new_desired, 5, "clamped to max");
        assert_eq!(decide_service("w", &s, 2, &vals(Some(1.0), None), None, now).new_desired, 1);
        assert_eq!(decide_service("w", &s, 1, &vals(Some(1.0), None), None, now).new_desired, 1, "at min");
        assert_eq!(decide_service("w", &s, 3, &vals(Some(4.0), None), None, now).new_desired, 3, "no rule");
        assert_eq!(
            decide_service("w", &s, 9, &vals(Some(4.0), None), None, now).new_desired,
            5,
            "brought within bounds"
        );
    }

    #[test]
    fn unknown_metrics_never_scale_and_never_shrink() {
        let s = svc(&[("c * 2", 1, Some(50.0), None), ("q", -1, None, Some(3.0))]);
        let now = Millis::mins(60);
        let d = decide_service("w", &s, 3, &vals(Some(0.0), None), None, now);
        assert_eq!(d.new_desired, 3, "{}", d.why);
        assert!(d.why.contains("unknown"), "{}", d.why);
        assert_eq!(decide_service("w", &s, 3, &vals(None, None), None, now).new_desired, 3);
        assert_eq!(decide_service("w", &s, 3, &vals(Some(0.0), Some(20.0)), None, now).new_desired, 2);
        assert_eq!(decide_service("w", &s, 3, &vals(Some(0.0), Some(30.0)), None, now).new_desired, 4);
    }

    #[test]
    fn cooldowns_are_separate_for_out_and_in() {
        let up = svc(&[("q", 1, Some(5.0), None)]);
        let down = svc(&[("q", -1, None, Some(3.0))]);
        let now = Millis::mins(60);
        let hi = vals(Some(9.0), None);
        let lo = vals(Some(0.0), None);
        let just_out = Some((true, now - Millis::mins(1)));
        let just_in = Some((false, now - Millis::mins(1)));
        assert_eq!(decide_service("w", &up, 2, &hi, just_out, now).new_desired, 2, "out within out cooldown");
        assert_eq!(decide_service("w", &up, 2, &hi, just_in, now).new_desired, 3, "out right after an in");
        assert_eq!(decide_service("w", &down, 2, &lo, just_out, now).new_desired, 2, "in right after an out");
        assert_eq!(decide_service("w", &down, 2, &lo, Some((true, now - Millis::mins(11))), now).new_desired, 1);
        assert_eq!(
            last_scaled(&[(SCALED_TAG.to_string(), "out@120000".to_string())].into_iter().collect()),
            Some((true, Millis(120_000)))
        );
    }
}
