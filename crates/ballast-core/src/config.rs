//! Rebalance configuration: raw (as written in `ballast.yaml` or a scenario's
//! `controller.config`), then validated once into [`RebalanceConfig`].
//!
//! Seed 000's environment variables are read through [`EnvSettings::from_lookup`] with their
//! documented ranges; a value out of range or not a number is an error naming the variable
//! and the range, never a silent clamp. The environment is passed in (a lookup function).

use serde::Deserialize;

use crate::duration::{Millis, parse_duration};
use crate::metrics::{Counting, Measure};

/// How ballast moves tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Surge the service, then let ECS's scale-in remove exactly the planned tasks (or stop
    /// them directly where the service has no surge headroom). The default.
    Stop,
    /// Drain the busiest instance for a while, then return it to ACTIVE (seed 000, done right).
    Drain,
    /// `forceNewDeployment` of the imbalanced services, one at a time.
    Redeploy,
}

/// The `rebalance:` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRebalance {
    /// On unless `false`.
    pub enabled: Option<bool>,
    /// `stop` (default), `drain`, `redeploy`.
    pub method: Option<String>,
    /// The load measure (`count` default).
    pub metric: Option<String>,
    /// COV threshold in percent (default 25, or `COV_PERCENT`).
    pub cov_percent: Option<f64>,
    /// Count daemon tasks in the measure (default false).
    pub include_daemons: Option<bool>,
    /// Count standalone tasks in the measure (default false).
    pub include_standalone: Option<bool>,
    /// At most this many task restarts per run (default 50).
    pub max_restarts_per_run: Option<u32>,
    /// How long to wait for replacements to be healthy (default 5m).
    pub wait_timeout: Option<String>,
    /// Services never touched.
    pub exclude_services: Option<Vec<String>>,
    /// Drain method settings (seed 000's DRAIN_* variables).
    pub drain: Option<RawDrain>,
}

/// The `rebalance.drain:` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrain {
    /// Poll period while draining (10s–30s).
    pub sleep_time: Option<String>,
    /// How long one instance stays DRAINING at most (0s–60s).
    pub timeout: Option<String>,
    /// Instances drained per run (0–3).
    pub max_instances: Option<u32>,
    /// Re-evaluations after a drain within one run (0–5).
    pub max_retry: Option<u32>,
}

/// One cluster's entry in `ballast.yaml` (and a scenario's `controller.config`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClusterConfig {
    /// Rebalance job.
    pub rebalance: Option<RawRebalance>,
    /// Autoscale job (seed 003 keys).
    pub autoscale: Option<crate::autoscale::RawAutoscale>,
    /// Spot fallback job.
    pub spot_fallback: Option<RawSpotFallback>,
}

/// The `spot_fallback:` section as written (SPEC.md, Configuration).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpotFallback {
    /// The Spot Fleet request (`sfr-…`), or the Spot Auto Scaling group with `source: group`
    /// (in the simulator: a `spot` group's name).
    pub fleet_request_id: Option<String>,
    /// The on-demand Auto Scaling group that covers the shortfall.
    pub on_demand_group: Option<String>,
    /// Capacity units one on-demand instance covers (default 1).
    pub units_per_instance: Option<f64>,
    /// Skip while the fleet's target capacity changed this recently (default 10m).
    pub settle_window: Option<String>,
    /// No scale-in until this long after the on-demand group last grew (default: the
    /// group's own DefaultCooldown, as DescribeAutoScalingGroups reports it; 5m if it reports
    /// none).
    pub scale_in_cooldown: Option<String>,
    /// Scale in only when the shortfall has been that low for this long: Spot "fulfilled
    /// again for a stable window" (default 2m).
    pub stable_window: Option<String>,
    /// `fleet` (AWS/EC2Spot metrics, default) or `group` (a Spot Auto Scaling group: the
    /// shortfall is the instances it cannot get).
    pub source: Option<String>,
}

/// Where the Spot shortfall is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpotSource {
    /// A Spot Fleet request's `AWS/EC2Spot` metrics.
    Fleet,
    /// A Spot Auto Scaling group: desired less in service.
    Group,
}

/// The validated spot-fallback configuration of one cluster.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpotFallbackConfig {
    /// The fleet (or Spot group).
    pub fleet: String,
    /// The on-demand group.
    pub on_demand_group: String,
    /// Capacity units per on-demand instance.
    pub units_per_instance: f64,
    /// See [`RawSpotFallback::settle_window`].
    pub settle_window: Millis,
    /// See [`RawSpotFallback::scale_in_cooldown`]; `None`: the on-demand group's own
    /// DefaultCooldown (5 minutes when the group does not say).
    pub scale_in_cooldown: Option<Millis>,
    /// See [`RawSpotFallback::stable_window`].
    pub stable_window: Millis,
    /// See [`RawSpotFallback::source`].
    pub source: SpotSource,
}

