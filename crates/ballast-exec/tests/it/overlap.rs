//! Two controllers on one cluster (a Lambda retried while the last invocation still works, or
//! the CLI beside the Lambda): while one run acts, a second run that starts in the middle of
//! it changes nothing, because the first holds the cluster's run lease. Without the lease the
//! same interleaving has both act, so the test can fail.

use std::collections::BTreeMap;

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError};
use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_core::duration::Millis;
use ballast_exec::policies::Ballast;
use ballast_sim::backend::SimBackend;
use ballast_sim::{Scenario, Sim};

use crate::support::{Hooks, Record, Tap, shared};

/// Carries a second controller, and runs a whole run of it on the same cluster during the
/// first run's first wait after it has started to act.
struct Second {
    acted: usize,
    second: Option<Ballast>,
    second_applied: Option<Vec<Action>>,
}

impl Hooks for Second {
    fn apply(&mut self, _: &mut dyn Backend, _: &str, _: &Action) -> Result<(), BackendError> {
        self.acted += 1;
        Ok(())
    }
    fn sleep(&mut self, inner: &mut dyn Backend) -> Result<(), BackendError> {
        // Past the lease's settle read: the first run has really started to act.
        if self.acted >= 2
            && let Some(mut second) = self.second.take()
        {
            let mut tap = Tap::new(inner, Record);
            second.run_once(&mut tap, "new-instance-joins", ballast_core::view::Trigger::Scheduled)?;
            self.second_applied = Some(tap.applied);
        }
        Ok(())
    }
}

/// Runs controller one at 13m with controller two starting inside it; returns the mutating
/// calls of each and the cluster's tags afterwards.
fn overlap(with_lease: bool) -> (usize, Vec<String>, BTreeMap<String, String>) {
    let sc = Scenario::load(&shared("new-instance-joins.yaml")).unwrap();
    let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
    let mut sim = Sim::new(&sc);
    sim.advance_to(Millis::mins(13));
    sim.triggers.clear();
    let make =
        |name: &str| if with_lease { Ballast::named(cfg.clone(), name) } else { Ballast::without_lease(cfg.clone()) };
    let mut first = make("lambda");
    let mut be = SimBackend::new(&mut sim, None);
    let mut tap = Tap::new(&mut be, Second { acted: 0, second: Some(make("cli")), second_applied: None });
    first.run_once(&mut tap, &sc.cluster, ballast_core::view::Trigger::Scheduled).unwrap();
    let second = tap.hooks.second_applied.take().expect("the second run happened inside the first");
    let second: Vec<String> = second.iter().map(ToString::to_string).collect();
    let first_applied = tap.applied.len();
    let tags = be.cluster_tags(&sc.cluster).unwrap();
    (first_applied, second, tags)
}

#[test]
fn a_run_that_starts_while_another_acts_changes_nothing() {
    let (first, second, tags) = overlap(true);
    assert!(first > 3, "the first run acted ({first} calls)");
    assert!(second.is_empty(), "the overlapping run changed {second:?}");
    assert!(!tags.contains_key(ballast_exec::lease::TAG), "the lease was given back: {tags:?}");
}

#[test]
fn without_the_lease_both_would_act() {
    let (first, second, _) = overlap(false);
    assert!(first > 3);
    assert!(!second.is_empty(), "the interleaving must make the second run act when nothing stops it");
}
