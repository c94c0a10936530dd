//! The spot-fallback job (seed 004 done right; docs/spot-fallback.md) as a pure decision:
//! cover a Spot shortfall with on-demand instances at once, and give them back only by
//! draining.
//!
//! 1. Finish what earlier runs started: an on-demand instance this job drained for scale-in
//!    (`ballast.drained-by=ballast-scale-in`) with no task left is terminated with a
//!    decrement; one still holding tasks waits (standalone tasks keep it, never killed).
//! 2. On a Spot interruption warning for an instance of the cluster: mark it
//!    (`ballast-spot-notice`; it is never returned) and add its cover to the on-demand group.
//!    A marked instance is drained as soon as the rest of the cluster has room for its tasks,
//!    as ECS would place them (draining without room would only stop tasks two minutes early).
//! 3. The shortfall: the fleet's `PendingCapacity` (or, with `source: group`, the Spot group's
//!    desired less its instances in service or launching), and never less than the Spot
//!    instances under a notice (CloudWatch lags a minute or two). Unknown metrics change
//!    nothing. While the fleet's `TargetCapacity` changed within `settle_window`, nothing
//!    scales (the fleet is still fulfilling).
//! 4. On-demand wanted = ⌈shortfall ÷ units_per_instance⌉ within the group's min and max:
//!    above the group's desired, scale out now (HonorCooldown false), first taking back any
//!    instance still draining for scale-in; below it only when the shortfall has stayed that
//!    low for the stable window (the window's maximum), the group's cooldown has passed since
//!    it last grew (no member still launching), by draining the emptiest on-demand instances
//!    (never one someone else drained).

use serde::Serialize;

use crate::action::Action;
use crate::backend::{GroupInfo, Lifecycle};
use crate::config::{SpotFallbackConfig, SpotSource};
use crate::model::{ContainerInstance, InstanceStatus, Snapshot, attr};
use crate::placement::{ClusterState, TaskSpec};
use crate::plan::{Act, Guard, JobKind, Step};
use crate::view::{Trigger, View, spot_queries};

use super::is_member;

/// The mark on an on-demand instance this job drains to scale in.
pub const SCALE_IN: &str = "ballast-scale-in";
/// The mark on a Spot instance this job drains on an interruption warning.
pub const SPOT_NOTICE: &str = "ballast-spot-notice";

/// What the job decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpotDecision {
    /// The shortfall read, capacity units (`None`: unknown).
    pub shortfall: Option<f64>,
    /// The on-demand group's desired capacity before the run.
    pub on_demand_desired: u32,
    /// The on-demand group's desired capacity the plan leaves.
    pub new_on_demand_desired: u32,
    /// Instances launching in the on-demand group (now, and after the plan).
    pub booting: u32,
    /// What it decided, in one line.
    pub decision: String,
    /// EC2 ids to drain (scale-in, or an interruption warning).
    pub drain: Vec<String>,
    /// EC2 ids to terminate (drained and empty).
    pub terminate: Vec<String>,
    /// EC2 ids taken back from a scale-in drain.
    pub take_back: Vec<String>,
}

struct Shortfall {
    now: f64,
    window_max: f64,
    settling: bool,
}

fn shortfall(view: &View, cfg: &SpotFallbackConfig) -> Option<Shortfall> {
    let snap = &view.snapshot;
    match cfg.source {
        SpotSource::Fleet => {
            let q = spot_queries(cfg);
            let [Some(now), Some(window_max), Some(tmin), Some(tmax)] = [0, 1, 2, 3].map(|i| view.metric(&q[i])) else {
                return None;
            };
            let settling = cfg.settle_window.0 > 0 && tmax != tmin;
            Some(Shortfall { now, window_max: window_max.max(now), settling })
        }
        SpotSource::Group => {
            // A Spot Auto Scaling group: the shortfall is the instances it has not got
            // (launching ones are trusted to come); launching ones and those in service for less
            // than the stable window are not yet stable, so nothing is scaled in for them.
            let g = view.groups.get(&cfg.fleet)?;
            let have = g.count(Lifecycle::InService) + g.count(Lifecycle::Launching);
            let now = g.desired.saturating_sub(have) as f64;
            let young = g
                .instances
                .iter()
                .filter(|i| match i.lifecycle {
                    Lifecycle::Launching => true,
                    Lifecycle::InService => snap
                        .instances
                        .iter()
                        .find(|c| c.ec2_instance_id == i.ec2_instance_id)
                        .is_none_or(|c| snap.taken_at - c.registered_at < cfg.stable_window),
                    Lifecycle::Leaving => false,
                })
                .count() as f64;
            Some(Shortfall { now, window_max: now + young, settling: false })
        }
    }
}