impl SpotFallbackConfig {
    /// Validates the section; errors name the key.
    pub fn from_raw(r: &RawSpotFallback) -> Result<SpotFallbackConfig, String> {
        let need = |v: &Option<String>, key: &str| -> Result<String, String> {
            match v.as_deref().map(str::trim) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(format!("spot_fallback.{key}: required (see docs/spot-fallback.md)")),
            }
        };
        let fleet = need(&r.fleet_request_id, "fleet_request_id")?;
        let on_demand_group = need(&r.on_demand_group, "on_demand_group")?;
        if fleet == on_demand_group {
            return Err("spot_fallback.on_demand_group: must differ from fleet_request_id".into());
        }
        let units_per_instance = r.units_per_instance.unwrap_or(1.0);
        if !(units_per_instance.is_finite() && units_per_instance > 0.0 && units_per_instance <= 1000.0) {
            return Err(format!(
                "spot_fallback.units_per_instance: {units_per_instance} is out of range; allowed above 0 up to 1000"
            ));
        }
        let settle_window = match &r.settle_window {
            Some(t) => dur_in(t, "spot_fallback.settle_window", Millis(0), Millis::mins(60))?,
            None => Millis::mins(10),
        };
        let scale_in_cooldown = match &r.scale_in_cooldown {
            Some(t) => Some(dur_in(t, "spot_fallback.scale_in_cooldown", Millis::mins(1), Millis::mins(60))?),
            None => None,
        };
        let stable_window = match &r.stable_window {
            Some(t) => dur_in(t, "spot_fallback.stable_window", Millis::mins(1), Millis::mins(60))?,
            None => Millis::mins(2),
        };
        let source = match r.source.as_deref() {
            None | Some("fleet") => SpotSource::Fleet,
            Some("group") => SpotSource::Group,
            Some(o) => return Err(format!("spot_fallback.source: `{o}` is not a source; use fleet or group")),
        };
        Ok(SpotFallbackConfig {
            fleet,
            on_demand_group,
            units_per_instance,
            settle_window,
            scale_in_cooldown,
            stable_window,
            source,
        })
    }
}

/// One cluster's validated configuration: its jobs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClusterConfig {
    /// The rebalance job (on unless `enabled: false`).
    pub rebalance: RebalanceConfig,
    /// The spot-fallback job, when configured.
    pub spot_fallback: Option<SpotFallbackConfig>,
    /// The autoscale job, when configured.
    #[serde(skip)]
    pub autoscale: Option<crate::autoscale::AutoscaleConfig>,
}

impl ClusterConfig {
    /// The defaults: rebalance on, nothing else.
    pub fn defaults(env: &EnvSettings) -> Result<ClusterConfig, String> {
        Ok(ClusterConfig { rebalance: RebalanceConfig::from_raw(None, env)?, spot_fallback: None, autoscale: None })
    }
}

/// Drain settings with seed 000's meanings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DrainSettings {
    /// DRAIN_SLEEP_TIME: poll period while an instance drains.
    pub sleep_time: Millis,
    /// DRAIN_TIMEOUT: an instance is returned to ACTIVE after this long at most (halved after
    /// each drained instance, as seed 000 does).
    pub timeout: Millis,
    /// DRAIN_MAX_INSTANCES: instances drained per run.
    pub max_instances: u32,
    /// REBALANCE_MAX_RETRY: re-evaluations (each may drain again) per run, enforced.
    pub max_retry: u32,
}

/// The validated rebalance configuration of one cluster.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RebalanceConfig {
    /// Job on.
    pub enabled: bool,
    /// Method.
    pub method: Method,
    /// Measure deciding whether to act.
    pub measure: Measure,
    /// Threshold, percent.
    pub cov_percent: f64,
    /// Which tasks count.
    pub counting: Counting,
    /// Restarts allowed per run.
    pub max_restarts_per_run: u32,
    /// Wait for replacements at most this long.
    pub wait_timeout: Millis,
    /// Never touched.
    pub exclude_services: Vec<String>,
    /// Drain settings.
    pub drain: DrainSettings,
}

