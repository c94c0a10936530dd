//! Policies the simulator can run side by side: `ballast` (the configured jobs) and the
//! prior art's published algorithms (`none`, `drain-cov`, `redeploy-on-join`,
//! `spot-pending`), each behind the simulator's `Controller` trait. docs/baselines.md
//! describes the baselines.

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, MetricQuery};
use ballast_core::config::{ClusterConfig, SpotFallbackConfig};
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_core::metrics::spread;
use ballast_core::model::InstanceStatus;
use ballast_sim::{Controller, Nothing};

use crate::exec::{Exec, ExecError};
use crate::jobs::{autoscale, rebalance, spot};

/// How long one run may take (a Lambda function's 15 minutes, less a margin).
pub const RUN_BUDGET: Millis = Millis::mins(14);

/// The policy names `--policy` accepts.
pub const NAMES: [&str; 7] =
    ["ballast", "none", "drain-cov", "redeploy-on-join", "spot-pending", "ecs-autoscale", "capacity-provider"];

/// ballast's own policy: the configured jobs on every scheduled run, the rebalance job on
/// every join, the spot-fallback job on every Spot interruption warning. Every acting run
/// takes the cluster's run lease, as on AWS.
pub struct Ballast {
    cfg: ClusterConfig,
    last_run: Option<Millis>,
    /// The lease holder id prefix; `None`: runs take no lease.
    holder: Option<String>,
    runs: u64,
    /// One line per run that did something.
    pub log: Vec<String>,
}

fn ok_unless_backend(r: Result<(), ExecError>) -> Result<(), BackendError> {
    match r {
        Err(ExecError::Backend(e)) => Err(e),
        // A deadline ends the run cleanly; a lease held by another controller means that
        // one is acting.
        Ok(()) | Err(ExecError::Deadline(_) | ExecError::LeaseHeld(_)) => Ok(()),
    }
}

impl Ballast {
    /// With a validated configuration.
    pub fn new(cfg: ClusterConfig) -> Self {
        Ballast::named(cfg, "sim-ballast")
    }

    /// With a lease holder id of its own (for several controllers on one cluster).
    pub fn named(cfg: ClusterConfig, holder: &str) -> Self {
        Ballast { cfg, last_run: None, holder: Some(holder.to_string()), runs: 0, log: vec![] }
    }

    /// Runs that take no lease (only to show, in tests, what the lease prevents).
    pub fn without_lease(cfg: ClusterConfig) -> Self {
        Ballast { cfg, last_run: None, holder: None, runs: 0, log: vec![] }
    }

    fn spot(&mut self, ex: &mut Exec, why: &str, warning: Option<&str>) -> Result<(), ExecError> {
        let Some(cfg) = &self.cfg.spot_fallback else { return Ok(()) };
        let at = ex.now();
        let o = spot::run(ex, cfg, warning)?;
        if !(o.drained.is_empty() && o.terminated.is_empty() && o.returned.is_empty())
            || o.decision.starts_with("scaled")
        {
            self.log.push(format!("{at} ({why}): spot-fallback: {}", o.decision));
        }
        Ok(())
    }

    fn autoscale(&mut self, ex: &mut Exec, why: &str) -> Result<(), ExecError> {
        let Some(cfg) = &self.cfg.autoscale else { return Ok(()) };
        let at = ex.now();
        let o = autoscale::run(ex, cfg)?;
        for d in o.services.iter().filter(|d| d.new_desired != d.desired) {
            self.log
                .push(format!("{at} ({why}): autoscale {}: {} -> {}: {}", d.service, d.desired, d.new_desired, d.why));
        }
        if o.new_group_desired != o.group_desired
            || !(o.drained.is_empty() && o.terminated.is_empty() && o.returned.is_empty())
        {
            self.log.push(format!("{at} ({why}): autoscale instances: {}", o.decision));
        }
        Ok(())
    }

    fn jobs(&mut self, ex: &mut Exec, why: &str, warning: Option<&str>) -> Result<(), ExecError> {
        let at = ex.now();
        self.spot(ex, why, warning)?;
        if warning.is_some() {
            return Ok(());
        }
        // Autoscale runs on the schedule (its metrics and cooldowns are per period), not on
        // every instance event.
        if why == "scheduled" {
            self.autoscale(ex, why)?;
        }
        if !self.cfg.rebalance.enabled {
            return Ok(());
        }
        let o = rebalance::run(ex, &self.cfg.rebalance)?;
        if o.restarts > 0 || !o.recovered.is_empty() {
            self.log
                .push(format!("{at} ({why}): {}; {} restart(s) in {} step(s)", o.plan.summary, o.restarts, o.steps));
        }
        Ok(())
    }

