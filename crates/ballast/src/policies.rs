//! Policies the simulator can run side by side: `ballast` (the configured jobs), `none`, and
//! the prior art's tools as published ([`crate::baselines`]), each behind the simulator's
//! `Controller` trait. docs/baselines.md describes the baselines.

use ballast_core::backend::{Backend, BackendError};
use ballast_core::config::ClusterConfig;
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_sim::{Controller, Nothing};

use crate::baselines::capacity_provider::CapacityProvider;
use crate::baselines::drain_cov::DrainCov;
use crate::baselines::ecs_autoscale::EcsAutoscale;
use crate::baselines::redeploy_on_join::RedeployOnJoin;
use crate::baselines::spot_pending::SpotPending;
use crate::baselines::{PolicySpec, Tunable};

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
    fn client_pacing(&self) -> Option<f64> {
        // As the AWS adapter: half of each published limit (ballast_core::throttle).
        Some(ballast_core::throttle::DEFAULT_SHARE)
    }

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

/// The controller for a policy spec (`NAME[:key=value]*`; docs/baselines.md lists each
/// baseline's options). Errors name what is wrong and what is known.
pub fn make(spec: &PolicySpec, cfg: &ClusterConfig) -> Result<Box<dyn Controller>, String> {
    let plain = |c: Box<dyn Controller>| {
        if let Some((k, _)) = spec.options.first() {
            return Err(format!("--policy {}: `{}` takes no options (got `{k}`)", spec.text(), spec.name));
        }
        Ok(c)
    };
    match spec.name.as_str() {
        "ballast" => plain(Box::new(Ballast::new(cfg.clone()))),
        "none" => plain(Box::new(Nothing)),
        // COV_PERCENT is a deployment setting: the one configured for the cluster (default 25).
        "drain-cov" => {
            Ok(Box::new(DrainCov { cov_percent: cfg.rebalance.cov_percent, ..DrainCov::default() }.tune(spec)?))
        }
        "redeploy-on-join" => Ok(Box::new(RedeployOnJoin::default().tune(spec)?)),
        "spot-pending" => Ok(Box::new(SpotPending::new(cfg.spot_fallback.clone()).tune(spec)?)),
        "ecs-autoscale" => Ok(Box::new(EcsAutoscale::new(cfg.autoscale.clone()).tune(spec)?)),
        "capacity-provider" => Ok(Box::new(CapacityProvider::new(cfg.autoscale.clone()).tune(spec)?)),
        other => Err(format!("--policy: unknown policy `{other}`; known: {}", NAMES.join(", "))),
    }
}