/// Seed 000's environment variables, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSettings {
    /// DRAIN_SLEEP_TIME seconds (10–30).
    pub drain_sleep_time: Option<u64>,
    /// DRAIN_TIMEOUT seconds (0–60).
    pub drain_timeout: Option<u64>,
    /// DRAIN_MAX_INSTANCES (0–3).
    pub drain_max_instances: Option<u32>,
    /// REBALANCE_MAX_RETRY (0–5).
    pub rebalance_max_retry: Option<u32>,
    /// COV_PERCENT (0–100).
    pub cov_percent: Option<f64>,
}

fn ranged<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    lo: T,
    hi: T,
    unit: &str,
) -> Result<Option<T>, String> {
    let Some(raw) = lookup(name) else { return Ok(None) };
    // The value itself is never echoed: nothing from the environment reaches an error.
    let v: T = raw.trim().parse().map_err(|_| {
        format!("environment variable {name} is not a number; set it to a value from {lo} to {hi}{unit}")
    })?;
    if v < lo || v > hi {
        return Err(format!(
            "environment variable {name} is out of range; allowed {lo} to {hi}{unit} (values are never clamped)"
        ));
    }
    Ok(Some(v))
}

impl EnvSettings {
    /// Reads and validates the variables through `lookup` (e.g. `std::env::var(..).ok()`).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<EnvSettings, String> {
        Ok(EnvSettings {
            drain_sleep_time: ranged(lookup, "DRAIN_SLEEP_TIME", 10, 30, " seconds")?,
            drain_timeout: ranged(lookup, "DRAIN_TIMEOUT", 0, 60, " seconds")?,
            drain_max_instances: ranged(lookup, "DRAIN_MAX_INSTANCES", 0, 3, "")?,
            rebalance_max_retry: ranged(lookup, "REBALANCE_MAX_RETRY", 0, 5, "")?,
            cov_percent: ranged(lookup, "COV_PERCENT", 0.0, 100.0, " percent")?,
        })
    }
}

fn dur_in(text: &str, key: &str, lo: Millis, hi: Millis) -> Result<Millis, String> {
    let d = parse_duration(text).map_err(|e| format!("{key}: {e}"))?;
    if d < lo || d > hi {
        return Err(format!("{key}: {d} is out of range; allowed {lo} to {hi}"));
    }
    Ok(d)
}

impl RebalanceConfig {
    /// The defaults (`controller.config: {}`): on, stop method, count measure, COV 25%.
    pub fn defaults() -> RebalanceConfig {
        RebalanceConfig {
            enabled: true,
            method: Method::Stop,
            measure: Measure::Count,
            cov_percent: 25.0,
            counting: Counting::default(),
            max_restarts_per_run: 50,
            wait_timeout: Millis::mins(5),
            exclude_services: vec![],
            drain: DrainSettings {
                sleep_time: Millis::secs(30),
                timeout: Millis::secs(45),
                max_instances: 1,
                max_retry: 3,
            },
        }
    }

    /// Validates the raw section; the file's values win over the environment, which wins over
    /// the defaults. Errors name the key (`rebalance.drain.timeout: …`).
    pub fn from_raw(raw: Option<&RawRebalance>, env: &EnvSettings) -> Result<RebalanceConfig, String> {
        let mut c = RebalanceConfig::defaults();
        if let Some(v) = env.cov_percent {
            c.cov_percent = v;
        }
        if let Some(v) = env.drain_sleep_time {
            c.drain.sleep_time = Millis::secs(v);
        }
        if let Some(v) = env.drain_timeout {
            c.drain.timeout = Millis::secs(v);
        }
        if let Some(v) = env.drain_max_instances {
            c.drain.max_instances = v;
        }
        if let Some(v) = env.rebalance_max_retry {
            c.drain.max_retry = v;
        }
        let Some(r) = raw else { return Ok(c) };
        if let Some(e) = r.enabled {
            c.enabled = e;
        }
        if let Some(m) = &r.method {
            c.method = match m.as_str() {
                "stop" => Method::Stop,
                "drain" => Method::Drain,
                "redeploy" => Method::Redeploy,
                o => return Err(format!("rebalance.method: `{o}` is not a method; use stop, drain or redeploy")),
            };
        }
        if let Some(m) = &r.metric {
            c.measure = m.parse().map_err(|e| format!("rebalance.metric: {e}"))?;
        }
        if let Some(v) = r.cov_percent {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("rebalance.cov_percent: {v} is out of range; allowed 0 to 100"));
            }
            c.cov_percent = v;
        }
        c.counting.daemons = r.include_daemons.unwrap_or(false);
        c.counting.standalone = r.include_standalone.unwrap_or(false);
        if let Some(v) = r.max_restarts_per_run {
            c.max_restarts_per_run = v;
        }
        if let Some(w) = &r.wait_timeout {
            c.wait_timeout = dur_in(w, "rebalance.wait_timeout", Millis::secs(30), Millis::mins(14))?;
        }
        if let Some(x) = &r.exclude_services {
            c.exclude_services = x.clone();
        }
        if let Some(d) = &r.drain {
            if let Some(s) = &d.sleep_time {
                c.drain.sleep_time = dur_in(s, "rebalance.drain.sleep_time", Millis::secs(10), Millis::secs(30))?;
            }
            if let Some(s) = &d.timeout {
                c.drain.timeout = dur_in(s, "rebalance.drain.timeout", Millis(0), Millis::secs(60))?;
            }
            if let Some(v) = d.max_instances {
                if v > 3 {
                    return Err(format!("rebalance.drain.max_instances: {v} is out of range; allowed 0 to 3"));
                }
                c.drain.max_instances = v;
            }
            if let Some(v) = d.max_retry {
                if v > 5 {
                    return Err(format!("rebalance.drain.max_retry: {v} is out of range; allowed 0 to 5"));
                }
                c.drain.max_retry = v;
            }
        }
        Ok(c)
    }
}

