//! ECS cluster auto scaling as the ECS documentation describes it (ecs-behaviour.md §4): a
//! capacity provider with managed scaling (`targetCapacity` 100, minimum step 1, warm-up
//! 300 s), managed termination protection and managed draining, evaluated every minute
//! ("Every minute, Amazon ECS collects information"). Services are scaled by the same rules
//! and cooldowns as ballast's autoscale job, standing in for Application Auto Scaling, so the
//! two differ only in how they size the instances.
//!
//! Each minute:
//! - **M**, the instances needed: with tasks waiting for capacity, the group's instances
//!   plus the new ones the waiting tasks need, bin-packed with the placement model (at least
//!   the minimum step; two when scaling out from zero); otherwise the instances running at
//!   least one task that is not a daemon's ("A container instance is considered empty even
//!   when daemon tasks are running"; a standalone task counts).
//! - **Scale-out** (M above the instances): desired = M at once, blocked while an instance
//!   is within its warm-up; a scale-out stops any scale-in in progress.
//! - **Scale-in** (M below the instances for 15 consecutive minutes, and 15 minutes after the
//!   last scale-out): each minute, desired falls by at least one instance and at most half the
//!   group, never below M. Managed termination protection lets only empty instances go, and
//!   managed draining drains each before it is terminated: ballast's simulator shows this as
//!   the instance set DRAINING (its daemon tasks stop last), then terminated with a decrement
//!   once no task is left.

use ballast_core::action::Action;
use ballast_core::autoscale::AutoscaleConfig;
use ballast_core::backend::{Backend, BackendError, Lifecycle};
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_core::model::InstanceStatus;
use ballast_sim::Controller;

use super::ecs_autoscale::{backend_err, live_on};
use super::{Tunable, duration, unknown};
use ballast_core::jobs::autoscale::{self, AutoscaleDecision};
use ballast_core::jobs::is_member;
use ballast_core::plan::Plan;

use crate::exec::{Exec, ExecError};
use crate::policies::RUN_BUDGET;

/// The instance attribute marking an instance managed draining is taking away.
pub const MANAGED_DRAIN: &str = "capacity-provider-scale-in";

/// Managed scaling's parameters (the ECS defaults).
#[derive(Debug, Clone)]
pub struct CapacityProvider {
    /// The cluster's autoscale definition (nothing happens without one).
    pub cfg: Option<AutoscaleConfig>,
    /// How often ECS evaluates (every minute).
    pub every: Millis,
    /// `instanceWarmupPeriod` (300 s).
    pub warmup: Millis,
    /// Low datapoints before scale-in (15 one-minute datapoints) and the wait after a
    /// scale-out (15 minutes).
    pub scale_in_after: Millis,
    low_since: Option<Millis>,
    last_out: Option<Millis>,
}

impl CapacityProvider {
    /// Over a cluster's autoscale definition, with ECS's defaults.
    pub fn new(cfg: Option<AutoscaleConfig>) -> Self {
        CapacityProvider {
            cfg,
            every: Millis::mins(1),
            warmup: Millis::secs(300),
            scale_in_after: Millis::mins(15),
            low_since: None,
            last_out: None,
        }
    }

    fn tick(&mut self, ex: &mut Exec) -> Result<(), ExecError> {
        let Some(cfg) = self.cfg.clone() else { return Ok(()) };
        let view = super::autoscale_view(ex, &cfg)?;
        let snap = view.snapshot.clone();
        // The services, by ballast's rules and cooldowns (standing in for Application Auto
        // Scaling), carried out by the same executor.
        let mut d = AutoscaleDecision::default();
        let mut scaling = Plan::new(&snap.cluster);
        scaling.steps = autoscale::services(&view, &cfg, &mut d);
        crate::execute::execute(ex, &scaling, &view)?;
        let desired: std::collections::BTreeMap<String, u32> =
            d.services.iter().map(|s| (s.service.clone(), s.new_desired)).collect();
        let g = ex.group(&cfg.group)?;
        let now = snap.taken_at;
        let members: Vec<_> = snap.instances.iter().filter(|i| is_member(&g, i)).collect();
        // Managed draining: an instance being taken away goes once it has no task left.
        for i in members.iter().filter(|i| i.attr(ballast_core::model::attr::BALLAST_DRAIN) == Some(MANAGED_DRAIN)) {
            if i.status == InstanceStatus::Draining && live_on(&snap, &i.arn, false) == 0 {
                ex.apply(Action::TerminateInstance {
                    ec2_instance_id: i.ec2_instance_id.clone(),
                    decrement: true,
                    reason: "capacity-provider: drained, terminating".into(),
                })?;
            }
        }
        let leaving = members.iter().filter(|i| i.status == InstanceStatus::Draining).count() as u32;
        let launching = g.instances.iter().filter(|m| m.lifecycle == Lifecycle::Launching).count() as u32;
        let n = g.desired.saturating_sub(leaving);
        let tasks = autoscale::wanted(&snap, &desired);
        let need = autoscale::instances_needed(&snap, &g, &tasks, &None, launching, g.max.saturating_sub(g.desired));
        let waiting = need.new_instances > 0 || (!tasks.is_empty() && need.incompatible == 0 && members.is_empty());
        if waiting {
            self.low_since = None;
            let warming = launching > 0 || members.iter().any(|i| now - i.registered_at < self.warmup);
            if warming {
                return Ok(());
            }
            // From zero instances ECS launches two; otherwise at least the minimum step (1).
            let step = if members.is_empty() && launching == 0 {
                need.new_instances.max(2)
            } else {
                need.new_instances.max(1)
            };
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
        // M: instances with a task that is not a daemon's (booting ones count as needed).
        let busy =
            members.iter().filter(|i| i.status == InstanceStatus::Active && live_on(&snap, &i.arn, true) > 0).count()
                as u32
                + launching;
        if busy >= n {
            self.low_since = None;
            return Ok(());
        }
        let since = *self.low_since.get_or_insert(now);
        if now - since < self.scale_in_after || self.last_out.is_some_and(|t| now - t < self.scale_in_after) {
            return Ok(());
        }
        let step = (n - busy).clamp(1, (n / 2).max(1)).min(g.desired.saturating_sub(g.min));
        let empty = members
            .iter()
            .filter(|i| i.status == InstanceStatus::Active && live_on(&snap, &i.arn, true) == 0)
            .take(step as usize);
        for inst in empty {
            ex.apply(Action::PutAttribute {
                instance_arn: inst.arn.clone(),
                name: ballast_core::model::attr::BALLAST_DRAIN.into(),
                value: MANAGED_DRAIN.into(),
            })?;
            ex.apply(Action::SetInstanceState {
                instance_arns: vec![inst.arn.clone()],
                status: InstanceStatus::Draining,
                reason: "capacity-provider: managed draining before scale-in".into(),
            })?;
        }
        Ok(())
    }
}

impl Tunable for CapacityProvider {
    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "every" => self.every = duration(key, v)?,
            "warmup" => self.warmup = duration(key, v)?,
            "scale_in_after" => self.scale_in_after = duration(key, v)?,
            _ => return Err(unknown(key, &["every", "warmup", "scale_in_after"])),
        }
        Ok(())
    }
}

impl Controller for CapacityProvider {
    fn every(&self) -> Option<Millis> {
        Some(self.every)
    }

    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        let mut ex = Exec::new(b, cluster, false, RUN_BUDGET);
        self.tick(&mut ex).map_err(backend_err)
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}
