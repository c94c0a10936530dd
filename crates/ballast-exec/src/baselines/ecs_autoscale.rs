//! Seed 003 as published (structurely/ecs-autoscale): a Lambda function on a 5-minute
//! schedule (the seed's CloudWatch rule, "a fixed rate of 5 minutes"). Its algorithm is on
//! [`EcsAutoscale`]; docs/baselines.md names its deviations.

use std::collections::BTreeMap;

use ballast_core::action::Action;
use ballast_core::autoscale::AutoscaleConfig;
use ballast_core::backend::{Backend, BackendError};
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_core::model::{InstanceStatus, Snapshot};
use ballast_sim::Controller;

use super::{Tunable, duration, unknown};
use ballast_core::jobs::autoscale::metric_values;
use ballast_core::jobs::is_member;

use crate::exec::{Exec, ExecError};
use crate::policies::RUN_BUDGET;

/// An executor error as the backend error a controller returns.
pub(crate) fn backend_err(e: ExecError) -> BackendError {
    match e {
        ExecError::Backend(e) => e,
        other => BackendError::Invalid { operation: "baseline".into(), message: other.to_string() },
    }
}

/// Live tasks on an instance (`non_daemon_only`: daemon tasks left out).
pub(crate) fn live_on(snap: &Snapshot, arn: &str, non_daemon_only: bool) -> usize {
    snap.tasks
        .iter()
        .filter(|t| t.is_live() && t.instance_arn == arn && !(non_daemon_only && snap.is_daemon_task(t)))
        .count()
}

/// Seed 003 as published (structurely/ecs-autoscale), on every scheduled run:
/// - the group's MinSize and MaxSize set to the definition's `min` and `max` when it gives
///   both and they differ (UpdateAutoScalingGroup), and those limits used below;
/// - services: the first event whose metric is within its bounds; new desired = **running**
///   count + action, clamped to the service's min and max (a "+1" can lower the desired count
///   while tasks are pending); no cooldown;
/// - terminate every DRAINING instance of the group that has no task left, decrementing
///   desired (also instances it never drained);
/// - scale up by **one** instance when the additional tasks of the services scaling up, plus
///   the buffer as a phantom task, do not fit first-fit on the remaining CPU and memory of the
///   ACTIVE instances (instances still booting are not remembered);
/// - else scale down by one: drain the ACTIVE instance with the least reserved memory (then
///   CPU) when all its reservations fit on one other instance, with the additional tasks and
///   the buffer still fitting. Standalone tasks keep a drained instance alive.
pub struct EcsAutoscale {
    /// The cluster's autoscale definition (nothing happens without one).
    pub cfg: Option<AutoscaleConfig>,
    /// The schedule (5 minutes).
    pub every: Millis,
}

impl EcsAutoscale {
    /// Over a cluster's autoscale definition, at the published schedule.
    pub fn new(cfg: Option<AutoscaleConfig>) -> Self {
        EcsAutoscale { cfg, every: Millis::mins(5) }
    }
}

impl Tunable for EcsAutoscale {
    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "every" => self.every = duration(key, v)?,
            _ => return Err(unknown(key, &["every"])),
        }
        Ok(())
    }
}

fn first_fit(free: &mut [(i64, i64)], tasks: &[(i64, i64)]) -> bool {
    tasks.iter().all(|&(c, m)| match free.iter_mut().find(|f| f.0 >= c && f.1 >= m) {
        Some(f) => {
            f.0 -= c;
            f.1 -= m;
            true
        }
        None => false,
    })
}

