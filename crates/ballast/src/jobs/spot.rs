//! The spot-fallback job (seed 004 done right; docs/spot-fallback.md): cover a Spot
//! shortfall with on-demand instances at once, and give them back only by draining.
//!
//! Each run:
//! 1. finish what earlier runs started: an on-demand instance ballast drained for scale-in
//!    (attribute `ballast.drained-by=ballast-scale-in`) with no task left is terminated with
//!    a decrement; one still holding tasks waits (standalone tasks keep it, never killed);
//! 2. on a Spot interruption warning for an instance of the cluster: drain it at once (mark
//!    `ballast-spot-notice`; it is never returned) and add its cover to the on-demand group;
//! 3. read the shortfall: the fleet's `PendingCapacity` (or, with `source: group`, the Spot
//!    group's desired less its instances in service or launching). Unknown metrics change
//!    nothing. While the fleet's `TargetCapacity` changed within `settle_window`, nothing
//!    scales (the fleet is still fulfilling);
//! 4. on-demand wanted = ⌈shortfall ÷ units_per_instance⌉ within the group's min and max:
//!    above the group's desired, scale out now (HonorCooldown false), first taking back any
//!    instance still draining for scale-in; below it only when the shortfall has stayed that
//!    low for `scale_in_cooldown` (the window's maximum), by draining the emptiest on-demand
//!    instances (never one someone else drained).

use ballast_core::action::Action;
use ballast_core::backend::{BackendError, GroupInfo, Lifecycle, MetricQuery};
use ballast_core::config::{SpotFallbackConfig, SpotSource};
use ballast_core::duration::Millis;
use ballast_core::model::{ContainerInstance, InstanceStatus, Snapshot, attr};
use serde::Serialize;

use crate::exec::{Exec, ExecError};

/// The mark on an on-demand instance ballast drains to scale in.
pub const SCALE_IN: &str = "ballast-scale-in";
/// The mark on a Spot instance ballast drains on an interruption warning.
pub const SPOT_NOTICE: &str = "ballast-spot-notice";

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpotOutcome {
    /// The shortfall read, capacity units (`None`: unknown).
    pub shortfall: Option<f64>,
    /// The on-demand group's desired capacity before the run.
    pub on_demand_desired: u32,
    /// What the run decided, in one line.
    pub decision: String,
    /// EC2 ids drained (scale-in, or an interruption warning).
    pub drained: Vec<String>,
    /// EC2 ids terminated (drained and empty).
    pub terminated: Vec<String>,
    /// EC2 ids taken back from a scale-in drain.
    pub returned: Vec<String>,
}

fn spot_query(cfg: &SpotFallbackConfig, name: &str, statistic: &str, period: Millis) -> MetricQuery {
    MetricQuery {
        namespace: "AWS/EC2Spot".into(),
        name: name.into(),
        dimensions: [("FleetRequestId".to_string(), cfg.fleet.clone())].into_iter().collect(),
        statistic: statistic.into(),
        period_s: (period.as_secs().max(60)) as u32,
    }
}

/// The shortfall now, the largest over the scale-in window, and whether the fleet is still
/// settling; `None` when a metric is unknown.
struct Shortfall {
    now: f64,
    window_max: f64,
    settling: bool,
}

fn shortfall(ex: &mut Exec, cfg: &SpotFallbackConfig, snap: &Snapshot) -> Result<Option<Shortfall>, ExecError> {
    match cfg.source {
        SpotSource::Fleet => {
            let qs = [
                spot_query(cfg, "PendingCapacity", "Maximum", Millis::mins(1)),
                spot_query(cfg, "PendingCapacity", "Maximum", cfg.stable_window),
                spot_query(cfg, "TargetCapacity", "Minimum", cfg.settle_window),
                spot_query(cfg, "TargetCapacity", "Maximum", cfg.settle_window),
            ];
            let v = ex.metrics(&qs)?;
            let [Some(now), Some(window_max), Some(tmin), Some(tmax)] = v[..] else { return Ok(None) };
            let settling = cfg.settle_window > Millis(0) && tmax != tmin;
            Ok(Some(Shortfall { now, window_max: window_max.max(now), settling }))
        }
        SpotSource::Group => {
            // A Spot Auto Scaling group: the shortfall is the instances it has not got
            // (launching ones are trusted to come, so nothing more is launched for them);
            // launching ones and those in service for less than the stable window are not
            // yet counted as stable, so nothing is scaled in for them.
            let g = ex.group(&cfg.fleet)?;
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
            Ok(Some(Shortfall { now, window_max: now + young, settling: false }))
        }
    }
}

fn is_member(g: &GroupInfo, i: &ContainerInstance) -> bool {
    g.instances.iter().any(|m| m.ec2_instance_id == i.ec2_instance_id)
}

fn tasks_on(snap: &Snapshot, arn: &str) -> usize {
    snap.tasks.iter().filter(|t| t.is_live() && t.instance_arn == arn).count()
}

