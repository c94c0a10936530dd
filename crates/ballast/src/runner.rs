//! One run of the jobs for one cluster, shared by the CLI (`plan`, `run`) and the Lambda
//! handler: the executor over any backend, the rebalance job, and the figures a caller
//! prints, returns or emits as metrics.

use ballast_core::action::Action;
use ballast_core::backend::Backend;
use ballast_core::config::ClusterConfig;
use ballast_core::duration::Millis;
use ballast_core::metrics;
use ballast_core::model::{InstanceStatus, Snapshot};
use serde_json::{Value, json};

use crate::exec::{Done, Exec, ExecError};
use crate::jobs::autoscale::{self, AutoscaleOutcome};
use crate::jobs::rebalance::{self, Outcome};
use crate::jobs::spot::{self, SpotOutcome};
use crate::render;

/// What one cluster's run did.
#[derive(Debug, Clone)]
pub struct ClusterRun {
    /// Cluster name.
    pub cluster: String,
    /// Only planned.
    pub dry_run: bool,
    /// The rebalance job's outcome (its plan included); `None` when it did not run.
    pub outcome: Option<Outcome>,
    /// The spot-fallback job's outcome; `None` when it did not run.
    pub spot: Option<SpotOutcome>,
    /// The autoscale job's outcome; `None` when it did not run.
    pub autoscale: Option<AutoscaleOutcome>,
    /// Actions sent (or, in a dry run, that would be).
    pub actions: Vec<Done>,
    /// The cluster before, when asked for.
    pub before: Option<Snapshot>,
    /// The cluster after a real run.
    pub after: Option<Snapshot>,
    /// The configured measure's COV after a real run, percent.
    pub cov_after: Option<f64>,
    /// Why the run changed nothing because another run holds the cluster's lease.
    pub lease_held: Option<String>,
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
        let mut v = json!({"cluster": self.cluster, "dry_run": self.dry_run, "actions": self.actions});
        match &self.outcome {
            Some(o) => {
                v["plan"] = json!(o.plan);
                if with_outcome {
                    v["outcome"] = json!(o);
                }
            }
            None => {
                v["skipped"] = json!("rebalance did not run (disabled for this cluster, or another job was asked for)")
            }
        }
        if let Some(s) = &self.spot {
            v["spot_fallback"] = json!(s);
        }
        if let Some(a) = &self.autoscale {
            v["autoscale"] = json!(a);
        }
        if let Some(w) = &self.lease_held {
            v["lease_held"] = json!(w);
        }
        if let Some(s) = &self.after {
            v["status_after"] = render::status_json(s);
        }
        v
    }

    /// The run for humans: the plan, what was (or would be) done, the cluster after.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(w) = &self.lease_held {
            out.push_str(&format!("cluster {}: nothing done: {w}\n", self.cluster));
        }
        if let Some(s) = &self.spot {
            out.push_str(&format!("cluster {}: spot-fallback: {}\n", self.cluster, s.decision));
        }
        if let Some(a) = &self.autoscale {
            for d in &a.services {
                out.push_str(&format!(
                    "cluster {}: autoscale {}: desired {} -> {}: {}\n",
                    self.cluster, d.service, d.desired, d.new_desired, d.why
                ));
            }
            for r in &a.refused {
                out.push_str(&format!("cluster {}: autoscale refuses {r}\n", self.cluster));
            }
            out.push_str(&format!("cluster {}: autoscale instances: {}\n", self.cluster, a.decision));
        }
        let Some(outcome) = &self.outcome else {
            for d in &self.actions {
                out.push_str(&format!("  {}{}\n", if d.dry_run { "would: " } else { "" }, d.text));
            }
            return out;
        };
        out.push_str(&match &self.before {
            Some(b) => render::plan_text(&outcome.plan, b),
            None => format!("cluster {}: {}\n", self.cluster, outcome.plan.summary),
        });
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

/// Which jobs a run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jobs {
    /// The rebalance job (when enabled for the cluster).
    pub rebalance: bool,
    /// The spot-fallback job (when configured for the cluster).
    pub spot_fallback: bool,
    /// The autoscale job (when configured for the cluster).
    pub autoscale: bool,
}