    /// One run: the jobs under the run lease, which is given back at the end.
    pub fn run_once(
        &mut self,
        b: &mut dyn Backend,
        cluster: &str,
        why: &str,
        warning: Option<&str>,
    ) -> Result<(), BackendError> {
        self.last_run = Some(b.now());
        // Each run is a process of its own, with a holder id of its own (a crashed run's lease
        // blocks the next one until it expires, as on AWS).
        self.runs += 1;
        let mut ex = Exec::new(b, cluster, false, RUN_BUDGET);
        if let Some(h) = &self.holder {
            ex = ex.with_lease(format!("{h}-{}", self.runs));
        }
        let r = self.jobs(&mut ex, why, warning);
        if matches!(&r, Err(e) if e.is_crash()) {
            return ok_unless_backend(r);
        }
        let released = ex.release_lease();
        ok_unless_backend(r)?;
        ok_unless_backend(released)
    }

    fn run(&mut self, b: &mut dyn Backend, cluster: &str, why: &str) -> Result<(), BackendError> {
        self.run_once(b, cluster, why, None)
    }
}

impl Controller for Ballast {
    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        self.run(b, cluster, "scheduled")
    }

    fn on_instance_event(
        &mut self,
        b: &mut dyn Backend,
        cluster: &str,
        ev: &InstanceStateChange,
    ) -> Result<(), BackendError> {
        // A join triggers one evaluation; a burst of joins at one instant triggers one run,
        // since that run saw them all.
        if ev.is_join() && self.last_run.is_none_or(|t| ev.time > t) {
            return self.run(b, cluster, "instance joined");
        }
        Ok(())
    }

    fn on_spot_warning(&mut self, b: &mut dyn Backend, cluster: &str, id: &str) -> Result<(), BackendError> {
        self.run_once(b, cluster, "Spot interruption warning", Some(id))
    }
}

/// Seed 004 as published (andyfase/ecsSpotFleet), every scheduled run: nothing while the
/// fleet's `TargetCapacity` changed in the last 10 minutes; else on-demand desired =
/// ⌈`PendingCapacity` ÷ units⌉ (a missing datapoint read as 32 pending units, as the
/// published code does), up at once (HonorCooldown false) or down honouring the group's
/// cooldown, by SetDesiredCapacity alone: scale-in kills whatever runs on the instances the
/// group picks. Clamped to the group's min/max (the published code would fail there).
pub struct SpotPending {
    cfg: Option<SpotFallbackConfig>,
}

impl SpotPending {
    fn query(fleet: &str, name: &str, statistic: &str, period_s: u32) -> MetricQuery {
        MetricQuery {
            namespace: "AWS/EC2Spot".into(),
            name: name.into(),
            dimensions: [("FleetRequestId".to_string(), fleet.to_string())].into_iter().collect(),
            statistic: statistic.into(),
            period_s,
        }
    }
}

