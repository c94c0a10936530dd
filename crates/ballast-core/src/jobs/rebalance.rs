//! The rebalance job as steps: the planner ([`crate::planner`]) decides which tasks move and
//! where ECS will put their replacements; this turns its per-service plans into steps the
//! executor carries out with every safety rule written into them:
//! - **surge** (make before break): tag the service `from:to@holder`, raise desired, await the
//!   new tasks healthy; then, if letting the planned victims go still evens the service out
//!   (with the new tasks where ECS actually put them), protect every other task and lower
//!   desired so that ECS stops exactly the victims, and await them gone; whatever happens,
//!   clear the protection the step set and untag. A surge whose new tasks never get healthy
//!   goes back to its desired count;
//! - **stop** (no surge room, minimumHealthyPercent below 100): each StopTask only while the
//!   service has more healthy tasks than its budget's floor, then await it whole;
//! - **drain** (seed 000's method, done right): mark the instance as ballast's, drain it,
//!   await its load at most the mean (polling every `drain.sleep_time`, up to the timeout,
//!   halved for each further drain, a minute apart), and return it to ACTIVE whatever happened;
//! - **redeploy**: forceNewDeployment, await the deployment done.

use crate::action::Action;
use crate::config::RebalanceConfig;
use crate::duration::Millis;
use crate::model::{InstanceStatus, Snapshot, attr, short_id};
use crate::placement::TaskSpec;
use crate::plan::{Act, Guard, JobKind, Phase, Step, Wait};
use crate::planner::{self, Mechanism, ServicePlan};

use super::{OWNER, SURGE_TAG, SurgeTag};

/// Scale-in protection a surge sets lasts this long (it is cleared as soon as the victims are
/// gone; the expiry only matters if the run dies).
pub const PROTECTION_MINUTES: u32 = 10;

/// The planner's verdict and the steps that carry it out; `reserve`: tasks waiting to be
/// placed, whose room no move may take; `holder`: this run's lease holder id.
pub fn decide(
    snap: &Snapshot,
    cfg: &RebalanceConfig,
    reserve: &[TaskSpec],
    holder: &str,
) -> (planner::Plan, Vec<Step>) {
    let p = planner::plan_with(snap, cfg, reserve);
    if p.verdict != planner::Verdict::Act {
        return (p, vec![]);
    }
    let mut steps = Vec::new();
    let mut drains = 0u32;
    // REBALANCE_MAX_RETRY: the first evaluation and at most that many more.
    let max_drains = (cfg.drain.max_retry + 1).min(cfg.drain.max_instances);
    for sp in &p.services {
        match &sp.mechanism {
            Mechanism::Surge { from, to } => steps.push(surge(snap, sp, *from, *to, cfg, holder)),
            Mechanism::Stop => steps.push(stops(sp, cfg)),
            Mechanism::Drain { .. } if drains >= max_drains => {}
            Mechanism::Drain { instance } => {
                if drains > 0 {
                    steps.push(pause(Millis::secs(60)));
                }
                let timeout = Millis(cfg.drain.timeout.0 >> drains.min(16));
                steps.push(drain(snap, sp, instance, timeout, cfg));
                drains += 1;
            }
            Mechanism::Redeploy => steps.push(redeploy(snap, sp, cfg)),
        }
    }
    (p, steps)
}

fn victims(sp: &ServicePlan) -> Vec<String> {
    sp.moves.iter().map(|m| m.task_arn.clone()).collect()
}

fn list(arns: &[String]) -> String {
    let mut s: Vec<String> = arns.iter().take(5).map(|a| short_id(a).to_string()).collect();
    if arns.len() > 5 {
        s.push(format!("and {} more", arns.len() - 5));
    }
    s.join(", ")
}

fn desired(service: &str, desired: u32, reason: String) -> Act {
    Act::send(Action::SetServiceDesired { service: service.into(), desired, reason })
}