fn tasks_on(snap: &Snapshot, arn: &str) -> usize {
    snap.tasks.iter().filter(|t| t.is_live() && t.instance_arn == arn).count()
}

/// Whether the other ACTIVE instances (not marked to leave) can take the service tasks on
/// `inst`, placed as ECS would place them (the one placement model: resources, ports,
/// constraints, strategies).
pub fn room_for(snap: &Snapshot, inst: &ContainerInstance) -> bool {
    let (mut st, idx) = ClusterState::from_snapshot(snap);
    for (i, node) in snap.instances.iter().enumerate() {
        if node.attributes.contains_key(attr::BALLAST_DRAIN) {
            st.nodes[i].active = false;
        }
    }
    let n = idx[&inst.arn];
    st.nodes[n].active = false;
    snap.tasks
        .iter()
        .filter(|t| t.is_live() && t.instance_arn == inst.arn && !snap.is_daemon_task(t))
        .filter_map(|t| t.service.as_deref().and_then(|s| snap.service(s)))
        .map(TaskSpec::for_service)
        .collect::<Vec<_>>()
        .iter()
        .all(|spec| {
            st.remove(n, spec);
            super::autoscale::place_one(&mut st, spec)
        })
}

fn mark(inst: &ContainerInstance, value: &str, reason: String) -> Vec<Act> {
    vec![
        Act::send(Action::PutAttribute {
            instance_arn: inst.arn.clone(),
            name: attr::BALLAST_DRAIN.into(),
            value: value.into(),
        }),
        Act::send(Action::SetInstanceState {
            instance_arns: vec![inst.arn.clone()],
            status: InstanceStatus::Draining,
            reason,
        }),
    ]
}