/// Whether the other ACTIVE instances (not marked to leave) can take the service tasks on
/// `inst`: first-fit by CPU and memory, largest task first (ports and constraints are left
/// to ECS; this only keeps a drain from stopping tasks that have nowhere to go).
fn room_for(snap: &Snapshot, inst: &ContainerInstance) -> bool {
    let mut tasks: Vec<(i64, i64)> = snap
        .tasks
        .iter()
        .filter(|t| t.is_live() && t.instance_arn == inst.arn && t.service.is_some() && !snap.is_daemon_task(t))
        .map(|t| (t.cpu, t.memory))
        .collect();
    tasks.sort_unstable_by(|a, b| b.cmp(a));
    let mut free: Vec<(i64, i64)> = snap
        .instances
        .iter()
        .filter(|i| {
            i.arn != inst.arn && i.status == InstanceStatus::Active && !i.attributes.contains_key(attr::BALLAST_DRAIN)
        })
        .map(|i| (i.remaining.cpu, i.remaining.memory))
        .collect();
    tasks.iter().all(|&(c, m)| match free.iter_mut().find(|f| f.0 >= c && f.1 >= m) {
        Some(f) => {
            f.0 -= c;
            f.1 -= m;
            true
        }
        None => false,
    })
}

fn mark(ex: &mut Exec, inst: &ContainerInstance, value: &str, reason: String) -> Result<(), ExecError> {
    ex.apply(Action::PutAttribute {
        instance_arn: inst.arn.clone(),
        name: attr::BALLAST_DRAIN.into(),
        value: value.into(),
    })?;
    ex.apply(Action::SetInstanceState {
        instance_arns: vec![inst.arn.clone()],
        status: InstanceStatus::Draining,
        reason,
    })
}

/// Runs the job once; `warning`: the EC2 id of a Spot interruption warning being handled.
pub fn run(ex: &mut Exec, cfg: &SpotFallbackConfig, warning: Option<&str>) -> Result<SpotOutcome, ExecError> {
    let snap = ex.snapshot()?;
    let od = ex.group(&cfg.on_demand_group)?;
    let mut out = SpotOutcome { on_demand_desired: od.desired, ..SpotOutcome::default() };
    let mut desired = od.desired;
    // 1. Terminate the on-demand instances ballast drained once they are empty.
    let scaling_in: Vec<&ContainerInstance> =
        snap.instances.iter().filter(|i| i.attr(attr::BALLAST_DRAIN) == Some(SCALE_IN) && is_member(&od, i)).collect();
    let mut in_flight = Vec::new();
    for inst in &scaling_in {
        if inst.status == InstanceStatus::Draining && tasks_on(&snap, &inst.arn) == 0 && desired > od.min {
            ex.apply(Action::TerminateInstance {
                ec2_instance_id: inst.ec2_instance_id.clone(),
                decrement: true,
                reason: "ballast: spot-fallback scale-in; drained and empty".into(),
            })?;
            desired -= 1;
            out.terminated.push(inst.ec2_instance_id.clone());
        } else {
            in_flight.push(*inst);
        }
    }
    // 2. An interruption warning: cover the Spot instance at once, and mark it. A marked
    //    instance is drained (never returned) as soon as the rest of the cluster has room for
    //    its tasks: draining without room would only stop tasks two minutes early.
    let mut cover = 0;
    if let Some(id) = warning
        && let Some(inst) = snap.instances.iter().find(|i| i.ec2_instance_id == id && !is_member(&od, i))
    {
        if inst.status == InstanceStatus::Active && !inst.attributes.contains_key(attr::BALLAST_DRAIN) {
            ex.apply(Action::PutAttribute {
                instance_arn: inst.arn.clone(),
                name: attr::BALLAST_DRAIN.into(),
                value: SPOT_NOTICE.into(),
            })?;
        }
        cover = (1.0 / cfg.units_per_instance).ceil() as u32;
    }
    for inst in snap.instances.iter().filter(|i| {
        i.status == InstanceStatus::Active
            && (i.attr(attr::BALLAST_DRAIN) == Some(SPOT_NOTICE) || Some(i.ec2_instance_id.as_str()) == warning)
            && !is_member(&od, i)
    }) {
        if room_for(&snap, inst) {
            ex.apply(Action::SetInstanceState {
                instance_arns: vec![inst.arn.clone()],
                status: InstanceStatus::Draining,
                reason: format!(
                    "ballast: Spot interruption warning for {}; moving its tasks now",
                    inst.ec2_instance_id
                ),
            })?;
            out.drained.push(inst.ec2_instance_id.clone());
        }
    }
    // 3. The shortfall.
    let Some(short) = shortfall(ex, cfg, &snap)? else {
        out.decision = "a Spot metric has no datapoint (unknown, not zero); nothing scaled".into();
        return if cover > 0 { scale_out(ex, cfg, &od, desired + cover, &in_flight, out) } else { Ok(out) };
    };
    out.shortfall = Some(short.now);
    if short.settling && cover == 0 {
        out.decision = format!(
            "the fleet's target capacity changed within {}; it is still fulfilling, nothing scaled",
            cfg.settle_window
        );
        return Ok(out);
    }
    // 4. Scale. CloudWatch lags (a datapoint is a minute or two old when it can be read), so
    //    the Spot instances under an interruption notice are a shortfall whatever the metric
    //    says yet: one unit each.
    let clamp = |n: u32| n.clamp(od.min, od.max);
    let staying = desired - in_flight.len() as u32;
    let noticed = snap
        .instances
        .iter()
        .filter(|i| i.attr(attr::BALLAST_DRAIN) == Some(SPOT_NOTICE) && !is_member(&od, i))
        .count() as f64;
    let from_metric = (short.now.max(noticed) / cfg.units_per_instance).ceil() as u32;
    let want = clamp(from_metric.max(if cover > 0 { staying + cover } else { 0 }));
    if want > staying {
        return scale_out(ex, cfg, &od, want, &in_flight, out);
    }
    let want_in = clamp((short.window_max.max(noticed) / cfg.units_per_instance).ceil() as u32);
    if want_in >= staying {
        out.decision = format!("{staying} on-demand instance(s) cover a shortfall of {} unit(s)", short.now);
        return Ok(out);
    }
    // The group's cooldown: no scale-in until that long after it last grew (its youngest
    // instance registered; one still launching means it has just grown).
    let launching = od.instances.iter().any(|m| m.lifecycle == Lifecycle::Launching);
    let youngest = snap.instances.iter().filter(|i| is_member(&od, i)).map(|i| i.registered_at).max();
    if launching || youngest.is_some_and(|y| snap.taken_at - y < cfg.scale_in_cooldown) {
        out.decision =
            format!("Spot is fulfilled again; scale-in waits for the group's cooldown ({})", cfg.scale_in_cooldown);
        return Ok(out);
    }
    scale_in(ex, &snap, &od, staying - want_in, desired, out)
}