fn surge(snap: &Snapshot, sp: &ServicePlan, from: u32, to: u32, cfg: &RebalanceConfig, holder: &str) -> Step {
    let name = sp.service.clone();
    let v = victims(sp);
    let k = to - from;
    let levels = snap
        .service(&name)
        .and_then(|s| planner::objective::spread_levels(&s.effective_strategy()))
        .unwrap_or_else(|| vec!["instanceId".into()]);
    let tag = SurgeTag { from, to, holder: holder.to_string() };
    let raise = Phase {
        guard: Guard::all(vec![
            Guard::ServiceSteady { service: name.clone(), desired: from },
            Guard::Movable { service: name.clone(), tasks: v.clone() },
        ]),
        actions: vec![
            Act::send(Action::TagService { service: name.clone(), key: SURGE_TAG.into(), value: tag.value() }),
            desired(&name, to, format!("ballast: surge by {k} so that replacements start before anything stops")),
        ],
        otherwise: vec![],
        wait: Some(Wait::NewTasksHealthy { service: name.clone(), count: k, timeout: cfg.wait_timeout }),
        on_timeout: vec![desired(
            &name,
            from,
            "surge timed out (no room for the new tasks); back to its desired count".into(),
        )],
    };
    let let_go = Phase {
        guard: Guard::all(vec![
            Guard::Movable { service: name.clone(), tasks: v.clone() },
            Guard::Improves { service: name.clone(), victims: v.clone(), levels, neutral: sp.neutral_only },
        ]),
        actions: vec![
            Act::ProtectAllBut { service: name.clone(), victims: v.clone(), minutes: PROTECTION_MINUTES },
            desired(&name, from, format!("ballast: scale in; ECS stops the unprotected {}", list(&v))),
        ],
        otherwise: vec![desired(
            &name,
            from,
            "abandoning the surge: the move no longer helps; back to its desired count".into(),
        )],
        wait: Some(Wait::TasksGone { service: name.clone(), tasks: v, timeout: cfg.wait_timeout }),
        on_timeout: vec![],
    };
    Step {
        job: JobKind::Rebalance,
        reason: sp.reason.clone(),
        phases: vec![raise, let_go],
        finally: vec![
            Act::ClearProtection { service: name.clone() },
            Act::send(Action::UntagService { service: name.clone(), key: SURGE_TAG.into() }),
        ],
        // The service as it was found; if even that fails, the tag stays for the next run.
        on_error: vec![desired(&name, from, "abandoning the surge after an API failure".into())],
        moves: sp.moves.clone(),
        service: Some(name),
    }
}

fn stops(sp: &ServicePlan, cfg: &RebalanceConfig) -> Step {
    let name = sp.service.clone();
    let mut phases: Vec<Phase> = sp
        .moves
        .iter()
        .map(|m| {
            Phase::new(
                Guard::all(vec![
                    Guard::AboveMinHealthy { service: name.clone() },
                    Guard::Movable { service: name.clone(), tasks: vec![m.task_arn.clone()] },
                ]),
                vec![Act::send(Action::StopTask {
                    task_arn: m.task_arn.clone(),
                    reason: format!("ballast: rebalance; replacement expected on {}", short_id(&m.to)),
                })],
            )
        })
        .collect();
    if let Some(last) = phases.last_mut() {
        last.wait = Some(Wait::ServiceWhole { service: name.clone(), timeout: cfg.wait_timeout });
    }
    Step {
        job: JobKind::Rebalance,
        reason: sp.reason.clone(),
        phases,
        finally: vec![],
        on_error: vec![],
        moves: sp.moves.clone(),
        service: Some(name),
    }
}

fn drain(snap: &Snapshot, sp: &ServicePlan, instance: &str, timeout: Millis, cfg: &RebalanceConfig) -> Step {
    // Seed 000's target: the instance's tasks at most the mean of the ACTIVE instances.
    let active: Vec<f64> =
        snap.instances.iter().filter(|i| i.status == InstanceStatus::Active).map(|i| i.running_tasks as f64).collect();
    let mean = active.iter().sum::<f64>() / active.len().max(1) as f64;
    let phase = Phase {
        guard: Guard::InstanceIs { arn: instance.into(), status: InstanceStatus::Active },
        actions: vec![
            Act::send(Action::PutAttribute {
                instance_arn: instance.into(),
                name: attr::BALLAST_DRAIN.into(),
                value: OWNER.into(),
            }),
            Act::send(Action::SetInstanceState {
                instance_arns: vec![instance.into()],
                status: InstanceStatus::Draining,
                reason: sp.reason.clone(),
            }),
        ],
        otherwise: vec![],
        wait: Some(Wait::InstanceAtMost { arn: instance.into(), max: mean, poll: cfg.drain.sleep_time, timeout }),
        on_timeout: vec![],
    };
    Step {
        job: JobKind::Rebalance,
        reason: sp.reason.clone(),
        phases: vec![phase],
        // Back to ACTIVE whatever happened; the mark stays until the next run.
        finally: vec![Act::send(Action::SetInstanceState {
            instance_arns: vec![instance.into()],
            status: InstanceStatus::Active,
            reason: "the drain served its purpose or timed out".into(),
        })],
        on_error: vec![],
        moves: sp.moves.clone(),
        service: None,
    }
}

