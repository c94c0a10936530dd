//! Seed 004 as published (andyfase/ecsSpotFleet, `ecsManageSpotPendingCapacity.py`): a Lambda
//! function every minute, for the fleet and on-demand group of the cluster's `spot_fallback`
//! section (nothing without one).
//!
//! Each run (`lambda_handler`):
//! 1. `checkFleetScalled`: GetMetricStatistics of `TargetCapacity` (Maximum, 60 s periods)
//!    over the last 10 minutes; if any datapoint differs from the first, or the call fails,
//!    do nothing (the fleet is still fulfilling);
//! 2. `getECSMetrics`: `PendingCapacity` and `TargetCapacity` (Maximum, 60 s) over the last
//!    minute, each the *first* datapoint; **no datapoint raises, and both are then read as
//!    32** (`defaultTargetCapacity`), the published bug that CloudWatch's missing and late
//!    datapoints trigger;
//! 3. instances required = ⌈pending ÷ units⌉; above the group's desired capacity,
//!    SetDesiredCapacity with HonorCooldown false; below it, with HonorCooldown true. A
//!    refused call (the cooldown, a value outside the group's min and max) is logged and
//!    ignored. Nothing is drained: the group terminates instances with their tasks.
//!
//! Deviations, named in docs/baselines.md: the units per instance and the group come from the
//! configuration (the published code hard-codes `asgPerServerVCPU = 4` and the group's name;
//! `units=4` shows the hard-coded value); the alarm-triggered invocation is not modelled (the
//! minute schedule runs within 60 s of it).

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, MetricQuery};
use ballast_core::config::SpotFallbackConfig;
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_sim::Controller;

use super::{Tunable, duration, number, unknown};

/// `defaultTargetCapacity`: what a missing datapoint is read as.
pub const DEFAULT_CAPACITY: f64 = 32.0;

/// The published parameters.
#[derive(Debug, Clone)]
pub struct SpotPending {
    /// The cluster's spot-fallback section (the fleet and the on-demand group).
    pub cfg: Option<SpotFallbackConfig>,
    /// The schedule (every minute).
    pub every: Millis,
    /// Capacity units per on-demand instance (default: the configuration's).
    pub units: Option<f64>,
}

impl SpotPending {
    /// Over a cluster's spot-fallback section.
    pub fn new(cfg: Option<SpotFallbackConfig>) -> Self {
        SpotPending { cfg, every: Millis::mins(1), units: None }
    }

    fn query(fleet: &str, name: &str) -> MetricQuery {
        MetricQuery {
            namespace: "AWS/EC2Spot".into(),
            name: name.into(),
            dimensions: [("FleetRequestId".to_string(), fleet.to_string())].into_iter().collect(),
            statistic: "Maximum".into(),
            period_s: 60,
        }
    }
}

impl Tunable for SpotPending {
    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "every" => self.every = duration(key, v)?,
            "units" => self.units = Some(number(key, v)?.max(0.001)),
            _ => return Err(unknown(key, &["every", "units"])),
        }
        Ok(())
    }
}

impl Controller for SpotPending {
    fn every(&self) -> Option<Millis> {
        Some(self.every)
    }

    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        let Some(cfg) = &self.cfg else { return Ok(()) };
        let f = &cfg.fleet;
        // checkFleetScalled: on error, assume it has been scaled.
        let Ok(points) = b.metric_statistics(&Self::query(f, "TargetCapacity"), Millis::secs(600)) else {
            return Ok(());
        };
        if points.iter().any(|p| p.1 != points[0].1) {
            return Ok(());
        }
        // getECSMetrics: `Datapoints[0]`; any failure reads both as 32.
        let mut pending = None;
        for name in ["PendingCapacity", "TargetCapacity"] {
            let v =
                b.metric_statistics(&Self::query(f, name), Millis::secs(60)).ok().and_then(|p| p.first().map(|x| x.1));
            match v {
                Some(v) if name == "PendingCapacity" => pending = Some(v),
                Some(_) => {}
                None => {
                    pending = None;
                    break;
                }
            }
        }
        let pending = pending.unwrap_or(DEFAULT_CAPACITY);
        let units = self.units.unwrap_or(cfg.units_per_instance);
        // `int((pending / units) + 0.999999)`: "note we always round up!"
        let required = (pending / units + 0.999_999).floor().max(0.0) as u32;
        let g = b.group(&cfg.on_demand_group)?;
        if required == g.desired {
            return Ok(());
        }
        let a = Action::SetGroupDesired {
            group: cfg.on_demand_group.clone(),
            desired: required,
            honor_cooldown: required < g.desired,
            reason: "spot-pending".into(),
        };
        match b.apply(cluster, &a) {
            // setASGDesired catches everything and logs it.
            Err(BackendError::Conflict { .. } | BackendError::Invalid { .. }) => Ok(()),
            r => r,
        }
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}
