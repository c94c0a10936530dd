//! The rebalance job: recover what an interrupted run left, plan, then carry out the plan
//! one step at a time, re-planning from a fresh snapshot before every disruptive step.
//!
//! Safety rules (docs/rebalance.md):
//! - make before break: a surge raises desired, waits for the new tasks to be healthy, then
//!   lowers it with scale-in protection on every task but the chosen victims;
//! - a service is never taken below its minimumHealthyPercent: direct stops only within it;
//! - an instance ballast drains carries the `ballast.drained-by` attribute; ballast returns it
//!   to ACTIVE when the drain has served its purpose or timed out, on any error, and (after a
//!   crash) in the next run; it never touches an instance drained by anyone else;
//! - a surged service carries the `ballast:surge` tag with its desired count until the surge
//!   ends; the next run restores it if the run that set it died;
//! - the run's limits: restarts per run, instances drained per run, and the deadline.

use std::collections::BTreeSet;

use ballast_core::action::Action;
use ballast_core::backend::BackendError;
use ballast_core::config::{Method, RebalanceConfig};
use ballast_core::duration::Millis;
use ballast_core::model::{InstanceStatus, Snapshot, attr};
use ballast_core::planner::{self, Mechanism, Plan, ServicePlan, Verdict};
use serde::Serialize;

use crate::exec::{Exec, ExecError};
use ballast_core::model::short_id as short;

/// The tag a surged service carries (value: its desired count before the surge).
pub const SURGE_TAG: &str = "ballast:surge";
/// The value of the drain ownership attribute.
pub const OWNER: &str = "ballast";
/// Steps (surge rounds, stops, drains, redeploys) per run at most.
pub const MAX_STEPS: usize = 60;

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The plan made at the start of the run.
    pub plan: Plan,
    /// Steps carried out.
    pub steps: usize,
    /// Task restarts caused.
    pub restarts: usize,
    /// Leftovers of interrupted runs that were repaired.
    pub recovered: Vec<String>,
    /// Why the run ended before the plan was done, if it did.
    pub stopped_early: Option<String>,
}

