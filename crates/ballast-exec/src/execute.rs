//! Carries a [`Plan`] out, step by step, deciding nothing: before each phase its guard is
//! checked on a fresh read (a failing guard sends the phase's `otherwise` and ends the step);
//! the actions are sent; the wait is polled until it is over or times out (a timeout sends
//! `on_timeout` and ends the step); the step's `finally` is sent whatever happened, also when
//! a call failed (but not after the process was killed: the next run's recovery repairs
//! that). A step starts only if it can finish before the deadline; an action the service
//! refuses for good (a vanished resource, a protected task) ends that step, not the run.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::action::Action;
use ballast_core::backend::{BackendError, PROTECTION_BATCH};
use ballast_core::duration::Millis;
use ballast_core::model::{Task, short_id};
use ballast_core::plan::{Act, JobKind, Plan, Read, Step, Wait};
use ballast_core::view::View;
use serde::Serialize;

use crate::exec::{Exec, ExecError};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", content = "why", rename_all = "kebab-case")]
pub enum StepResult {
    /// Every phase ran.
    Done,
    /// Its first guard did not hold: nothing was sent.
    Skipped(String),
    /// A later guard did not hold: its `otherwise` was sent.
    Abandoned(String),
    /// A wait timed out: its `on_timeout` was sent.
    TimedOut(String),
    /// The service refused an action for good (a vanished resource, a protected task).
    Refused(String),
    /// Not started: the deadline.
    NotStarted(String),
}

/// One step's report.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The job.
    pub job: JobKind,
    /// What it was for.
    pub reason: String,
    /// How it ended.
    pub result: StepResult,
    /// Task restarts it caused.
    pub restarts: usize,
}

/// What carrying the plan out did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Each step, in order.
    pub steps: Vec<StepReport>,
    /// Task restarts caused.
    pub restarts: usize,
    /// Why the run ended before the plan was done, if it did.
    pub stopped_early: Option<String>,
}

/// What a step remembers while it runs.
#[derive(Debug, Default)]
struct Memo {
    /// The service's live tasks when the step began.
    baseline: Vec<Task>,
    /// Tasks this step protected, per service, and when that protection expires (between
    /// the two times: the calls take time): exactly what it clears.
    protected: BTreeMap<String, Protected>,
    /// StopTask calls sent.
    stops: usize,
    /// Any action sent (a step whose first guard failed sent nothing, and cleans up nothing).
    sent: bool,
}

/// What a step protected on one service.
#[derive(Debug, Default)]
struct Protected {
    arns: Vec<String>,
    /// The earliest and latest expiry the calls can have set.
    expires: (Millis, Millis),
}

/// How far the service's clock may differ from ours when matching an expiry it reports to
/// the one ballast set.
const CLOCK_SKEW: Millis = Millis::secs(5);

