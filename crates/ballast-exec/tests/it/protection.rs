//! Issue [10]: scale-in protection an application set is sacred. A snapshot does not show
//! protection (on AWS, DescribeTasks does not carry it; the simulator's backend hides it
//! alike), so a run reads it for the tasks its plan may touch: it never chooses a protected
//! task as a victim, never sends a protection call for one, and clears only the protection it
//! set itself, even when an application protects a task again in the middle of a surge.

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError};
use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_core::duration::Millis;
use ballast_core::view::Jobs;
use ballast_exec::orchestrate::{Cause, ClusterRun, run_cluster};
use ballast_sim::backend::SimBackend;
use ballast_sim::{Scenario, Sim};

use crate::support::{Hooks, Tap, shared};

/// new-instance-joins five minutes after its join: the run surges `web`.
fn setup() -> (Scenario, Sim) {
    let sc = Scenario::load(&shared("new-instance-joins.yaml")).unwrap();
    let mut sim = Sim::new(&sc);
    sim.advance_to(sc.last_event_at() + Millis::mins(5));
    sim.triggers.clear();
    (sc, sim)
}

fn run(sc: &Scenario, backend: &mut dyn Backend) -> ClusterRun {
    let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
    let cause = Cause { holder: Some("test".into()), ..Cause::default() };
    run_cluster(backend, &sc.cluster, &cfg, Jobs::ALL, &cause, false, Millis::mins(120), false).unwrap()
}

fn protection_calls(r: &ClusterRun) -> Vec<(bool, Vec<String>)> {
    r.actions
        .iter()
        .filter_map(|d| match &d.action {
            Action::SetTaskProtection { task_arns, protected, .. } => Some((*protected, task_arns.clone())),
            _ => None,
        })
        .collect()
}

/// The arns of the live tasks of a service.
fn live(b: &mut dyn Backend, cluster: &str, service: &str) -> Vec<String> {
    b.service_state(cluster, service).unwrap().unwrap().tasks.iter().map(|t| t.arn.clone()).collect()
}

#[test]
fn a_task_protected_before_the_run_is_never_touched() {
    let (sc, mut sim) = setup();
    let mut b = SimBackend::new(&mut sim, None);
    let service = sc.services.iter().find(|s| s.name == "web").map_or(sc.services[0].name.clone(), |s| s.name.clone());
    // Without protection the run stops (by a surge) some of these; protect all but one of
    // them, so the plan must choose around them.
    let tasks = live(&mut b, &sc.cluster, &service);
    let protected: Vec<String> = tasks.iter().skip(1).cloned().collect();
    b.apply(
        &sc.cluster,
        &Action::SetTaskProtection {
            task_arns: protected[..protected.len().min(10)].to_vec(),
            protected: true,
            expires_in_minutes: 90,
        },
    )
    .unwrap();
    let mine = b.task_protection(&sc.cluster, &protected).unwrap();
    let r = run(&sc, &mut b);
    for (_, arns) in protection_calls(&r) {
        assert!(
            arns.iter().all(|a| mine.get(a).is_none_or(|p| !p.enabled)),
            "a protection call named an application's task: {arns:?}"
        );
    }
    let after = b.task_protection(&sc.cluster, &protected).unwrap();
    assert_eq!(after, mine, "every application protection, expiry included, is as it was");
    let still = live(&mut b, &sc.cluster, &service);
    for a in protected.iter().filter(|a| mine[*a].enabled) {
        assert!(still.contains(a), "a protected task was stopped");
    }
    assert!(r.outcome.as_ref().unwrap().restarts > 0, "the run still moved what it could: {:?}", r.explained);
}

/// Protects one task for an hour right after ballast's first protection call, as an
/// application finishing a job might.
struct AppProtectsMidSurge {
    task: Option<String>,
    at: Option<Millis>,
}

impl Hooks for AppProtectsMidSurge {
    fn applied(&mut self, inner: &mut dyn Backend, cluster: &str, a: &Action) -> Result<(), BackendError> {
        if let (Action::SetTaskProtection { task_arns, protected: true, .. }, None) = (a, &self.task) {
            let t = task_arns[0].clone();
            inner.apply(
                cluster,
                &Action::SetTaskProtection { task_arns: vec![t.clone()], protected: true, expires_in_minutes: 60 },
            )?;
            self.at = Some(inner.now());
            self.task = Some(t);
        }
        Ok(())
    }
}

#[test]
fn protection_an_application_sets_mid_surge_is_kept_and_only_ballasts_is_cleared() {
    let (sc, mut sim) = setup();
    let mut inner = SimBackend::new(&mut sim, None);
    let mut tap = Tap::new(&mut inner, AppProtectsMidSurge { task: None, at: None });
    let r = run(&sc, &mut tap);
    let (task, at) = (tap.hooks.task.clone().expect("the run surged"), tap.hooks.at.unwrap());
    let set: Vec<String> = protection_calls(&r).iter().filter(|(on, _)| *on).flat_map(|(_, a)| a.clone()).collect();
    let cleared: Vec<String> =
        protection_calls(&r).iter().filter(|(on, _)| !*on).flat_map(|(_, a)| a.clone()).collect();
    assert!(set.contains(&task));
    assert!(!cleared.contains(&task), "ballast cleared protection the application set again");
    let now = tap.task_protection(&sc.cluster, &set).unwrap();
    let p = now[&task];
    assert!(p.enabled, "{p:?}");
    let exp = p.expires.unwrap();
    assert!(
        exp >= at + Millis::mins(60) - Millis::secs(1) && exp <= at + Millis::mins(60),
        "the application's expiry: {exp} vs {at}"
    );
    for a in set.iter().filter(|a| **a != task) {
        assert!(!now[a].enabled, "ballast left its own protection on {a}");
    }
}