fn scale_out(
    ex: &mut Exec,
    cfg: &SpotFallbackConfig,
    od: &GroupInfo,
    want: u32,
    in_flight: &[&ContainerInstance],
    mut out: SpotOutcome,
) -> Result<SpotOutcome, ExecError> {
    let want = want.min(od.max);
    // Take back instances still draining for scale-in before launching new ones.
    let staying = od.desired - out.terminated.len() as u32 - in_flight.len() as u32;
    let needed = want.saturating_sub(staying) as usize;
    for inst in in_flight.iter().take(needed) {
        ex.apply(Action::SetInstanceState {
            instance_arns: vec![inst.arn.clone()],
            status: InstanceStatus::Active,
            reason: "ballast: spot-fallback needs this on-demand instance again".into(),
        })?;
        ex.apply(Action::DeleteAttribute { instance_arn: inst.arn.clone(), name: attr::BALLAST_DRAIN.into() })?;
        out.returned.push(inst.ec2_instance_id.clone());
    }
    let desired = od.desired - out.terminated.len() as u32;
    if want > desired {
        ex.apply(Action::SetGroupDesired {
            group: cfg.on_demand_group.clone(),
            desired: want,
            honor_cooldown: false,
            reason: format!("ballast: cover a Spot shortfall of {} unit(s) now", out.shortfall.unwrap_or(0.0)),
        })?;
        out.decision = format!("scaled {} out from {desired} to {want}", cfg.on_demand_group);
    } else {
        out.decision = format!("kept {want} on-demand instance(s) (taken back from scale-in)");
    }
    Ok(out)
}

fn scale_in(
    ex: &mut Exec,
    snap: &Snapshot,
    od: &GroupInfo,
    surplus: u32,
    desired: u32,
    mut out: SpotOutcome,
) -> Result<SpotOutcome, ExecError> {
    let mut left = surplus.min(desired.saturating_sub(od.min));
    // Launching members that have not registered hold no task: terminate them first.
    for m in od.instances.iter().filter(|m| !snap.instances.iter().any(|i| i.ec2_instance_id == m.ec2_instance_id)) {
        if left == 0 {
            break;
        }
        match ex.apply(Action::TerminateInstance {
            ec2_instance_id: m.ec2_instance_id.clone(),
            decrement: true,
            reason: "ballast: spot-fallback scale-in; not yet registered, no task".into(),
        }) {
            Ok(()) => {
                out.terminated.push(m.ec2_instance_id.clone());
                left -= 1;
            }
            Err(ExecError::Backend(BackendError::NotFound { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    // Then drain the emptiest ACTIVE members no one else has marked.
    let mut candidates: Vec<&ContainerInstance> = snap
        .instances
        .iter()
        .filter(|i| {
            i.status == InstanceStatus::Active && is_member(od, i) && !i.attributes.contains_key(attr::BALLAST_DRAIN)
        })
        .collect();
    candidates.sort_by_key(|i| (tasks_on(snap, &i.arn), i.ec2_instance_id.clone()));
    for inst in candidates.into_iter().take(left as usize) {
        mark(ex, inst, SCALE_IN, "ballast: spot-fallback scale-in; Spot is fulfilled again".into())?;
        out.drained.push(inst.ec2_instance_id.clone());
    }
    out.decision = format!(
        "the shortfall stayed low: giving back {} on-demand instance(s) by draining",
        out.drained.len() + out.terminated.len()
    );
    Ok(out)
}