fn pause(d: Millis) -> Step {
    Step {
        job: JobKind::Rebalance,
        reason: format!("let the cluster settle for {d} before the next drain"),
        phases: vec![Phase::new(Guard::Always, vec![]).then_wait(Wait::Sleep { time: d })],
        finally: vec![],
        on_error: vec![],
        moves: vec![],
        service: None,
    }
}

fn redeploy(snap: &Snapshot, sp: &ServicePlan, cfg: &RebalanceConfig) -> Step {
    let name = sp.service.clone();
    let desired = snap.service(&name).map_or(0, |s| s.desired);
    Step {
        job: JobKind::Rebalance,
        reason: sp.reason.clone(),
        phases: vec![
            Phase::new(
                Guard::ServiceSteady { service: name.clone(), desired },
                vec![Act::send(Action::ForceNewDeployment { service: name.clone(), reason: sp.reason.clone() })],
            )
            .then_wait(Wait::ServiceWhole { service: name.clone(), timeout: cfg.wait_timeout * 2 }),
        ],
        finally: vec![],
        on_error: vec![],
        moves: sp.moves.clone(),
        service: Some(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SnapshotBuilder;

    fn joined() -> Snapshot {
        SnapshotBuilder::new("c")
            .instance("a1", "us-east-1a", 4096, 15000)
            .instance("b1", "us-east-1b", 4096, 15000)
            .instance("a2", "us-east-1a", 4096, 15000)
            .service("api", 256, 512, &["spread(attribute:ecs.availability-zone)", "spread(instanceId)"], &[])
            .tasks("api", "a1", 4)
            .tasks("api", "b1", 4)
            .build()
    }

    #[test]
    fn a_surge_makes_before_it_breaks_and_always_cleans_up() {
        let (p, steps) = decide(&joined(), &RebalanceConfig::defaults(), &[], "run-7");
        assert_eq!(p.verdict, planner::Verdict::Act);
        let s = &steps[0];
        assert_eq!(s.phases.len(), 2);
        // Phase 1: tag (with who and from what), raise, await the new tasks.
        let Act::Send { action: Action::TagService { value, .. } } = &s.phases[0].actions[0] else { panic!("{s:?}") };
        assert_eq!(SurgeTag::parse(value).map(|t| (t.from, t.holder)), Some((8, "run-7".into())));
        assert!(matches!(s.phases[0].wait, Some(Wait::NewTasksHealthy { .. })));
        assert!(matches!(
            &s.phases[0].on_timeout[..],
            [Act::Send { action: Action::SetServiceDesired { desired: 8, .. } }]
        ));
        // Phase 2: protect all but the victims, lower; abandon by lowering if it no longer helps.
        assert!(matches!(s.phases[1].actions[0], Act::ProtectAllBut { .. }));
        assert!(matches!(s.phases[1].guard, Guard::All { .. }));
        // Always: clear what it protected, untag; after an API failure, first the desired count.
        assert!(matches!(s.finally[0], Act::ClearProtection { .. }));
        assert!(matches!(&s.finally[1], Act::Send { action: Action::UntagService { .. } }));
        assert!(matches!(&s.on_error[..], [Act::Send { action: Action::SetServiceDesired { desired: 8, .. } }]));
        assert_eq!(s.moves.len(), p.services[0].moves.len());
    }

    #[test]
    fn a_drain_returns_the_instance_whatever_happens() {
        let mut cfg = RebalanceConfig::defaults();
        cfg.method = crate::config::Method::Drain;
        let piled = SnapshotBuilder::new("c")
            .instance("a1", "us-east-1a", 4096, 15000)
            .instance("b1", "us-east-1b", 4096, 15000)
            .instance("c1", "us-east-1c", 4096, 15000)
            .service("api", 256, 512, &["spread(instanceId)"], &[])
            .tasks("api", "a1", 8)
            .build();
        let (_, steps) = decide(&piled, &cfg, &[], "run-7");
        assert!(steps.iter().any(|s| !s.phases[0].actions.is_empty()), "a drain is planned: {steps:?}");
        for s in steps.iter().filter(|s| !s.phases[0].actions.is_empty()) {
            assert!(matches!(
                &s.finally[..],
                [Act::Send { action: Action::SetInstanceState { status: InstanceStatus::Active, .. } }]
            ));
            assert!(matches!(s.phases[0].wait, Some(Wait::InstanceAtMost { .. })));
        }
    }
}
