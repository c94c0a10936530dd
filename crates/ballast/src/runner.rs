//! One run of the jobs for one cluster, shared by the CLI (`plan`, `run`) and the Lambda
//! handler: the executor over any backend, the rebalance job, and the figures a caller
//! prints, returns or emits as metrics.

use ballast_core::action::Action;
use ballast_core::backend::Backend;
use ballast_core::config::RebalanceConfig;
use ballast_core::duration::Millis;
use ballast_core::metrics;
use ballast_core::model::{InstanceStatus, Snapshot};
use serde_json::{Value, json};

use crate::exec::{Done, Exec};
use crate::jobs::rebalance::{self, Outcome};
use crate::render;

/// What one cluster's run did.
#[derive(Debug, Clone)]
pub struct ClusterRun {
    /// Cluster name.
    pub cluster: String,
    /// Only planned.
    pub dry_run: bool,
    /// The job's outcome (its plan included); `None` when the job is off for the cluster.
    pub outcome: Option<Outcome>,
    /// Actions sent (or, in a dry run, that would be).
    pub actions: Vec<Done>,
    /// The cluster before, when asked for.
    pub before: Option<Snapshot>,
    /// The cluster after a real run.
    pub after: Option<Snapshot>,
    /// The configured measure's COV after a real run, percent.
    pub cov_after: Option<f64>,
}

impl ClusterRun {
    /// Instances set to DRAINING (not in a dry run).
    pub fn drained(&self) -> usize {
        self.count_state(InstanceStatus::Draining)
    }

    /// Instances returned to ACTIVE (not in a dry run).
    pub fn returned(&self) -> usize {
        self.count_state(InstanceStatus::Active)
    }

    fn count_state(&self, want: InstanceStatus) -> usize {
        self.actions
            .iter()
            .filter(|d| !d.dry_run)
            .map(|d| match &d.action {
                Action::SetInstanceState { instance_arns, status, .. } if *status == want => instance_arns.len(),
                _ => 0,
            })
            .sum()
    }

    /// The JSON `plan --json` / `run --json` print for the cluster.
    pub fn to_json(&self, with_outcome: bool) -> Value {
        let Some(outcome) = &self.outcome else {
            return json!({"cluster": self.cluster, "skipped": "rebalance is disabled for this cluster"});
        };
        let mut v =
            json!({"cluster": self.cluster, "dry_run": self.dry_run, "plan": outcome.plan, "actions": self.actions});
        if with_outcome {
            v["outcome"] = json!(outcome);
        }
        if let Some(s) = &self.after {
            v["status_after"] = render::status_json(s);
        }
        v
    }

    /// The run for humans: the plan, what was (or would be) done, the cluster after.
    pub fn to_text(&self) -> String {
        let Some(outcome) = &self.outcome else {
            return format!("cluster {}: rebalance is disabled for this cluster\n", self.cluster);
        };
        let mut out = match &self.before {
            Some(b) => render::plan_text(&outcome.plan, b),
            None => format!("cluster {}: {}\n", self.cluster, outcome.plan.summary),
        };
        for r in &outcome.recovered {
            out.push_str(&format!("  recovered: {r}\n"));
        }
        for d in &self.actions {
            out.push_str(&format!("  {}{}\n", if d.dry_run { "would: " } else { "" }, d.text));
        }
        if let Some(why) = &outcome.stopped_early {
            out.push_str(&format!("  stopped early: {why}\n"));
        }
        if let Some(s) = &self.after {
            out.push_str(&format!("{} restart(s) in {} step(s); now:\n", outcome.restarts, outcome.steps));
            out.push_str(&render::status_text(s));
        }
        out
    }
}

/// Runs the rebalance job once on `cluster` within `budget`; `keep_before` also returns the
/// snapshot the plan was made from (for the text rendering).
pub fn rebalance_cluster(
    backend: &mut dyn Backend,
    cluster: &str,
    cfg: &RebalanceConfig,
    dry_run: bool,
    budget: Millis,
    keep_before: bool,
) -> Result<ClusterRun, String> {
    let mut run = ClusterRun {
        cluster: cluster.to_string(),
        dry_run,
        outcome: None,
        actions: vec![],
        before: None,
        after: None,
        cov_after: None,
    };
    if !cfg.enabled {
        return Ok(run);
    }
    let mut ex = Exec::new(backend, cluster, dry_run, budget);
    if keep_before {
        run.before = Some(ex.snapshot().map_err(|e| e.to_string())?);
    }
    let outcome = rebalance::run(&mut ex, cfg);
    run.actions = std::mem::take(&mut ex.done);
    let outcome = outcome.map_err(|e| e.to_string())?;
    if !dry_run {
        let after = ex.snapshot().map_err(|e| e.to_string())?;
        run.cov_after = Some(metrics::cov(&after, cfg.measure, cfg.counting));
        run.after = Some(after);
    }
    run.outcome = Some(outcome);
    Ok(run)
}