/// Runs the job once.
pub fn run(ex: &mut Exec, cfg: &RebalanceConfig) -> Result<Outcome, ExecError> {
    let snap = ex.snapshot()?;
    let recovered = recover(ex, &snap)?;
    let snap = if recovered.is_empty() || ex.dry_run { snap } else { ex.snapshot()? };
    let plan = planner::plan(&snap, cfg);
    let mut out = Outcome { plan: plan.clone(), steps: 0, restarts: 0, recovered, stopped_early: None };
    if plan.verdict != Verdict::Act {
        return Ok(out);
    }
    if ex.dry_run {
        for step in &plan.services {
            outline(ex, step)?;
        }
        out.steps = plan.services.len();
        out.restarts = plan.restarts();
        return Ok(out);
    }
    let r = match cfg.method {
        Method::Stop => run_moves(ex, cfg, &mut out),
        Method::Drain => run_drains(ex, cfg, &mut out),
        Method::Redeploy => run_redeploys(ex, cfg, &mut out),
    };
    match r {
        Ok(()) => Ok(out),
        Err(ExecError::Deadline(why)) => {
            out.stopped_early = Some(why);
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

/// Repairs what an interrupted run of ballast left: its drained instances go back to ACTIVE
/// (the mark is removed one run later, so the ACTIVE event is never taken for a join), and
/// surged services go back to the desired count in their tag.
pub fn recover(ex: &mut Exec, snap: &Snapshot) -> Result<Vec<String>, ExecError> {
    let mut notes = Vec::new();
    for inst in snap.instances.iter().filter(|i| i.attr(attr::BALLAST_DRAIN) == Some(OWNER)) {
        if inst.status == InstanceStatus::Draining {
            ex.apply(Action::SetInstanceState {
                instance_arns: vec![inst.arn.clone()],
                status: InstanceStatus::Active,
                reason: "returning an instance ballast drained (an earlier run was interrupted)".into(),
            })?;
            notes.push(format!("returned {} to ACTIVE", inst.ec2_instance_id));
        } else {
            ex.apply(Action::DeleteAttribute { instance_arn: inst.arn.clone(), name: attr::BALLAST_DRAIN.into() })?;
        }
    }
    for svc in &snap.services {
        let Some(v) = svc.tags.get(SURGE_TAG) else { continue };
        if let Ok(orig) = v.parse::<u32>()
            && svc.desired > orig
        {
            ex.apply(Action::SetServiceDesired {
                service: svc.name.clone(),
                desired: orig,
                reason: "ending a surge an earlier run left".into(),
            })?;
            notes.push(format!("restored {} to desired {orig}", svc.name));
        }
        ex.apply(Action::UntagService { service: svc.name.clone(), key: SURGE_TAG.into() })?;
    }
    Ok(notes)
}

/// Records (dry run) the actions a step would take, without the waits between them.
fn outline(ex: &mut Exec, step: &ServicePlan) -> Result<(), ExecError> {
    match &step.mechanism {
        Mechanism::Surge { from, to } => {
            ex.apply(Action::TagService {
                service: step.service.clone(),
                key: SURGE_TAG.into(),
                value: from.to_string(),
            })?;
            ex.apply(Action::SetServiceDesired {
                service: step.service.clone(),
                desired: *to,
                reason: step.reason.clone(),
            })?;
            ex.apply(Action::SetServiceDesired {
                service: step.service.clone(),
                desired: *from,
                reason: format!(
                    "scale in; ECS stops {}",
                    list(&step.moves.iter().map(|m| m.task_arn.clone()).collect::<Vec<_>>())
                ),
            })?;
            ex.apply(Action::UntagService { service: step.service.clone(), key: SURGE_TAG.into() })
        }
        Mechanism::Stop => {
            for m in &step.moves {
                ex.apply(Action::StopTask {
                    task_arn: m.task_arn.clone(),
                    reason: format!("ballast: rebalance to {}", short(&m.to)),
                })?;
            }
            Ok(())
        }
        Mechanism::Drain { instance } => {
            ex.apply(Action::PutAttribute {
                instance_arn: instance.clone(),
                name: attr::BALLAST_DRAIN.into(),
                value: OWNER.into(),
            })?;
            ex.apply(Action::SetInstanceState {
                instance_arns: vec![instance.clone()],
                status: InstanceStatus::Draining,
                reason: step.reason.clone(),
            })?;
            ex.apply(Action::SetInstanceState {
                instance_arns: vec![instance.clone()],
                status: InstanceStatus::Active,
                reason: "drain done".into(),
            })
        }
        Mechanism::Redeploy => {
            ex.apply(Action::ForceNewDeployment { service: step.service.clone(), reason: step.reason.clone() })
        }
    }
}

/// Task ids for a log line: the first five, then how many more.
fn list(arns: &[String]) -> String {
    let mut s: Vec<String> = arns.iter().take(5).map(|a| short(a).to_string()).collect();
    if arns.len() > 5 {
        s.push(format!("and {} more", arns.len() - 5));
    }
    s.join(", ")
}

fn run_moves(ex: &mut Exec, cfg: &RebalanceConfig, out: &mut Outcome) -> Result<(), ExecError> {
    let mut budget = cfg.max_restarts_per_run as usize;
    let mut c = cfg.clone();
    for _ in 0..MAX_STEPS {
        if budget == 0 {
            out.stopped_early = Some("the run's restart limit is reached".into());
            break;
        }
        c.max_restarts_per_run = budget as u32;
        let snap = ex.snapshot()?;
        let p = planner::plan_next(&snap, &c);
        if p.verdict != Verdict::Act {
            break;
        }
        let step = &p.services[0];
        let moved = match step.mechanism {
            Mechanism::Surge { .. } => surge(ex, cfg, &snap, step)?,
            Mechanism::Stop => stops(ex, cfg, step)?,
            _ => 0,
        };
        if moved == 0 {
            out.stopped_early = Some(format!("a step for {} moved nothing; left for the next run", step.service));
            break;
        }
        out.steps += 1;
        out.restarts += moved;
        budget = budget.saturating_sub(moved);
    }
    Ok(())
}

fn live_arns(snap: &Snapshot, service: &str) -> BTreeSet<String> {
    snap.service_tasks(service).map(|t| t.arn.clone()).collect()
}

/// Make before break: surge, wait, protect all but the victims, scale in, release.
fn surge(ex: &mut Exec, cfg: &RebalanceConfig, snap: &Snapshot, step: &ServicePlan) -> Result<usize, ExecError> {
    let Mechanism::Surge { from, to } = step.mechanism else { return Ok(0) };
    let name = step.service.clone();
    ex.require(cfg.wait_timeout + cfg.wait_timeout + Millis::mins(1), &format!("a surge of {name}"))?;
    let before = live_arns(snap, &name);
    ex.apply(Action::TagService { service: name.clone(), key: SURGE_TAG.into(), value: from.to_string() })?;
    match surge_steps(ex, cfg, &name, from, to, &before) {
        Err(e) if !e.is_crash() => {
            // Leave the service as it was found: back to its desired count, tag removed.
            let _ = ex.apply(Action::SetServiceDesired {
                service: name.clone(),
                desired: from,
                reason: format!("abandoning the surge: {e}"),
            });
            let _ = ex.apply(Action::UntagService { service: name, key: SURGE_TAG.into() });
            Err(e)
        }
        r => r,
    }
}

fn surge_steps(
    ex: &mut Exec,
    cfg: &RebalanceConfig,
    name: &str,
    from: u32,
    to: u32,
    before: &BTreeSet<String>,
) -> Result<usize, ExecError> {
    let k = (to - from) as usize;
    ex.apply(Action::SetServiceDesired {
        service: name.into(),
        desired: to,
        reason: format!("ballast: surge by {k} so that replacements start before anything stops"),
    })?;
    let start = ex.now();
    let (snap, new) = loop {
        ex.sleep(Millis::secs(10))?;
        let s = ex.snapshot()?;
        let new: Vec<String> =
            s.service_tasks(name).filter(|t| !before.contains(&t.arn)).map(|t| t.arn.clone()).collect();
        let healthy = s.service_tasks(name).filter(|t| new.contains(&t.arn) && t.healthy).count();
        if healthy >= k {
            break (s, new);
        }
        if ex.now() - start > cfg.wait_timeout {
            ex.apply(Action::SetServiceDesired {
                service: name.into(),
                desired: from,
                reason: "surge timed out (no room for the new tasks)".into(),
            })?;
            ex.apply(Action::UntagService { service: name.into(), key: SURGE_TAG.into() })?;
            return Ok(0);
        }
    };
    let victims = planner::moves::surge_victims(&snap, name, k, &new, cfg);
    let protect: Vec<String> =
        snap.service_tasks(name).filter(|t| !victims.contains(&t.arn)).map(|t| t.arn.clone()).collect();
    for chunk in protect.chunks(10) {
        ex.apply(Action::SetTaskProtection { task_arns: chunk.to_vec(), protected: true, expires_in_minutes: 10 })?;
    }
    ex.apply(Action::SetServiceDesired {
        service: name.into(),
        desired: from,
        reason: format!("ballast: scale in; ECS stops the unprotected {}", list(&victims)),
    })?;
    let start = ex.now();
    loop {
        ex.sleep(Millis::secs(5))?;
        let s = ex.snapshot()?;
        let live = live_arns(&s, name);
        if victims.iter().all(|v| !live.contains(v)) || ex.now() - start > cfg.wait_timeout {
            break;
        }
    }
    for chunk in protect.chunks(10) {
        ex.apply(Action::SetTaskProtection { task_arns: chunk.to_vec(), protected: false, expires_in_minutes: 0 })?;
    }
    ex.apply(Action::UntagService { service: name.into(), key: SURGE_TAG.into() })?;
    Ok(k)
}

/// Direct stops, each re-checked against minimumHealthyPercent on a fresh snapshot.
fn stops(ex: &mut Exec, cfg: &RebalanceConfig, step: &ServicePlan) -> Result<usize, ExecError> {
    let mut n = 0;
    for m in &step.moves {
        ex.require(cfg.wait_timeout + Millis::mins(1), &format!("a stop in {}", step.service))?;
        let s = ex.snapshot()?;
        let Some(svc) = s.service(&step.service) else { break };
        let healthy = s.service_tasks(&step.service).filter(|t| t.healthy).count() as u32;
        if healthy <= svc.min_healthy_tasks() || !s.tasks.iter().any(|t| t.arn == m.task_arn && t.is_live()) {
            break;
        }
        match ex.apply(Action::StopTask {
            task_arn: m.task_arn.clone(),
            reason: format!("ballast: rebalance; replacement expected on {}", short(&m.to)),
        }) {
            Ok(()) => n += 1,
            // Scale-in protected (someone protected it since the snapshot) or already gone:
            // never forced; the next plan chooses again.
            Err(ExecError::Backend(e @ (BackendError::Invalid { .. } | BackendError::NotFound { .. }))) => {
                tracing::warn!(task = short(&m.task_arn), "not stopped: {e}");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    // Wait until the service is whole again before the next step.
    let start = ex.now();
    loop {
        ex.sleep(Millis::secs(10))?;
        let s = ex.snapshot()?;
        let Some(svc) = s.service(&step.service) else { break };
        let healthy = s.service_tasks(&step.service).filter(|t| t.healthy).count() as u32;
        if healthy >= svc.desired || ex.now() - start > cfg.wait_timeout {
            break;
        }
    }
    Ok(n)
}

fn run_drains(ex: &mut Exec, cfg: &RebalanceConfig, out: &mut Outcome) -> Result<(), ExecError> {
    let mut timeout = cfg.drain.timeout;
    let mut drained = 0;
    let mut evaluations = 0;
    // REBALANCE_MAX_RETRY: the first evaluation plus at most max_retry re-evaluations.
    while evaluations <= cfg.drain.max_retry && drained < cfg.drain.max_instances {
        evaluations += 1;
        let snap = ex.snapshot()?;
        let p = planner::plan(&snap, cfg);
        let Some(Mechanism::Drain { instance }) = p.services.first().map(|s| s.mechanism.clone()) else { break };
        if p.verdict != Verdict::Act {
            break;
        }
        ex.require(timeout + Millis::mins(2), "a drain")?;
        let active: Vec<usize> = snap
            .instances
            .iter()
            .filter(|i| i.status == InstanceStatus::Active)
            .map(|i| service_tasks_on(&snap, &i.arn))
            .collect();
        let mean = active.iter().sum::<usize>() as f64 / active.len().max(1) as f64;
        ex.apply(Action::PutAttribute {
            instance_arn: instance.clone(),
            name: attr::BALLAST_DRAIN.into(),
            value: OWNER.into(),
        })?;
        let r = ex
            .apply(Action::SetInstanceState {
                instance_arns: vec![instance.clone()],
                status: InstanceStatus::Draining,
                reason: p.services[0].reason.clone(),
            })
            .and_then(|_| drain_wait(ex, cfg, &instance, timeout, mean));
        if let Err(e) = &r
            && e.is_crash()
        {
            return r.map(|_| ());
        }
        // Back to ACTIVE whatever happened (the mark stays until the next run).
        ex.apply(Action::SetInstanceState {
            instance_arns: vec![instance.clone()],
            status: InstanceStatus::Active,
            reason: "the drain served its purpose or timed out".into(),
        })?;
        let moved = r?;
        drained += 1;
        out.steps += 1;
        out.restarts += moved;
        timeout = Millis(timeout.0 / 2);
        // Let the cluster settle before the next evaluation; no wait after the last drain.
        if drained < cfg.drain.max_instances && evaluations <= cfg.drain.max_retry {
            ex.sleep(Millis::secs(60))?;
        }
    }
    Ok(())
}

/// Polls every `sleep_time` until the instance's service tasks are at most the mean of the
/// ACTIVE instances, or `timeout` passes. Returns the tasks that left it.
fn service_tasks_on(s: &Snapshot, instance: &str) -> usize {
    s.tasks
        .iter()
        .filter(|t| t.is_live() && t.instance_arn == instance && t.service.is_some() && !s.is_daemon_task(t))
        .count()
}

/// Seed 000's drain wait, with its meaning: poll every `sleep_time` until the instance's
/// service tasks are at most `mean` (the mean over the ACTIVE instances before the drain), or
/// `timeout` passes. Returns the tasks that left it.
fn drain_wait(
    ex: &mut Exec,
    cfg: &RebalanceConfig,
    instance: &str,
    timeout: Millis,
    mean: f64,
) -> Result<usize, ExecError> {
    let initial = service_tasks_on(&ex.snapshot()?, instance);
    let start = ex.now();
    loop {
        ex.sleep(cfg.drain.sleep_time.min(timeout.max(Millis::secs(1))))?;
        let s = ex.snapshot()?;
        let now = service_tasks_on(&s, instance);
        if (now as f64) <= mean || ex.now() - start >= timeout || s.instance(instance).is_none() {
            return Ok(initial.saturating_sub(now));
        }
    }
}

fn run_redeploys(ex: &mut Exec, cfg: &RebalanceConfig, out: &mut Outcome) -> Result<(), ExecError> {
    let mut budget = cfg.max_restarts_per_run as usize;
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut c = cfg.clone();
    for _ in 0..MAX_STEPS {
        c.max_restarts_per_run = budget as u32;
        let snap = ex.snapshot()?;
        let p = planner::plan_next(&snap, &c);
        let Some(step) = p.services.iter().find(|s| !done.contains(&s.service)) else { break };
        if p.verdict != Verdict::Act {
            break;
        }
        ex.require(cfg.wait_timeout * 2 + Millis::mins(1), &format!("a redeploy of {}", step.service))?;
        ex.apply(Action::ForceNewDeployment { service: step.service.clone(), reason: step.reason.clone() })?;
        done.insert(step.service.clone());
        // One at a time: wait for steady state.
        let start = ex.now();
        loop {
            ex.sleep(Millis::secs(15))?;
            let s = ex.snapshot()?;
            let Some(svc) = s.service(&step.service) else { break };
            let healthy = s.service_tasks(&step.service).filter(|t| t.healthy).count() as u32;
            if (svc.deployments.len() <= 1 && healthy >= svc.desired) || ex.now() - start > cfg.wait_timeout * 2 {
                break;
            }
        }
        out.steps += 1;
        out.restarts += step.moves.len();
        budget = budget.saturating_sub(step.moves.len());
        if budget == 0 {
            break;
        }
    }
    Ok(())
}