/// Validates a cluster's whole entry. Sections for jobs this build does not run are refused
/// with a clear error rather than silently ignored.
pub fn validate_cluster(raw: &RawClusterConfig, env: &EnvSettings) -> Result<ClusterConfig, String> {
    let c = ClusterConfig {
        rebalance: RebalanceConfig::from_raw(raw.rebalance.as_ref(), env)?,
        spot_fallback: raw.spot_fallback.as_ref().map(SpotFallbackConfig::from_raw).transpose()?,
        autoscale: match &raw.autoscale {
            Some(a) => crate::autoscale::AutoscaleConfig::from_raw(a)?,
            None => None,
        },
    };
    // Two jobs sizing one group would undo each other: spot-fallback grows its on-demand group
    // while Spot is short, and autoscale would consolidate those very instances away.
    if let (Some(s), Some(a)) = (&c.spot_fallback, &c.autoscale)
        && s.on_demand_group == a.group
    {
        return Err(format!(
            "autoscale.autoscale_group: `{}` is also spot_fallback.on_demand_group, and two jobs must not size one \
             group; point autoscale at the group that runs the cluster's regular (Spot) capacity and leave the \
             on-demand backfill group to spot-fallback",
            a.group
        ));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<EnvSettings, String> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        EnvSettings::from_lookup(&move |k: &str| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn env_ranges_are_enforced_not_clamped() {
        assert!(env(&[]).unwrap() == EnvSettings::default());
        let e = env(&[("DRAIN_TIMEOUT", "45"), ("COV_PERCENT", "30")]).unwrap();
        assert_eq!(e.drain_timeout, Some(45));
        let err = env(&[("DRAIN_TIMEOUT", "61")]).unwrap_err();
        assert!(err.contains("DRAIN_TIMEOUT") && err.contains("0 to 60"), "{err}");
        let err = env(&[("DRAIN_SLEEP_TIME", "5")]).unwrap_err();
        assert!(err.contains("DRAIN_SLEEP_TIME") && err.contains("10 to 30"), "{err}");
        let err = env(&[("DRAIN_MAX_INSTANCES", "four")]).unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        assert!(env(&[("REBALANCE_MAX_RETRY", "6")]).is_err());
        assert!(env(&[("COV_PERCENT", "101")]).is_err());
        assert!(env(&[("COV_PERCENT", "-1")]).is_err());
    }

    #[test]
    fn file_over_env_over_defaults() {
        let e = env(&[("COV_PERCENT", "30"), ("DRAIN_MAX_INSTANCES", "2")]).unwrap();
        let c = RebalanceConfig::from_raw(None, &e).unwrap();
        assert_eq!(c.cov_percent, 30.0);
        assert_eq!(c.drain.max_instances, 2);
        let raw = RawRebalance { cov_percent: Some(10.0), method: Some("drain".into()), ..Default::default() };
        let c = RebalanceConfig::from_raw(Some(&raw), &e).unwrap();
        assert_eq!(c.cov_percent, 10.0);
        assert_eq!(c.method, Method::Drain);
        let bad = RawRebalance { method: Some("shuffle".into()), ..Default::default() };
        assert!(RebalanceConfig::from_raw(Some(&bad), &e).unwrap_err().starts_with("rebalance.method"));
        let bad = RawRebalance {
            drain: Some(RawDrain { timeout: Some("2m".into()), ..Default::default() }),
            ..Default::default()
        };
        assert!(RebalanceConfig::from_raw(Some(&bad), &e).unwrap_err().contains("rebalance.drain.timeout"));
    }
}