impl Jobs {
    /// Every configured job.
    pub const ALL: Jobs = Jobs { rebalance: true, spot_fallback: true, autoscale: true };
    /// No job; add the ones wanted.
    pub const NONE: Jobs = Jobs { rebalance: false, spot_fallback: false, autoscale: false };
}

/// What starts the run, and who runs it.
#[derive(Debug, Clone, Default)]
pub struct Cause<'a> {
    /// A Spot interruption warning for this EC2 instance.
    pub spot_warning: Option<&'a str>,
    /// The run lease's holder id (see [`crate::lease`]); `None`: no lease (the simulator's
    /// single controller, or a dry run).
    pub holder: Option<String>,
}

/// Runs the asked jobs once on `cluster` within `budget`: spot-fallback first (capacity is
/// urgent), then autoscale, then rebalance. `keep_before` also returns the snapshot the plan was made from.
#[allow(clippy::too_many_arguments)]
pub fn run_cluster(
    backend: &mut dyn Backend,
    cluster: &str,
    cfg: &ClusterConfig,
    jobs: Jobs,
    cause: &Cause,
    dry_run: bool,
    budget: Millis,
    keep_before: bool,
) -> Result<ClusterRun, String> {
    let mut run = ClusterRun {
        cluster: cluster.to_string(),
        dry_run,
        outcome: None,
        spot: None,
        autoscale: None,
        actions: vec![],
        before: None,
        after: None,
        cov_after: None,
        lease_held: None,
    };
    let rebalance = jobs.rebalance && cfg.rebalance.enabled;
    let spot = cfg.spot_fallback.as_ref().filter(|_| jobs.spot_fallback);
    let scale = cfg.autoscale.as_ref().filter(|_| jobs.autoscale);
    if !rebalance && spot.is_none() && scale.is_none() {
        return Ok(run);
    }
    let mut ex = Exec::new(backend, cluster, dry_run, budget);
    if let Some(h) = cause.holder.clone().filter(|_| !dry_run) {
        ex = ex.with_lease(h);
    }
    let r = jobs_once(&mut ex, &mut run, cfg, rebalance, (spot, scale), cause, keep_before);
    let released = ex.release_lease();
    run.actions.append(&mut ex.done);
    match r {
        Ok(()) => {}
        Err(ExecError::LeaseHeld(why)) => {
            tracing::info!(cluster, "{why}; this run changes nothing");
            run.lease_held = Some(why);
            return Ok(run);
        }
        Err(e) => return Err(e.to_string()),
    }
    released.map_err(|e| format!("releasing the run lease: {e}"))?;
    if !dry_run {
        let after = ex.snapshot().map_err(|e| e.to_string())?;
        run.cov_after = Some(metrics::cov(&after, cfg.rebalance.measure, cfg.rebalance.counting));
        run.after = Some(after);
    }
    Ok(run)
}

fn jobs_once(
    ex: &mut Exec,
    run: &mut ClusterRun,
    cfg: &ClusterConfig,
    rebalance: bool,
    (spot, scale): (
        Option<&ballast_core::config::SpotFallbackConfig>,
        Option<&ballast_core::autoscale::AutoscaleConfig>,
    ),
    cause: &Cause,
    keep_before: bool,
) -> Result<(), ExecError> {
    if keep_before {
        run.before = Some(ex.snapshot()?);
    }
    if let Some(s) = spot {
        let r = spot::run(ex, s, cause.spot_warning);
        run.actions.append(&mut ex.done);
        run.spot = Some(r?);
    }
    if let Some(a) = scale {
        let r = autoscale::run(ex, a);
        run.actions.append(&mut ex.done);
        run.autoscale = Some(r?);
    }
    if rebalance {
        let outcome = rebalance::run(ex, &cfg.rebalance);
        run.actions.append(&mut ex.done);
        run.outcome = Some(outcome?);
    }
    Ok(())
}