impl Controller for SpotPending {
    fn on_tick(&mut self, b: &mut dyn Backend, _cluster: &str) -> Result<(), BackendError> {
        let Some(cfg) = &self.cfg else { return Ok(()) };
        let f = &cfg.fleet;
        let v = b.metric_data(&[
            Self::query(f, "TargetCapacity", "Maximum", 600),
            Self::query(f, "TargetCapacity", "Minimum", 600),
            Self::query(f, "PendingCapacity", "Maximum", 60),
        ])?;
        if let (Some(max), Some(min)) = (v[0], v[1])
            && max != min
        {
            return Ok(());
        }
        let pending = v[2].unwrap_or(32.0);
        let g = b.group(&cfg.on_demand_group)?;
        let want = ((pending / cfg.units_per_instance).ceil() as u32).clamp(g.min, g.max);
        if want == g.desired {
            return Ok(());
        }
        let a = Action::SetGroupDesired {
            group: cfg.on_demand_group.clone(),
            desired: want,
            honor_cooldown: want < g.desired,
            reason: "spot-pending".into(),
        };
        match b.apply(_cluster, &a) {
            Err(BackendError::Conflict { .. }) => Ok(()),
            r => r,
        }
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Seed 000 as published (maginetv/ecs-task-balancer): re-activates every DRAINING
/// instance, counts running + pending tasks per ACTIVE instance (daemons and standalone
/// tasks included), and while the COV is above `COV_PERCENT` drains the busiest instance
/// until its count is at most the mean or `DRAIN_TIMEOUT` passes, sleeping 60 s and halving
/// the timeout between instances, up to `DRAIN_MAX_INSTANCES`.
pub struct DrainCov {
    /// COV_PERCENT.
    pub cov_percent: f64,
    /// DRAIN_SLEEP_TIME.
    pub sleep: Millis,
    /// DRAIN_TIMEOUT.
    pub timeout: Millis,
    /// DRAIN_MAX_INSTANCES.
    pub max_instances: u32,
}

impl Default for DrainCov {
    fn default() -> Self {
        // The values of seed 000's "How to run" example.
        DrainCov { cov_percent: 25.0, sleep: Millis::secs(30), timeout: Millis::secs(45), max_instances: 3 }
    }
}

impl DrainCov {
    fn counts(snap: &ballast_core::model::Snapshot) -> Vec<(String, f64)> {
        snap.instances
            .iter()
            .filter(|i| i.status == InstanceStatus::Active)
            .map(|i| (i.arn.clone(), i.running_tasks as f64 + i.pending_tasks as f64))
            .collect()
    }
}

impl Controller for DrainCov {
    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        let snap = b.snapshot(cluster)?;
        let draining: Vec<String> =
            snap.instances.iter().filter(|i| i.status == InstanceStatus::Draining).map(|i| i.arn.clone()).collect();
        for chunk in draining.chunks(10) {
            b.apply(
                cluster,
                &Action::SetInstanceState {
                    instance_arns: chunk.to_vec(),
                    status: InstanceStatus::Active,
                    reason: "drain-cov: reset".into(),
                },
            )?;
        }
        let mut timeout = self.timeout;
        for _ in 0..self.max_instances {
            let snap = b.snapshot(cluster)?;
            let counts = Self::counts(&snap);
            let vals: Vec<f64> = counts.iter().map(|c| c.1).collect();
            let s = spread(&vals);
            if counts.len() <= 1 || vals.iter().sum::<f64>() <= 1.0 || s.cov_percent <= self.cov_percent {
                return Ok(());
            }
            let busiest = counts.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("non-empty").0.clone();
            b.apply(
                cluster,
                &Action::SetInstanceState {
                    instance_arns: vec![busiest.clone()],
                    status: InstanceStatus::Draining,
                    reason: "drain-cov".into(),
                },
            )?;
            let start = b.now();
            loop {
                b.sleep(self.sleep)?;
                let s2 = b.snapshot(cluster)?;
                let n = s2.instance(&busiest).map_or(0.0, |i| i.running_tasks as f64 + i.pending_tasks as f64);
                if n <= s.mean || b.now() - start >= timeout {
                    break;
                }
            }
            b.apply(
                cluster,
                &Action::SetInstanceState {
                    instance_arns: vec![busiest],
                    status: InstanceStatus::Active,
                    reason: "drain-cov".into(),
                },
            )?;
            b.sleep(Millis::secs(60))?;
            timeout = Millis(timeout.0 / 2);
        }
        Ok(())
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Seed 001 as published (aws-samples/ecs-refarch-task-rebalancing), with
/// `forceNewDeployment` instead of a new task-definition revision: on any instance state
/// change event showing 0 running and 0 pending tasks with the agent connected, redeploy
/// every service of the cluster at once (its status is not checked).
pub struct RedeployOnJoin;

impl Controller for RedeployOnJoin {
    fn on_tick(&mut self, _: &mut dyn Backend, _: &str) -> Result<(), BackendError> {
        Ok(())
    }

    fn on_instance_event(
        &mut self,
        b: &mut dyn Backend,
        cluster: &str,
        ev: &InstanceStateChange,
    ) -> Result<(), BackendError> {
        if ev.running_tasks_count == 0 && ev.pending_tasks_count == 0 && ev.agent_connected {
            let snap = b.snapshot(cluster)?;
            for s in &snap.services {
                b.apply(
                    cluster,
                    &Action::ForceNewDeployment { service: s.name.clone(), reason: "redeploy-on-join".into() },
                )?;
            }
        }
        Ok(())
    }
}

/// The controller for a policy name.
pub fn make(name: &str, cfg: &ClusterConfig) -> Option<Box<dyn Controller>> {
    Some(match name {
        "ballast" => Box::new(Ballast::new(cfg.clone())),
        "none" => Box::new(Nothing),
        "drain-cov" => Box::new(DrainCov { cov_percent: cfg.rebalance.cov_percent, ..DrainCov::default() }),
        "redeploy-on-join" => Box::new(RedeployOnJoin),
        "spot-pending" => Box::new(SpotPending { cfg: cfg.spot_fallback.clone() }),
        "ecs-autoscale" => Box::new(crate::scaling_baselines::EcsAutoscale { cfg: cfg.autoscale.clone() }),
        "capacity-provider" => Box::new(crate::scaling_baselines::CapacityProvider::new(cfg.autoscale.clone())),
        _ => return None,
    })
}