/// Carries `plan` (decided from `view`) out.
pub fn execute(ex: &mut Exec, plan: &Plan, view: &View) -> Result<Outcome, ExecError> {
    let mut out = Outcome::default();
    let mut steps = plan.steps.iter();
    for step in steps.by_ref() {
        if let Err(ExecError::Deadline(why)) = ex.require(step.longest(), &step.reason) {
            out.steps.push(report(step, StepResult::NotStarted(why.clone()), 0));
            out.stopped_early = Some(why);
            break;
        }
        let mut memo = Memo::default();
        let r = phases(ex, step, view, &mut memo);
        if matches!(&r, Err(e) if e.is_crash()) {
            return r.map(|_| out);
        }
        // Whatever happened, the step's clean-up (unless it sent nothing); after an error,
        // once `on_error` went through.
        let fin = match &r {
            _ if !memo.sent => Ok(None),
            Err(_) => match acts(ex, &step.on_error, &mut memo) {
                Ok(None) => acts(ex, &step.finally, &mut memo),
                Err(e) if e.is_crash() => return Err(e),
                _ => Ok(None),
            },
            Ok(_) => acts(ex, &step.finally, &mut memo),
        };
        let result = match (r, fin) {
            (Err(ExecError::Deadline(why)), _) => {
                out.stopped_early = Some(why.clone());
                StepResult::TimedOut(why)
            }
            (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
            (Ok(res), Ok(None)) => res,
            (Ok(StepResult::Done), Ok(Some(why))) => StepResult::Refused(why),
            (Ok(res), Ok(Some(_))) => res,
        };
        let restarts = if result == StepResult::Done { step.moves.len().max(memo.stops) } else { memo.stops };
        out.restarts += restarts;
        tracing::info!(cluster = %ex.cluster, job = step.job.name(), ?result, "{}", step.reason);
        out.steps.push(report(step, result, restarts));
        if out.stopped_early.is_some() {
            break;
        }
    }
    for step in steps {
        out.steps.push(report(step, StepResult::NotStarted("the run stopped before it".into()), 0));
    }
    Ok(out)
}

fn report(step: &Step, result: StepResult, restarts: usize) -> StepReport {
    StepReport { job: step.job, reason: step.reason.clone(), result, restarts }
}

fn phases(ex: &mut Exec, step: &Step, view: &View, memo: &mut Memo) -> Result<StepResult, ExecError> {
    for (k, phase) in step.phases.iter().enumerate() {
        let mut reads = BTreeSet::new();
        phase.guard.reads(&mut reads);
        if k == 0
            && let Some(s) = &step.service
        {
            reads.insert(Read::Service(s.clone()));
        }
        let fresh = ex.fresh(&reads)?;
        if k == 0
            && let Some(s) = &step.service
        {
            memo.baseline = fresh.services.get(s).and_then(Option::as_ref).map(|x| x.tasks.clone()).unwrap_or_default();
        }
        if let Err(why) = phase.guard.check(&fresh, &view.snapshot, &memo.baseline) {
            if let Some(refused) = acts(ex, &phase.otherwise, memo)? {
                return Ok(StepResult::Refused(refused));
            }
            return Ok(if k == 0 { StepResult::Skipped(why) } else { StepResult::Abandoned(why) });
        }
        if let Some(refused) = acts(ex, &phase.actions, memo)? {
            return Ok(StepResult::Refused(refused));
        }
        if let Some(w) = &phase.wait
            && !wait(ex, w, memo)?
        {
            acts(ex, &phase.on_timeout, memo)?;
            return Ok(StepResult::TimedOut(format!("waited {} in vain", w.timeout())));
        }
    }
    Ok(StepResult::Done)
}

/// Polls until the wait is over (`true`) or times out (`false`).
fn wait(ex: &mut Exec, w: &Wait, memo: &Memo) -> Result<bool, ExecError> {
    let start = ex.now();
    let mut reads = BTreeSet::new();
    w.reads(&mut reads);
    loop {
        ex.sleep(w.poll().min(w.timeout().max(ballast_core::duration::Millis::secs(1))))?;
        if matches!(w, Wait::Sleep { .. }) {
            return Ok(true);
        }
        let fresh = ex.fresh(&reads)?;
        if w.done(&fresh, &memo.baseline) {
            return Ok(true);
        }
        if ex.now() - start >= w.timeout() {
            return Ok(false);
        }
    }
}

/// Sends the acts; `Some(why)` when the service refused one for good (the rest are not sent).
fn acts(ex: &mut Exec, list: &[Act], memo: &mut Memo) -> Result<Option<String>, ExecError> {
    for act in list {
        let actions = match act {
            Act::Send { action } => vec![action.clone()],
            Act::ProtectAllBut { service, victims, minutes } => {
                // Read right before: tasks someone else protected (an application mid-job)
                // keep their protection, untouched: never extended, shortened or cleared.
                let fresh =
                    ex.fresh(&BTreeSet::from([Read::Service(service.clone()), Read::Protection(service.clone())]))?;
                let arns: Vec<String> = fresh
                    .services
                    .get(service)
                    .and_then(Option::as_ref)
                    .map(|s| {
                        s.tasks
                            .iter()
                            .filter(|t| !t.protected && !victims.contains(&t.arn))
                            .map(|t| t.arn.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let lasts = Millis::mins(u64::from(*minutes));
                let from = ex.now() + lasts;
                let mut sent = Vec::new();
                for c in arns.chunks(PROTECTION_BATCH) {
                    let a = Action::SetTaskProtection {
                        task_arns: c.to_vec(),
                        protected: true,
                        expires_in_minutes: *minutes,
                    };
                    let target = a.to_string();
                    memo.sent = true;
                    let r = ex.apply(a);
                    // What may have been set is remembered before any error counts.
                    sent.extend_from_slice(c);
                    let until = ex.now() + lasts;
                    memo.protected.insert(service.clone(), Protected { arns: sent.clone(), expires: (from, until) });
                    if let Some(why) = refused(ex, r, &target)? {
                        return Ok(Some(why));
                    }
                }
                continue;
            }
            Act::ClearProtection { service } => {
                let Some(p) = memo.protected.remove(service) else { continue };
                // Only what this step set and nobody set again since: read it back, and clear
                // a task only while its expiry is the one ballast's call gave it.
                let now = ex.task_protection(&p.arns)?;
                let (lo, hi) = (p.expires.0 - CLOCK_SKEW, p.expires.1 + CLOCK_SKEW);
                let ours: Vec<String> = p
                    .arns
                    .iter()
                    .filter(|a| now.get(*a).is_some_and(|t| t.enabled && t.expires.is_none_or(|e| e >= lo && e <= hi)))
                    .cloned()
                    .collect();
                for a in p.arns.iter().filter(|a| !ours.contains(a) && now.get(*a).is_some_and(|t| t.enabled)) {
                    tracing::info!(cluster = %ex.cluster, task = short_id(a), "left its scale-in protection: someone set it again since ballast did");
                }
                ours.chunks(PROTECTION_BATCH)
                    .map(|c| Action::SetTaskProtection {
                        task_arns: c.to_vec(),
                        protected: false,
                        expires_in_minutes: 0,
                    })
                    .collect()
            }
        };
        for a in actions {
            let stop = matches!(a, Action::StopTask { .. });
            let target = a.to_string();
            memo.sent = true;
            let r = ex.apply(a);
            if stop && r.is_ok() {
                memo.stops += 1;
            }
            if let Some(why) = refused(ex, r, &target)? {
                return Ok(Some(why));
            }
        }
    }
    Ok(None)
}

/// One sent action's result: `Some(why)` when the service refused it for good (a vanished
/// resource, a protected task, a conflict), which ends the step; other failures end the run.
fn refused(ex: &Exec, r: Result<(), ExecError>, target: &str) -> Result<Option<String>, ExecError> {
    match r {
        Ok(()) => Ok(None),
        Err(ExecError::Backend(
            e @ (BackendError::NotFound { .. } | BackendError::Invalid { .. } | BackendError::Conflict { .. }),
        )) => {
            tracing::warn!(cluster = %ex.cluster, "refused: {target}: {e}");
            Ok(Some(format!("{}: {e}", short_id(target))))
        }
        Err(e) => Err(e),
    }
}
