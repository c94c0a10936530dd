//! `status`, `plan`, `run` and `iam-policy` against real clusters through the AWS API.
//!
//! Which clusters: `--cluster NAME`, else every cluster the configuration names plus, when
//! it has a `discover:` section (or when there is no configuration at all), every ACTIVE
//! cluster tagged `ballast:enabled=true`. Each cluster is handled on its own: one that fails
//! is named on stderr and the others go on (exit 3, or 1 when every cluster failed).

use std::collections::{BTreeMap, BTreeSet};

use ballast_aws::iam::{self, PolicyFor};
use ballast_aws::{AwsBackend, AwsOptions};
use ballast_core::backend::Backend;
use ballast_core::config::ClusterConfig;
use ballast_core::duration::{Millis, parse_duration};
use serde_json::{Value, json};

use crate::cli::{ClusterArgs, Global, IamPolicyArgs, Job, RunArgs};
use crate::config_file::{self, ClustersError};
use crate::error::{AppError, Result};
use crate::render;
use ballast_core::view::Jobs;
use ballast_exec::orchestrate::{self, Cause};

/// The clusters to act on, each with its configuration, and the connection.
struct Targets {
    backend: AwsBackend,
    clusters: Vec<(String, ClusterConfig)>,
}

fn defaults() -> Result<ClusterConfig> {
    let env = config_file::env_settings()?;
    ClusterConfig::defaults(&env).map_err(AppError::Input)
}

fn targets(cluster: Option<&str>, g: &Global) -> Result<Targets> {
    let cfg = super::load_config(g.config.as_deref())?;
    let opts = AwsOptions { region: g.region.clone(), endpoint_url: g.endpoint_url.clone() };
    let mut backend = ballast_aws::connect(&opts).map_err(AppError::Input)?;
    let mut clusters: BTreeMap<String, ClusterConfig> = BTreeMap::new();
    if let Some(name) = cluster {
        // A cluster named on the command line is acted on, configured or not.
        let c = cfg.as_ref().and_then(|c| c.clusters.get(name).cloned()).map_or_else(defaults, Ok)?;
        clusters.insert(name.to_string(), c);
    } else {
        clusters = config_file::configured_clusters(cfg.as_ref(), None, &mut |k, v| {
            backend.discover(k, v).map_err(|e| e.to_string())
        })
        .map_err(|e| match e {
            ClustersError::Input(m) => AppError::Input(m),
            ClustersError::Discovery(m) => AppError::Runtime(m),
        })?;
        if clusters.is_empty() {
            let tag = cfg.and_then(|c| c.discover).map_or(config_file::DEFAULT_TAG.to_string(), |d| d.tag);
            return Err(AppError::Input(format!(
                "no cluster to act on: pass --cluster NAME, name clusters in ballast.yaml, or tag clusters {tag}=true"
            )));
        }
    }
    for (name, c) in &clusters {
        refuse_unmeasured(name, c)?;
    }
    Ok(Targets { backend, clusters: clusters.into_iter().collect() })
}

/// The AWS backend reads reservations, not what tasks use: `cpu-utilized` and
/// `memory-utilized` would be made-up figures there (issue [10]), so they are refused.
pub fn refuse_unmeasured(name: &str, c: &ClusterConfig) -> Result<()> {
    use ballast_core::metrics::Measure;
    if matches!(c.rebalance.measure, Measure::CpuUtilized | Measure::MemoryUtilized) && c.rebalance.enabled {
        return Err(AppError::Input(format!(
            "clusters.{name}.rebalance.metric: {} needs what each task uses, which ballast does not read on AWS (it would need Container Insights' per-task metrics); use cpu or memory (the reservations ECS places by), or count; the simulator models utilization",
            c.rebalance.measure.name()
        )));
    }
    Ok(())
}

/// A command that failed before any cluster was read: with `--json`, still one JSON
/// document on stdout, with the error in `errors`.
fn failed_early(json: bool, e: AppError) -> Result<()> {
    if json {
        let v = render::document(vec![], json!([{"cluster": null, "error": e.to_string()}]), &BTreeMap::new());
        crate::outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    }
    Err(e)
}