/// The decision and its steps.
pub fn decide(view: &View, cfg: &SpotFallbackConfig) -> (SpotDecision, Vec<Step>) {
    let snap = &view.snapshot;
    let mut steps = Vec::new();
    let Some(od) = view.groups.get(&cfg.on_demand_group) else {
        let d = format!("the on-demand group {} was not found; nothing scaled", cfg.on_demand_group);
        return (SpotDecision { decision: d, ..SpotDecision::default() }, steps);
    };
    let mut out = SpotDecision {
        on_demand_desired: od.desired,
        new_on_demand_desired: od.desired,
        booting: super::autoscale::booting(snap, od),
        ..SpotDecision::default()
    };
    let mut desired = od.desired;
    // 1. Terminate the on-demand instances this job drained once they are empty.
    let scaling_in: Vec<&ContainerInstance> =
        snap.instances.iter().filter(|i| i.attr(attr::BALLAST_DRAIN) == Some(SCALE_IN) && is_member(od, i)).collect();
    let mut in_flight = Vec::new();
    for inst in &scaling_in {
        if inst.status == InstanceStatus::Draining && tasks_on(snap, &inst.arn) == 0 && desired > od.min {
            steps.push(Step::one(
                JobKind::SpotFallback,
                format!("terminate {}: drained and empty", inst.ec2_instance_id),
                Guard::all(vec![
                    Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Draining },
                    Guard::InstanceEmpty { arn: inst.arn.clone() },
                ]),
                vec![Act::send(Action::TerminateInstance {
                    ec2_instance_id: inst.ec2_instance_id.clone(),
                    decrement: true,
                    reason: "ballast: spot-fallback scale-in; drained and empty".into(),
                })],
            ));
            desired -= 1;
            out.terminate.push(inst.ec2_instance_id.clone());
        } else {
            in_flight.push(*inst);
        }
    }
    // 2. An interruption warning: cover the Spot instance at once, and mark it.
    let warning = match &view.trigger {
        Trigger::SpotWarning(id) => Some(id.as_str()),
        _ => None,
    };
    let mut cover = 0;
    let mut just_marked = None;
    if let Some(id) = warning
        && let Some(inst) = snap.instances.iter().find(|i| i.ec2_instance_id == id && !is_member(od, i))
    {
        if inst.status == InstanceStatus::Active && !inst.attributes.contains_key(attr::BALLAST_DRAIN) {
            just_marked = Some(inst.arn.clone());
        }
        // The earlier signal acts (a rebalance recommendation usually comes before the
        // interruption warning); a second one for an instance already under a notice adds no
        // cover: it is counted among the noticed instances below.
        if inst.attr(attr::BALLAST_DRAIN) != Some(SPOT_NOTICE) {
            cover = (1.0 / cfg.units_per_instance).ceil() as u32;
        }
    }
    for inst in snap.instances.iter().filter(|i| {
        i.status == InstanceStatus::Active
            && (i.attr(attr::BALLAST_DRAIN) == Some(SPOT_NOTICE) || just_marked.as_deref() == Some(i.arn.as_str()))
            && !is_member(od, i)
            // An ignored instance is covered (its capacity goes) but never marked or drained.
            && !i.ignored()
    }) {
        let reason = format!("ballast: Spot interruption warning for {}; moving its tasks now", inst.ec2_instance_id);
        if room_for(snap, inst) {
            steps.push(Step::one(
                JobKind::SpotFallback,
                format!(
                    "drain {}: a Spot interruption warning, and the cluster has room for its tasks",
                    inst.ec2_instance_id
                ),
                Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Active },
                mark(inst, SPOT_NOTICE, reason),
            ));
            out.drain.push(inst.ec2_instance_id.clone());
        } else if just_marked.as_deref() == Some(inst.arn.as_str()) {
            steps.push(Step::one(
                JobKind::SpotFallback,
                format!("mark {}: a Spot interruption warning; drained once its tasks have room", inst.ec2_instance_id),
                Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Active },
                vec![Act::send(Action::PutAttribute {
                    instance_arn: inst.arn.clone(),
                    name: attr::BALLAST_DRAIN.into(),
                    value: SPOT_NOTICE.into(),
                })],
            ));
        }
    }
    // 3. The shortfall.
    let Some(short) = shortfall(view, cfg) else {
        out.decision = "a Spot metric has no datapoint (unknown, not zero); nothing scaled".into();
        if cover > 0 {
            scale_out(&mut steps, cfg, od, desired + cover, &in_flight, &mut out);
        }
        return (out, steps);
    };
    out.shortfall = Some(short.now);
    if short.settling && cover == 0 {
        out.decision = format!(
            "the fleet's target capacity changed within {}; it is still fulfilling, nothing scaled",
            cfg.settle_window
        );
        return (out, steps);
    }
    // 4. Scale. CloudWatch lags, so the Spot instances under a notice are a shortfall whatever
    //    the metric says yet: one unit each.
    let clamp = |n: u32| n.clamp(od.min, od.max);
    let staying = desired - in_flight.len() as u32;
    let noticed = snap
        .instances
        .iter()
        .filter(|i| {
            !is_member(od, i)
                && (i.attr(attr::BALLAST_DRAIN) == Some(SPOT_NOTICE) || just_marked.as_deref() == Some(i.arn.as_str()))
        })
        .count() as f64;
    let from_metric = (short.now.max(noticed) / cfg.units_per_instance).ceil() as u32;
    let want = clamp(from_metric.max(if cover > 0 { staying + cover } else { 0 }));
    if want > staying {
        scale_out(&mut steps, cfg, od, want, &in_flight, &mut out);
        return (out, steps);
    }
    let want_in = clamp((short.window_max.max(noticed) / cfg.units_per_instance).ceil() as u32);
    if want_in >= staying {
        out.decision = format!("{staying} on-demand instance(s) cover a shortfall of {} unit(s)", short.now);
        return (out, steps);
    }
    // The group's cooldown: no scale-in until that long after it last grew (its youngest
    // instance registered; one still launching means it has just grown).
    let launching = od.instances.iter().any(|m| m.lifecycle == Lifecycle::Launching);
    let youngest = snap.instances.iter().filter(|i| is_member(od, i)).map(|i| i.registered_at).max();
    let cooldown = cfg.scale_in_cooldown.or(od.cooldown).unwrap_or(crate::duration::Millis::mins(5));
    if launching || youngest.is_some_and(|y| snap.taken_at - y < cooldown) {
        out.decision = format!("Spot is fulfilled again; scale-in waits for the group's cooldown ({cooldown})");
        return (out, steps);
    }
    scale_in(&mut steps, snap, od, staying - want_in, desired, &mut out);
    (out, steps)
}