impl EcsAutoscale {
    fn tick(&mut self, ex: &mut Exec, cluster: &str) -> Result<(), ExecError> {
        let Some(cfg) = self.cfg.clone() else { return Ok(()) };
        let view = super::autoscale_view(ex, &cfg)?;
        let snap = view.snapshot.clone();
        let values = metric_values(&view, &cfg);
        let mut extra: Vec<(i64, i64)> = Vec::new();
        for (name, s) in &cfg.services {
            let Some(svc) = snap.service(name).filter(|s| !s.daemon) else { continue };
            let known: BTreeMap<String, f64> =
                values.get(name).into_iter().flatten().filter_map(|(k, v)| v.map(|v| (k.clone(), v))).collect();
            let Some(r) = s.rules.iter().find(|r| {
                r.expr.eval(&known).is_some_and(|v| r.min.is_none_or(|lo| v >= lo) && r.max.is_none_or(|hi| v <= hi))
            }) else {
                continue;
            };
            let new = (svc.running as i64 + r.action).clamp(s.min as i64, s.max as i64) as u32;
            if new > svc.running {
                let d = &svc.task_definition;
                extra.extend(std::iter::repeat_n((d.cpu, d.memory), (new - svc.running) as usize));
            }
            if new != svc.desired {
                ex.apply(Action::SetServiceDesired {
                    service: name.clone(),
                    desired: new,
                    reason: "ecs-autoscale".into(),
                })?;
            }
        }
        if cfg.cpu_buffer > 0 || cfg.mem_buffer > 0 {
            extra.push((cfg.cpu_buffer, cfg.mem_buffer));
        }
        let mut g = ex.group(&cfg.group)?;
        // The published code treats the definition's min and max as the truth: when both are
        // set and differ from the group's, it updates the group and then uses them.
        if let Some((lo, hi)) = cfg.group_limits
            && (lo, hi) != (g.min, g.max)
        {
            ex.apply(Action::SetGroupLimits { group: g.name.clone(), min: lo, max: hi })?;
            g.min = lo;
            g.max = hi;
            g.desired = g.desired.clamp(lo, hi);
        }
        let mut desired = g.desired;
        for inst in snap
            .instances
            .iter()
            .filter(|i| i.status == InstanceStatus::Draining && is_member(&g, i) && live_on(&snap, &i.arn, false) == 0)
        {
            if desired > g.min {
                ex.apply(Action::TerminateInstance {
                    ec2_instance_id: inst.ec2_instance_id.clone(),
                    decrement: true,
                    reason: "ecs-autoscale: drained".into(),
                })?;
                desired -= 1;
            }
        }
        let active: Vec<_> =
            snap.instances.iter().filter(|i| i.status == InstanceStatus::Active && is_member(&g, i)).collect();
        let mut free: Vec<(i64, i64)> = active.iter().map(|i| (i.remaining.cpu, i.remaining.memory)).collect();
        if !first_fit(&mut free, &extra) {
            if desired < g.max {
                let a = Action::SetGroupDesired {
                    group: g.name.clone(),
                    desired: desired + 1,
                    honor_cooldown: false,
                    reason: "ecs-autoscale: scale up".into(),
                };
                ex.apply(a)?;
            }
            return Ok(());
        }
        if desired <= g.min || active.len() < 2 {
            return Ok(());
        }
        let reserved = |i: &ballast_core::model::ContainerInstance| {
            (i.registered.memory - i.remaining.memory, i.registered.cpu - i.remaining.cpu)
        };
        let victim = active.iter().min_by_key(|i| (reserved(i), i.ec2_instance_id.clone())).expect("two or more");
        let (mem, cpu) = reserved(victim);
        let others: Vec<_> = active.iter().filter(|i| i.arn != victim.arn).collect();
        let fits = others.iter().enumerate().any(|(k, o)| {
            if o.remaining.cpu < cpu || o.remaining.memory < mem {
                return false;
            }
            let mut free: Vec<(i64, i64)> = others.iter().map(|i| (i.remaining.cpu, i.remaining.memory)).collect();
            free[k].0 -= cpu;
            free[k].1 -= mem;
            first_fit(&mut free, &extra)
        });
        if fits {
            ex.apply(Action::SetInstanceState {
                instance_arns: vec![victim.arn.clone()],
                status: InstanceStatus::Draining,
                reason: format!("ecs-autoscale: scale down {cluster}"),
            })?;
        }
        Ok(())
    }
}

impl Controller for EcsAutoscale {
    fn every(&self) -> Option<Millis> {
        Some(self.every)
    }

    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        let mut ex = Exec::new(b, cluster, false, RUN_BUDGET);
        // Seed 003 catches nothing: a refused call ends the run (and is reported as its error).
        self.tick(&mut ex, cluster).map_err(backend_err)
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}
