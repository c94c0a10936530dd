//! One run on one cluster, the same for the CLI, the Lambda function and the simulator's
//! ballast policy: read the [`View`] once, let every job decide together
//! ([`ballast_core::jobs::decide`]), then either render the plan (a dry run: the very plan a
//! run carries out) or carry it out ([`crate::execute`]) under the run lease.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError};
use ballast_core::config::ClusterConfig;
use ballast_core::duration::Millis;
use ballast_core::jobs::{self, Budget, Explained};
use ballast_core::metrics;
use ballast_core::model::{InstanceStatus, Snapshot};
use ballast_core::plan::{self, Plan};
use ballast_core::view::{Jobs, Reads, Trigger, View};

use crate::exec::{Done, Exec, ExecError};
use crate::execute::{Outcome, execute};

/// The jobs a trigger runs (of those configured): the schedule runs every job; an instance
/// joining, the rebalance job; a Spot warning or a fleet's capacity alarm, the spot-fallback
/// job. Written once, for the CLI, the Lambda function and the simulator.
pub fn jobs_for(trigger: &Trigger) -> Jobs {
    match trigger {
        Trigger::Scheduled => Jobs::ALL,
        Trigger::InstanceJoined => Jobs { rebalance: true, ..Jobs::NONE },
        Trigger::SpotWarning(_) | Trigger::SpotShortfall => Jobs { spot_fallback: true, ..Jobs::NONE },
    }
}

/// What starts the run, and who runs it.
#[derive(Debug, Clone, Default)]
pub struct Cause {
    /// What woke it.
    pub trigger: Trigger,
    /// The run lease's holder id (see [`crate::lease`]); `None`: no lease (a single
    /// controller, or a dry run).
    pub holder: Option<String>,
}

/// What one cluster's run did.
#[derive(Debug, Clone)]
pub struct ClusterRun {
    /// Cluster name.
    pub cluster: String,
    /// Only planned.
    pub dry_run: bool,
    /// The plan (the dry run shows it; a run carries it out).
    pub plan: Plan,
    /// The jobs' explanations.
    pub explained: Explained,
    /// What carrying the plan out did (`None` in a dry run, or when another run held the
    /// lease).
    pub outcome: Option<Outcome>,
    /// Actions sent (or, in a dry run, that would be), lease calls included.
    pub actions: Vec<Done>,
    /// The cluster the plan was made from, when asked for.
    pub before: Option<Snapshot>,
    /// The cluster after a real run.
    pub after: Option<Snapshot>,
    /// The configured measure's COV after a real run, percent.
    pub cov_after: Option<f64>,
    /// Why the run changed nothing because another run holds the cluster's lease.
    pub lease_held: Option<String>,
    /// When the run began on the backend's clock, seconds: Unix time on AWS, simulated time
    /// since the scenario began in the simulator.
    pub started_at_s: f64,
}

impl ClusterRun {
    fn empty(cluster: &str, dry_run: bool) -> ClusterRun {
        ClusterRun {
            cluster: cluster.into(),
            dry_run,
            plan: Plan::new(cluster),
            explained: Explained::default(),
            outcome: None,
            actions: vec![],
            before: None,
            after: None,
            cov_after: None,
            lease_held: None,
            started_at_s: 0.0,
        }
    }

    /// Task restarts the run caused (predicted, in a dry run).
    pub fn restarts(&self) -> usize {
        self.outcome.as_ref().map_or_else(|| self.plan.restarts(), |o| o.restarts)
    }

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
}