fn scale_out(
    steps: &mut Vec<Step>,
    cfg: &SpotFallbackConfig,
    od: &GroupInfo,
    want: u32,
    in_flight: &[&ContainerInstance],
    out: &mut SpotDecision,
) {
    let want = want.min(od.max);
    // Take back instances still draining for scale-in before launching new ones.
    let staying = od.desired - out.terminate.len() as u32 - in_flight.len() as u32;
    let needed = want.saturating_sub(staying) as usize;
    for inst in in_flight.iter().take(needed) {
        steps.push(Step::one(
            JobKind::SpotFallback,
            format!("take {} back: the Spot shortfall needs it again", inst.ec2_instance_id),
            Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Draining },
            vec![
                Act::send(Action::SetInstanceState {
                    instance_arns: vec![inst.arn.clone()],
                    status: InstanceStatus::Active,
                    reason: "ballast: spot-fallback needs this on-demand instance again".into(),
                }),
                Act::send(Action::DeleteAttribute { instance_arn: inst.arn.clone(), name: attr::BALLAST_DRAIN.into() }),
            ],
        ));
        out.take_back.push(inst.ec2_instance_id.clone());
    }
    let desired = od.desired - out.terminate.len() as u32;
    if want > desired {
        steps.push(Step::one(
            JobKind::SpotFallback,
            format!("scale {} out from {desired} to {want}", cfg.on_demand_group),
            Guard::Always,
            vec![Act::send(Action::SetGroupDesired {
                group: cfg.on_demand_group.clone(),
                desired: want,
                honor_cooldown: false,
                reason: format!("ballast: cover a Spot shortfall of {} unit(s) now", out.shortfall.unwrap_or(0.0)),
            })],
        ));
        out.decision = format!("scale {} out from {desired} to {want}", cfg.on_demand_group);
        out.booting += want - desired;
        out.new_on_demand_desired = want;
    } else {
        out.decision = format!("keep {want} on-demand instance(s) (taken back from scale-in)");
        out.new_on_demand_desired = desired;
    }
}