/// Runs `f` for each cluster; returns the successes and maps failures to exit 1 or 3.
fn each<T>(
    t: &mut Targets,
    mut f: impl FnMut(&mut AwsBackend, &str, &ClusterConfig) -> std::result::Result<T, String>,
) -> (Vec<T>, Vec<(String, String)>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (name, cfg) in &t.clusters {
        match f(&mut t.backend, name, cfg) {
            Ok(v) => ok.push(v),
            // Named once, in the command's closing error (and in `errors` with --json).
            Err(e) => failed.push((name.clone(), e)),
        }
    }
    (ok, failed)
}

fn finish(total: usize, failed: &[(String, String)]) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = failed.iter().map(|(c, e)| format!("cluster {c}: {e}")).collect();
    if failed.len() == total {
        Err(AppError::Runtime(names.join("; ")))
    } else {
        Err(AppError::Partial(format!("{} of {total} cluster(s) failed: {}", failed.len(), names.join("; "))))
    }
}

fn errors_json(failed: &[(String, String)]) -> Value {
    Value::Array(failed.iter().map(|(c, e)| json!({"cluster": c, "error": e})).collect())
}

/// `ballast status` on AWS.
pub fn status(a: &ClusterArgs, g: &Global) -> Result<()> {
    let mut t = match targets(a.cluster.as_deref(), g) {
        Ok(t) => t,
        Err(e) => return failed_early(a.json, e),
    };
    let total = t.clusters.len();
    let (snaps, failed) = each(&mut t, |b, name, cfg| {
        let snap = b.snapshot(name).map_err(|e| e.to_string())?;
        // The groups the cluster's jobs act on (DescribeAutoScalingGroups each).
        let mut groups = Vec::new();
        for gname in ballast_core::view::Reads::of(cfg, Jobs::ALL.of(cfg)).groups {
            match b.group(&gname) {
                Ok(gi) => groups.push(gi),
                Err(ballast_core::backend::BackendError::NotFound { .. }) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok((snap, groups))
    });
    if a.json {
        let clusters: Vec<Value> = snaps
            .iter()
            .map(|(s, gs)| {
                let mut v = render::status_json(s);
                v["groups"] = render::groups_json(gs);
                v
            })
            .collect();
        let v = render::document(clusters, errors_json(&failed), &t.backend.api_calls());
        crate::outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        for (s, gs) in &snaps {
            crate::out!("{}{}", render::status_text(s), render::groups_text(gs));
        }
    }
    finish(total, &failed)
}

/// `ballast plan` on AWS: a dry run of the jobs; changes nothing.
pub fn plan(a: &ClusterArgs, g: &Global) -> Result<()> {
    execute(a, g, Jobs::ALL, true, Millis::mins(14))
}

/// `ballast run` on AWS.
pub fn run(a: &RunArgs, g: &Global) -> Result<()> {
    let deadline = match parse_duration(&a.deadline) {
        Ok(d) => d,
        Err(e) => return failed_early(a.target.json, AppError::Input(format!("--deadline: {e}"))),
    };
    execute(&a.target, g, jobs(a.job), a.dry_run, deadline)
}

/// The jobs `--job` names.
pub fn jobs(j: Job) -> Jobs {
    match j {
        Job::Rebalance => Jobs { rebalance: true, ..Jobs::NONE },
        Job::Autoscale => Jobs { autoscale: true, ..Jobs::NONE },
        Job::SpotFallback => Jobs { spot_fallback: true, ..Jobs::NONE },
        Job::All => Jobs::ALL,
    }
}

fn execute(a: &ClusterArgs, g: &Global, jobs: Jobs, dry_run: bool, budget: Millis) -> Result<()> {
    let mut t = match targets(a.cluster.as_deref(), g) {
        Ok(t) => t,
        Err(e) => return failed_early(a.json, e),
    };
    let total = t.clusters.len();
    let end = t.backend.now() + budget;
    let (runs, failed) = each(&mut t, |b, name, cfg| {
        let left = end - b.now();
        let cause = Cause { holder: Some(ballast_exec::lease::holder_id("ballast-cli", b.now())), ..Cause::default() };
        let r =
            orchestrate::run_cluster(b, name, cfg, jobs, &cause, dry_run, left, !a.json).map_err(|e| e.to_string())?;
        if !a.json {
            crate::out!("{}", render::run_text(&r));
        }
        Ok(r)
    });
    if a.json {
        let outs: Vec<Value> = runs.iter().map(render::run_json).collect();
        let v = render::document(outs, errors_json(&failed), &t.backend.api_calls());
        crate::outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    }
    finish(total, &failed)
}

/// `ballast iam-policy`: needs no AWS connection.
pub fn iam_policy(a: &IamPolicyArgs, g: &Global) -> Result<()> {
    if let Some(acct) = &a.account {
        iam::check_account(acct).map_err(AppError::Input)?;
    }
    if let Some(r) = &g.region {
        iam::check_region(r).map_err(AppError::Input)?;
    }
    let cfg = super::load_config(g.config.as_deref())?;
    let p = policy_for(cfg.as_ref(), a.cluster.as_deref(), g.region.clone(), a.account.clone());
    crate::outln!("{}", serde_json::to_string_pretty(&iam::policy(&p)).expect("json"));
    Ok(())
}

/// What the IAM policy of a configuration (or of none: clusters found by tag) covers: the
/// clusters, the groups its jobs act on, and the needs of its jobs. `only` narrows it to one
/// cluster.
pub fn policy_for(
    cfg: Option<&crate::config_file::Config>,
    only: Option<&str>,
    region: Option<String>,
    account: Option<String>,
) -> PolicyFor {
    let cfg = cfg.cloned();
    let mut needs = BTreeSet::new();
    let clusters = match (only, &cfg) {
        (Some(c), _) => Some(vec![c.to_string()]),
        (None, Some(cfg)) if cfg.discover.is_none() => Some(cfg.clusters.keys().cloned().collect()),
        _ => None,
    };
    if clusters.is_none() {
        needs.insert(ballast_aws::calls::Need::Discover);
    }
    let entry = |name: &str| cfg.as_ref().and_then(|c| c.clusters.get(name));
    let enabled = |name: &str| entry(name).is_none_or(|c| c.rebalance.enabled);
    let rebalancing = match &clusters {
        Some(names) => names.iter().any(|n| enabled(n)),
        None => true,
    };
    if rebalancing {
        needs.insert(ballast_aws::calls::Need::Rebalance);
    }
    let spot: Vec<&ballast_core::config::SpotFallbackConfig> = match &clusters {
        Some(names) => names.iter().filter_map(|n| entry(n).and_then(|c| c.spot_fallback.as_ref())).collect(),
        None => cfg.iter().flat_map(|c| c.clusters.values().filter_map(|c| c.spot_fallback.as_ref())).collect(),
    };
    let mut groups = Vec::new();
    for s in &spot {
        // Spot fallback drains, marks and takes the run lease: the cluster writes too.
        needs.insert(ballast_aws::calls::Need::Rebalance);
        needs.insert(ballast_aws::calls::Need::Scale);
        groups.push(s.on_demand_group.clone());
        match s.source {
            ballast_core::config::SpotSource::Group => groups.push(s.fleet.clone()),
            // A fleet's shortfall is read from AWS/EC2Spot.
            ballast_core::config::SpotSource::Fleet => {
                needs.insert(ballast_aws::calls::Need::Metrics);
            }
        }
    }
    let autoscale: Vec<&ballast_core::autoscale::AutoscaleConfig> = match &clusters {
        Some(names) => names.iter().filter_map(|n| entry(n).and_then(|c| c.autoscale.as_ref())).collect(),
        None => cfg.iter().flat_map(|c| c.clusters.values().filter_map(|c| c.autoscale.as_ref())).collect(),
    };
    for a in &autoscale {
        // Autoscale updates services, drains and marks instances and takes the run lease.
        needs.insert(ballast_aws::calls::Need::Rebalance);
        needs.insert(ballast_aws::calls::Need::Scale);
        groups.push(a.group.clone());
        let reads_cloudwatch = a
            .services
            .values()
            .any(|s| s.metrics.values().any(|m| matches!(m, ballast_core::autoscale::Source::CloudWatch(_))));
        if reads_cloudwatch {
            needs.insert(ballast_aws::calls::Need::Metrics);
        }
    }
    groups.sort();
    groups.dedup();
    PolicyFor { clusters, groups, region, account, needs, template: false }
}
