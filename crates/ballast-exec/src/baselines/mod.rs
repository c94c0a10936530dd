//! The prior art's tools as simulator controllers, each as its published source runs it:
//! its cadence, defaults and limits come from the seed or that source, and every deviation is
//! named here and in docs/baselines.md. A deviation can be shown both ways: `--policy`
//! takes options after the name (`drain-cov:every=5m:max_instances=3`).
//!
//! # Layout
//! - [`drain_cov`]: seed 000 (maginetv/ecs-task-balancer).
//! - [`redeploy_on_join`]: seed 001 (aws-samples/ecs-refarch-task-rebalancing).
//! - [`ecs_autoscale`]: seed 003 (structurely/ecs-autoscale).
//! - [`spot_pending`]: seed 004 (andyfase/ecsSpotFleet).
//! - [`capacity_provider`]: ECS cluster auto scaling with managed scaling.

pub mod capacity_provider;
pub mod drain_cov;
pub mod ecs_autoscale;
pub mod redeploy_on_join;
pub mod spot_pending;

use ballast_core::autoscale::AutoscaleConfig;
use ballast_core::config::{ClusterConfig, RebalanceConfig};
use ballast_core::duration::{Millis, parse_duration};
use ballast_core::view::{Jobs, View};

use crate::exec::{Exec, ExecError};
use crate::orchestrate::{Cause, read_view};

/// What an autoscaling baseline reads: the cluster, its group and the definition's metrics
/// (as ballast reads them, so both decide from the same values).
pub(crate) fn autoscale_view(ex: &mut Exec, cfg: &AutoscaleConfig) -> Result<View, ExecError> {
    let mut rebalance = RebalanceConfig::defaults();
    rebalance.enabled = false;
    let c = ClusterConfig { rebalance, spot_fallback: None, autoscale: Some(cfg.clone()) };
    read_view(ex, &c, Jobs { autoscale: true, ..Jobs::NONE }, &Cause::default())
}

/// A policy as `--policy` names it: `NAME`, or `NAME:key=value:key=value` to change a
/// baseline's published parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    /// The policy's name.
    pub name: String,
    /// Its options, in the order given.
    pub options: Vec<(String, String)>,
}

impl PolicySpec {
    /// Parses `NAME[:key=value]*`.
    pub fn parse(text: &str) -> Result<PolicySpec, String> {
        let mut parts = text.split(':');
        let name = parts.next().unwrap_or_default().trim().to_string();
        let mut options = Vec::new();
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                return Err(format!("`{text}`: option `{p}` needs a value (key=value)"));
            };
            options.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(PolicySpec { name, options })
    }

    /// The spec as written (the report's `policy` field).
    pub fn text(&self) -> String {
        let mut s = self.name.clone();
        for (k, v) in &self.options {
            s.push_str(&format!(":{k}={v}"));
        }
        s
    }
}

/// A baseline's parameters that `--policy NAME:key=value` may change.
pub trait Tunable {
    /// Sets one parameter; an unknown key or a bad value is an error naming the keys known.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String>;

    /// Applies every option of `spec`.
    fn tune(mut self, spec: &PolicySpec) -> Result<Self, String>
    where
        Self: Sized,
    {
        for (k, v) in &spec.options {
            self.set(k, v).map_err(|e| format!("--policy {}: {e}", spec.text()))?;
        }
        Ok(self)
    }
}

/// Parses a duration option.
pub(crate) fn duration(key: &str, v: &str) -> Result<Millis, String> {
    parse_duration(v).map_err(|e| format!("{key}: {e}"))
}

/// Parses a number option.
pub(crate) fn number(key: &str, v: &str) -> Result<f64, String> {
    v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| format!("{key}: `{v}` is not a number"))
}

/// Parses a boolean option.
pub(crate) fn boolean(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "yes" | "on" => Ok(true),
        "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{key}: `{v}` is not true or false")),
    }
}

/// The error for an unknown option.
pub(crate) fn unknown(key: &str, known: &[&str]) -> String {
    format!("unknown option `{key}`; this policy takes {}", known.join(", "))
}
