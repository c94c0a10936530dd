//! Policies the simulator can run side by side: `ballast` (the configured jobs) and the
//! prior art's published algorithms (`none`, `drain-cov`, `redeploy-on-join`), each behind
//! the simulator's `Controller` trait. docs/baselines.md describes the baselines.

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError};
use ballast_core::config::RebalanceConfig;
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_core::metrics::spread;
use ballast_core::model::InstanceStatus;
use ballast_sim::{Controller, Nothing};

use crate::exec::{Exec, ExecError};
use crate::jobs::rebalance;

/// How long one run may take (a Lambda function's 15 minutes, less a margin).
pub const RUN_BUDGET: Millis = Millis::mins(14);

/// The policy names `--policy` accepts.
pub const NAMES: [&str; 4] = ["ballast", "none", "drain-cov", "redeploy-on-join"];

/// ballast's own policy: the rebalance job on every scheduled run and on every join.
pub struct Ballast {
    cfg: RebalanceConfig,
    last_run: Option<Millis>,
    /// One line per run that did something.
    pub log: Vec<String>,
}

impl Ballast {
    /// With a validated configuration.
    pub fn new(cfg: RebalanceConfig) -> Self {
        Ballast { cfg, last_run: None, log: vec![] }
    }

    fn run(&mut self, b: &mut dyn Backend, cluster: &str, why: &str) -> Result<(), BackendError> {
        self.last_run = Some(b.now());
        let at = b.now();
        let mut ex = Exec::new(b, cluster, false, RUN_BUDGET);
        match rebalance::run(&mut ex, &self.cfg) {
            Ok(o) => {
                if o.restarts > 0 || !o.recovered.is_empty() {
                    self.log.push(format!(
                        "{at} ({why}): {}; {} restart(s) in {} step(s)",
                        o.plan.summary, o.restarts, o.steps
                    ));
                }
                Ok(())
            }
            Err(ExecError::Backend(e)) => Err(e),
            Err(ExecError::Deadline(_)) => Ok(()),
        }
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
pub fn make(name: &str, cfg: &RebalanceConfig) -> Option<Box<dyn Controller>> {
    Some(match name {
        "ballast" => Box::new(Ballast::new(cfg.clone())),
        "none" => Box::new(Nothing),
        "drain-cov" => Box::new(DrainCov { cov_percent: cfg.cov_percent, ..DrainCov::default() }),
        "redeploy-on-join" => Box::new(RedeployOnJoin),
        _ => return None,
    })
}
