//! The autoscaling baselines the simulator runs beside `ballast` (docs/baselines.md):
//! `ecs-autoscale` (seed 003 as published) and `capacity-provider` (ECS cluster auto scaling
//! with managed scaling at target 100% and managed termination protection).

use std::collections::BTreeMap;

use ballast_core::action::Action;
use ballast_core::autoscale::AutoscaleConfig;
use ballast_core::backend::{Backend, BackendError, Lifecycle};
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_core::model::{InstanceStatus, Snapshot};
use ballast_sim::Controller;

use crate::exec::{Exec, ExecError};
use crate::jobs::autoscale::{self, AutoscaleOutcome, is_member};
use crate::policies::RUN_BUDGET;

fn backend_err(e: ExecError) -> BackendError {
    match e {
        ExecError::Backend(e) => e,
        other => BackendError::Invalid { operation: "baseline".into(), message: other.to_string() },
    }
}

fn live_on(snap: &Snapshot, arn: &str, non_daemon_only: bool) -> usize {
    snap.tasks
        .iter()
        .filter(|t| t.is_live() && t.instance_arn == arn && !(non_daemon_only && snap.is_daemon_task(t)))
        .count()
}

/// Seed 003 as published (structurely/ecs-autoscale), on every scheduled run:
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
        let snap = ex.snapshot()?;
        let values = autoscale::read_metrics(ex, &cfg)?;
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
        let g = ex.group(&cfg.group)?;
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
    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        let mut ex = Exec::new(b, cluster, false, RUN_BUDGET);
        match self.tick(&mut ex, cluster) {
            // Seed 003 catches nothing: a refused call ends the run.
            Err(ExecError::Backend(BackendError::Crashed)) => Err(BackendError::Crashed),
            Err(e) => {
                tracing::debug!("ecs-autoscale run failed: {e}");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}

/// ECS cluster auto scaling (managed scaling, target capacity 100%, managed termination
/// protection), evaluated on every scheduled run, with the services scaled by the same rules
/// and cooldowns as ballast's (standing in for Application Auto Scaling):
/// - scale-out: tasks that cannot be placed (after the existing instances take what fits)
///   are bin-packed onto new instances of the group's shape; desired = instances + that
///   (at least 1), blocked while any instance is within its 300 s warm-up;
/// - scale-in: only after the reservation (instances with a non-daemon task ÷ instances) has
///   stayed below 100% for 15 minutes and 15 minutes after the last scale-out; then empty
///   instances only (no task but daemons; a standalone task keeps one), at most half the
///   group at a time, terminated with a decrement.
///
/// No buffer: target 100% keeps none.
pub struct CapacityProvider {
    /// The cluster's autoscale definition (nothing happens without one).
    pub cfg: Option<AutoscaleConfig>,
    low_since: Option<Millis>,
    last_out: Option<Millis>,
}

impl CapacityProvider {
    /// Over a cluster's autoscale definition.
    pub fn new(cfg: Option<AutoscaleConfig>) -> Self {
        CapacityProvider { cfg, low_since: None, last_out: None }
    }

    fn tick(&mut self, ex: &mut Exec) -> Result<(), ExecError> {
        const WARMUP: Millis = Millis::secs(300);
        const SCALE_IN_WAIT: Millis = Millis::mins(15);
        let Some(cfg) = self.cfg.clone() else { return Ok(()) };
        let snap = ex.snapshot()?;
        let mut out = AutoscaleOutcome::default();
        let desired = autoscale::scale_services(ex, &cfg, &snap, &mut out)?;
        let g = ex.group(&cfg.group)?;
        let now = snap.taken_at;
        let tasks = autoscale::wanted(&snap, &desired);
        let members: Vec<_> = snap.instances.iter().filter(|i| is_member(&g, i)).collect();
        let booting = g
            .instances
            .iter()
            .filter(|m| {
                m.lifecycle == Lifecycle::Launching || !members.iter().any(|i| i.ec2_instance_id == m.ec2_instance_id)
            })
            .filter(|m| m.lifecycle != Lifecycle::Leaving)
            .count() as u32;
        let warming = booting > 0 || members.iter().any(|i| now - i.registered_at < WARMUP);
        let need = autoscale::instances_needed(&snap, &g, &tasks, &None, 0, g.max.saturating_sub(g.desired));
        if need.new_instances > 0 || (!tasks.is_empty() && need.incompatible == 0 && members.is_empty()) {
            self.low_since = None;
            if warming {
                return Ok(());
            }
            // From zero instances ECS launches two.
            let step = if members.is_empty() { need.new_instances.max(2) } else { need.new_instances.max(1) };
            let target = (g.desired + step).min(g.max);
            if target > g.desired {
                ex.apply(Action::SetGroupDesired {
                    group: g.name.clone(),
                    desired: target,
                    honor_cooldown: false,
                    reason: "capacity-provider: managed scaling".into(),
                })?;
                self.last_out = Some(now);
            }
            return Ok(());
        }
        let empty: Vec<_> = members
            .iter()
            .filter(|i| {
                i.status == InstanceStatus::Active
                    && live_on(&snap, &i.arn, true) == 0
                    && live_on(&snap, &i.arn, false) == 0
            })
            .collect();
        if empty.is_empty() || booting > 0 {
            self.low_since = None;
            return Ok(());
        }
        let since = *self.low_since.get_or_insert(now);
        if now - since < SCALE_IN_WAIT || self.last_out.is_some_and(|t| now - t < SCALE_IN_WAIT) {
            return Ok(());
        }
        let mut left = g.desired.saturating_sub(g.min).min((g.desired / 2).max(1));
        for inst in empty {
            if left == 0 {
                break;
            }
            ex.apply(Action::TerminateInstance {
                ec2_instance_id: inst.ec2_instance_id.clone(),
                decrement: true,
                reason: "capacity-provider: empty instance".into(),
            })?;
            left -= 1;
        }
        self.low_since = None;
        Ok(())
    }
}

impl Controller for CapacityProvider {
    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        let mut ex = Exec::new(b, cluster, false, RUN_BUDGET);
        match self.tick(&mut ex) {
            Err(ExecError::Backend(BackendError::Crashed)) => Err(BackendError::Crashed),
            Err(e) => Err(backend_err(e)),
            Ok(()) => Ok(()),
        }
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}