fn scale_in(
    steps: &mut Vec<Step>,
    snap: &Snapshot,
    od: &GroupInfo,
    surplus: u32,
    desired: u32,
    out: &mut SpotDecision,
) {
    let mut left = surplus.min(desired.saturating_sub(od.min));
    // Launching members that have not registered hold no task: terminate them first.
    for m in od.instances.iter().filter(|m| !snap.instances.iter().any(|i| i.ec2_instance_id == m.ec2_instance_id)) {
        if left == 0 {
            break;
        }
        steps.push(Step::one(
            JobKind::SpotFallback,
            format!("terminate {}: not yet registered, no task", m.ec2_instance_id),
            Guard::Always,
            vec![Act::send(Action::TerminateInstance {
                ec2_instance_id: m.ec2_instance_id.clone(),
                decrement: true,
                reason: "ballast: spot-fallback scale-in; not yet registered, no task".into(),
            })],
        ));
        out.terminate.push(m.ec2_instance_id.clone());
        left -= 1;
    }
    // Then drain the emptiest ACTIVE members no one else has marked.
    let mut candidates: Vec<&ContainerInstance> = snap
        .instances
        .iter()
        .filter(|i| {
            i.status == InstanceStatus::Active
                && is_member(od, i)
                && !i.ignored()
                && !i.attributes.contains_key(attr::BALLAST_DRAIN)
        })
        .collect();
    candidates.sort_by_key(|i| (tasks_on(snap, &i.arn), i.ec2_instance_id.clone()));
    for inst in candidates.into_iter().take(left as usize) {
        steps.push(Step::one(
            JobKind::SpotFallback,
            format!("drain {}: Spot is fulfilled again", inst.ec2_instance_id),
            Guard::InstanceIs { arn: inst.arn.clone(), status: InstanceStatus::Active },
            mark(inst, SCALE_IN, "ballast: spot-fallback scale-in; Spot is fulfilled again".into()),
        ));
        out.drain.push(inst.ec2_instance_id.clone());
    }
    out.decision = format!(
        "the shortfall stayed low: give back {} on-demand instance(s) by draining",
        out.drain.len() + out.terminate.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::GroupInstance;
    use crate::config::SpotSource;
    use crate::duration::Millis;
    use crate::fixtures::SnapshotBuilder;

    fn cfg() -> SpotFallbackConfig {
        SpotFallbackConfig {
            fleet: "sfr-1".into(),
            on_demand_group: "od".into(),
            units_per_instance: 1.0,
            settle_window: Millis::mins(10),
            scale_in_cooldown: None,
            stable_window: Millis::mins(2),
            source: SpotSource::Fleet,
        }
    }

    /// Two Spot instances, no on-demand one; the fleet's metrics as given.
    fn view(pending: Option<f64>, od: &[(&str, Lifecycle)], trigger: Trigger) -> View {
        let mut snap = SnapshotBuilder::new("c")
            .instance("s1", "us-east-1a", 2048, 8192)
            .instance("s2", "us-east-1b", 2048, 8192)
            .service("web", 256, 512, &[], &[])
            .tasks("web", "s1", 2)
            .tasks("web", "s2", 2)
            .build();
        snap.taken_at = Millis::mins(60);
        let mut v = View::of(snap);
        v.trigger = trigger;
        let q = spot_queries(&cfg());
        for (i, query) in q.iter().enumerate() {
            v.metrics.insert(query.clone(), if i >= 2 { Some(2.0) } else { pending });
        }
        let instances =
            od.iter().map(|(id, l)| GroupInstance { ec2_instance_id: id.to_string(), lifecycle: *l }).collect();
        v.groups.insert(
            "od".into(),
            GroupInfo {
                name: "od".into(),
                desired: od.len() as u32,
                min: 0,
                max: 6,
                instances,
                cooldown: Some(Millis::mins(45)),
            },
        );
        v
    }

    fn group_desired(steps: &[Step]) -> Option<u32> {
        steps.iter().flat_map(|s| s.acts()).find_map(|a| match a {
            Act::Send { action: Action::SetGroupDesired { desired, .. } } => Some(*desired),
            _ => None,
        })
    }

    #[test]
    fn a_shortfall_is_covered_at_once() {
        let (d, steps) = decide(&view(Some(2.0), &[], Trigger::Scheduled), &cfg());
        assert_eq!(group_desired(&steps), Some(2), "{d:?}");
    }

    #[test]
    fn an_unknown_metric_scales_nothing() {
        let (d, steps) = decide(&view(None, &[], Trigger::Scheduled), &cfg());
        assert!(steps.is_empty(), "{steps:?}");
        assert!(d.decision.contains("unknown"), "{}", d.decision);
    }

    #[test]
    fn an_interruption_warning_is_covered_before_the_metric_shows_it() {
        let (_, steps) = decide(&view(Some(0.0), &[], Trigger::SpotWarning("i-s1".into())), &cfg());
        assert_eq!(group_desired(&steps), Some(1));
        // The warned instance is marked (and drained, since the other one has room).
        assert!(steps.iter().flat_map(|s| s.acts()).any(|a| matches!(a,
            Act::Send { action: Action::PutAttribute { value, .. } } if value == SPOT_NOTICE)));
    }

    #[test]
    fn the_earlier_signal_acts_and_the_later_one_adds_nothing() {
        // A rebalance recommendation marked, drained and covered i-s1 (the cover is in
        // service); its interruption warning comes later.
        let mut v = view(Some(0.0), &[("i-od1", Lifecycle::InService)], Trigger::SpotWarning("i-s1".into()));
        v.snapshot.instances[0].attributes.insert(attr::BALLAST_DRAIN.into(), SPOT_NOTICE.into());
        v.snapshot.instances[0].status = InstanceStatus::Draining;
        let (d, steps) = decide(&v, &cfg());
        assert_eq!(group_desired(&steps), None, "no second cover: {d:?} {steps:?}");
        assert!(steps.is_empty(), "{steps:?}");
    }

    /// SPEC: `scale_in_cooldown` defaults to the on-demand group's own cooldown (seed 004's
    /// group has 45 minutes: "keeping the instance up as close to that hour as possible").
    #[test]
    fn scale_in_waits_for_the_groups_own_cooldown_unless_configured() {
        let mut v = view(Some(0.0), &[("i-od1", Lifecycle::InService)], Trigger::Scheduled);
        let mut od = SnapshotBuilder::new("c").instance("od1", "us-east-1a", 2048, 8192).build().instances.remove(0);
        od.registered_at = Millis::mins(40);
        v.snapshot.instances.push(od);
        // 20 minutes after the cover joined; the group's cooldown is 45 minutes.
        let (d, steps) = decide(&v, &cfg());
        assert!(steps.is_empty(), "{steps:?}");
        assert!(d.decision.contains("cooldown (45m"), "{}", d.decision);
        // Configured shorter, it scales in.
        let short = SpotFallbackConfig { scale_in_cooldown: Some(Millis::mins(10)), ..cfg() };
        let (d, steps) = decide(&v, &short);
        assert!(!steps.is_empty(), "{d:?}");
    }

    #[test]
    fn cover_is_never_given_back_while_the_group_is_still_launching() {
        let (d, steps) = decide(&view(Some(0.0), &[("i-od1", Lifecycle::Launching)], Trigger::Scheduled), &cfg());
        assert!(steps.is_empty(), "{steps:?}");
        assert!(d.decision.contains("cooldown"), "{}", d.decision);
    }

    #[test]
    fn noticed_spot_instances_are_a_shortfall_whatever_the_metric_says() {
        let mut v = view(Some(0.0), &[], Trigger::Scheduled);
        v.snapshot.instances[0].attributes.insert(attr::BALLAST_DRAIN.into(), SPOT_NOTICE.into());
        let (_, steps) = decide(&v, &cfg());
        assert_eq!(group_desired(&steps), Some(1));
    }
}
