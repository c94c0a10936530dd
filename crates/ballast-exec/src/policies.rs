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

use crate::exec::ExecError;
use crate::orchestrate::{Cause, jobs_for, run_cluster};
use ballast_core::view::Trigger;

/// How long one run may take (a Lambda function's 15 minutes, less a margin).
pub const RUN_BUDGET: Millis = Millis::mins(14);

/// The policy names `--policy` accepts.
pub const NAMES: [&str; 7] =
    ["ballast", "none", "drain-cov", "redeploy-on-join", "spot-pending", "ecs-autoscale", "capacity-provider"];

/// ballast's own policy: the run the CLI and the Lambda function make
/// ([`crate::orchestrate::run_cluster`]), on the triggers the Lambda function gets: every
/// scheduled run, every instance join, every Spot interruption warning
/// ([`crate::orchestrate::jobs_for`] says which jobs each runs). Every acting run takes the
/// cluster's run lease, as on AWS.
pub struct Ballast {
    cfg: ClusterConfig,
    last_run: Option<Millis>,
    /// The lease holder id prefix; `None`: runs take no lease.
    holder: Option<String>,
    runs: u64,
    /// One line per run that did something.
    pub log: Vec<String>,
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

    /// One run, as a process of its own: a holder id of its own (a crashed run's lease blocks
    /// the next one until it expires, as on AWS).
    pub fn run_once(&mut self, b: &mut dyn Backend, cluster: &str, trigger: Trigger) -> Result<(), BackendError> {
        self.last_run = Some(b.now());
        self.runs += 1;
        let at = b.now();
        let cause = Cause { holder: self.holder.as_ref().map(|h| format!("{h}-{}", self.runs)), trigger };
        let jobs = jobs_for(&cause.trigger);
        match run_cluster(b, cluster, &self.cfg, jobs, &cause, false, RUN_BUDGET, false) {
            Ok(r) => {
                if let Some(o) = &r.outcome
                    && !o.steps.is_empty()
                {
                    let woke = match &cause.trigger {
                        Trigger::Scheduled => "scheduled".to_string(),
                        Trigger::InstanceJoined => "instance joined".to_string(),
                        Trigger::SpotWarning(id) => format!("Spot warning for {id}"),
                        Trigger::SpotShortfall => "Spot alarm".to_string(),
                    };
                    self.log.push(format!("{at} ({woke}): {} step(s), {} restart(s)", o.steps.len(), o.restarts));
                    for d in &r.plan.decisions {
                        self.log.push(format!("    {}: {}", d.job.name(), d.summary));
                    }
                    for s in &o.steps {
                        self.log.push(format!("    {} {:?}: {}", s.job.name(), s.result, s.reason));
                    }
                }
                Ok(())
            }
            Err(ExecError::Backend(e)) => Err(e),
            // A deadline ends the run cleanly; a lease held by another controller means that
            // one is acting.
            Err(ExecError::Deadline(_) | ExecError::LeaseHeld(_)) => Ok(()),
        }
    }
}

impl Controller for Ballast {
    fn journal(&self) -> Vec<String> {
        self.log.clone()
    }

    fn client_pacing(&self) -> Option<f64> {
        // As the AWS adapter: half of each published limit (ballast_core::throttle).
        Some(ballast_core::throttle::DEFAULT_SHARE)
    }

    fn warm(&self) -> bool {
        // As the Lambda function: task definitions are described once per process.
        true
    }

    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        self.run_once(b, cluster, Trigger::Scheduled)
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
            return self.run_once(b, cluster, Trigger::InstanceJoined);
        }
        Ok(())
    }

    fn on_spot_warning(&mut self, b: &mut dyn Backend, cluster: &str, id: &str) -> Result<(), BackendError> {
        self.run_once(b, cluster, Trigger::SpotWarning(id.to_string()))
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
        other => Err(format!(
            "--policy: unknown policy `{other}`{}; known: {}",
            ballast_sim::scenario::did_you_mean(other, NAMES)
                .map_or(String::new(), |b| format!(" (did you mean `{b}`?)")),
            NAMES.join(", ")
        )),
    }
}