/// Reads the view the jobs decide from: one snapshot, the groups and metrics `Reads` names.
/// A metric that cannot be read is unknown this run (never zero), not a failed run.
pub fn read_view(ex: &mut Exec, cfg: &ClusterConfig, jobs: Jobs, cause: &Cause) -> Result<View, ExecError> {
    let reads = Reads::of(cfg, jobs);
    let snapshot = ex.snapshot()?;
    let mut groups = BTreeMap::new();
    for g in &reads.groups {
        match ex.group(g) {
            Ok(info) => {
                groups.insert(g.clone(), info);
            }
            Err(ExecError::Backend(BackendError::NotFound { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    let mut metrics = BTreeMap::new();
    if !reads.metrics.is_empty() {
        let values = match ex.metrics(&reads.metrics) {
            Ok(v) => v,
            Err(ExecError::Backend(e)) if e != BackendError::Crashed => {
                tracing::warn!(error = %e, "CloudWatch metrics unknown this run");
                vec![None; reads.metrics.len()]
            }
            Err(e) => return Err(e),
        };
        metrics = reads.metrics.iter().cloned().zip(values).collect();
    }
    let mut http = BTreeMap::new();
    for r in &reads.http {
        let body = ex.http(r).map_err(|e| {
            tracing::warn!(url = %ballast_core::autoscale::redact_url(&r.url), error = %e, "HTTP metric unknown this run");
            e.to_string()
        });
        http.insert(r.clone(), body);
    }
    Ok(View {
        snapshot,
        groups,
        metrics,
        http,
        trigger: cause.trigger.clone(),
        holder: cause.holder.clone().unwrap_or_else(|| "(this run)".into()),
    })
}

/// Decides, knowing what else scales the services it changes (Application Auto Scaling:
/// such a service is left alone, with the reason) and the scale-in protection of every task
/// the plan may stop: a snapshot does
/// not show protection (DescribeTasks does not carry it), so after each decision the live
/// tasks of the services whose tasks it moves, not read yet, are read (GetTaskProtection, 10
/// a call) and, if any of them is protected, the jobs decide again, never choosing a
/// protected task. Bounded by the number of services; only the services a plan touches cost
/// calls.
pub fn decide_protected(
    ex: &mut Exec,
    view: &mut View,
    cfg: &ClusterConfig,
    jobs: Jobs,
) -> Result<(Plan, Explained), ExecError> {
    let budget = Budget { restarts: cfg.rebalance.max_restarts_per_run };
    let mut read: BTreeSet<String> = BTreeSet::new();
    let mut scaling_read: BTreeSet<String> = BTreeSet::new();
    loop {
        let (plan, explained) = jobs::decide(view, cfg, jobs, &budget);
        // Services whose desired count the plan changes: is anything else scaling them
        // (Application Auto Scaling)? A surge or an autoscale step would fight it.
        let changed: Vec<String> = plan
            .steps
            .iter()
            .flat_map(|s| s.acts())
            .filter_map(|a| match a {
                plan::Act::Send {
                    action: Action::SetServiceDesired { service, .. } | Action::ForceNewDeployment { service, .. },
                } => Some(service.clone()),
                _ => None,
            })
            .filter(|s| !scaling_read.contains(s))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !changed.is_empty() {
            let found = ex.scaled_by(&changed)?;
            scaling_read.extend(changed);
            if !found.is_empty() {
                for svc in view.snapshot.services.iter_mut() {
                    if let Some(by) = found.get(&svc.name) {
                        svc.scaled_by.extend(by.iter().cloned());
                    }
                }
                continue;
            }
        }
        let touched: BTreeSet<String> = plan
            .steps
            .iter()
            .filter(|s| !s.moves.is_empty())
            .filter_map(|s| s.service.clone())
            .filter(|s| !read.contains(s))
            .collect();
        if touched.is_empty() {
            return Ok((plan, explained));
        }
        let arns: Vec<String> = view
            .snapshot
            .tasks
            .iter()
            .filter(|t| t.is_live() && t.service.as_ref().is_some_and(|s| touched.contains(s)))
            .map(|t| t.arn.clone())
            .collect();
        let p = ex.task_protection(&arns)?;
        let mut found = false;
        for t in view.snapshot.tasks.iter_mut() {
            if p.get(&t.arn).is_some_and(|p| p.enabled) && !t.protected {
                t.protected = true;
                found = true;
            }
        }
        read.extend(touched);
        if !found {
            return Ok((plan, explained));
        }
    }
}

/// Runs the asked `jobs` once on `cluster` within `budget`. `keep_before` also returns the
/// snapshot the plan was made from. A run another run's lease blocks changes nothing and says
/// so; a killed process (the crash matrix) is an error.
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
) -> Result<ClusterRun, ExecError> {
    let mut run = ClusterRun::empty(cluster, dry_run);
    let jobs = jobs.of(cfg);
    if !jobs.any() {
        return Ok(run);
    }
    let mut ex = Exec::new(backend, cluster, dry_run, budget);
    run.started_at_s = ex.started.as_secs_f64();
    if let Some(h) = cause.holder.clone().filter(|_| !dry_run) {
        ex = ex.with_lease(h);
    }
    let decided = read_view(&mut ex, cfg, jobs, cause).and_then(|mut view| {
        let (plan, explained) = decide_protected(&mut ex, &mut view, cfg, jobs)?;
        Ok((view, plan, explained))
    });
    let (view, plan, explained) = match decided {
        Ok(v) => v,
        Err(e) => {
            run.actions.append(&mut ex.done);
            return Err(e);
        }
    };
    run.plan = plan;
    run.explained = explained;
    if keep_before {
        run.before = Some(view.snapshot.clone());
    }
    if dry_run {
        let at_s = (view.now() - ex.started).as_secs_f64();
        run.actions = plan::render(&run.plan, &view.snapshot)
            .into_iter()
            .map(|action| Done { at_s, text: action.to_string(), action, dry_run: true })
            .collect();
        return Ok(run);
    }
    let r = execute(&mut ex, &run.plan, &view);
    if let Err(e) = &r
        && e.is_crash()
    {
        return Err(e.clone());
    }
    let released = ex.release_lease();
    run.actions.append(&mut ex.done);
    match r {
        Ok(o) => run.outcome = Some(o),
        Err(ExecError::LeaseHeld(why)) => {
            tracing::info!(cluster, "{why}; this run changes nothing");
            run.lease_held = Some(why);
            return Ok(run);
        }
        Err(e) => return Err(e),
    }
    released?;
    if !run.plan.steps.is_empty() {
        let after = ex.snapshot()?;
        run.cov_after = Some(metrics::cov(&after, cfg.rebalance.measure, cfg.rebalance.counting));
        run.after = Some(after);
    } else {
        run.cov_after = Some(metrics::cov(&view.snapshot, cfg.rebalance.measure, cfg.rebalance.counting));
        run.after = Some(view.snapshot);
    }
    Ok(run)
}
