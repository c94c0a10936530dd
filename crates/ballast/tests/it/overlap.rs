//! Two controllers on one cluster (a Lambda retried while the last invocation still works, or
//! the CLI beside the Lambda): while one run acts, a second run that starts in the middle of
//! it changes nothing, because the first holds the cluster's run lease. Without the lease the
//! same interleaving has both act, so the test can fail.

use std::collections::BTreeMap;

use ballast::policies::Ballast;
use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, GroupInfo, HttpRequest, MetricQuery};
use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_core::duration::Millis;
use ballast_core::model::Snapshot;
use ballast_sim::backend::SimBackend;
use ballast_sim::{Scenario, Sim};

use crate::support::shared;

/// A backend that records the mutating calls passing through it and, when it carries a
/// second controller, runs a whole run of that one on the same cluster during its first wait
/// after it has started to act.
struct Spy<'a> {
    inner: &'a mut dyn Backend,
    applied: Vec<String>,
    second: Option<Ballast>,
    second_applied: Option<Vec<String>>,
}

impl<'a> Spy<'a> {
    fn new(inner: &'a mut dyn Backend, second: Option<Ballast>) -> Self {
        Spy { inner, applied: vec![], second, second_applied: None }
    }
}

impl Backend for Spy<'_> {
    fn snapshot(&mut self, c: &str) -> Result<Snapshot, BackendError> {
        self.inner.snapshot(c)
    }
    fn apply(&mut self, c: &str, a: &Action) -> Result<(), BackendError> {
        self.applied.push(a.to_string());
        self.inner.apply(c, a)
    }
    fn cluster_tags(&mut self, c: &str) -> Result<BTreeMap<String, String>, BackendError> {
        self.inner.cluster_tags(c)
    }
    fn group(&mut self, n: &str) -> Result<GroupInfo, BackendError> {
        self.inner.group(n)
    }
    fn metric_data(&mut self, q: &[MetricQuery]) -> Result<Vec<Option<f64>>, BackendError> {
        self.inner.metric_data(q)
    }
    fn http(&mut self, r: &HttpRequest) -> Result<Vec<u8>, BackendError> {
        self.inner.http(r)
    }
    fn now(&self) -> Millis {
        self.inner.now()
    }
    fn sleep(&mut self, d: Millis) -> Result<(), BackendError> {
        // Past the lease's settle read: the first run has really started to act.
        if self.applied.len() >= 2
            && let Some(mut second) = self.second.take()
        {
            let mut spy = Spy::new(&mut *self.inner, None);
            second.run_once(&mut spy, "new-instance-joins", "overlapping run", None)?;
            self.second_applied = Some(spy.applied);
        }
        self.inner.sleep(d)
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
    let mut spy = Spy::new(&mut be, Some(make("cli")));
    first.run_once(&mut spy, &sc.cluster, "scheduled", None).unwrap();
    let second = spy.second_applied.take().expect("the second run happened inside the first");
    let first_applied = spy.applied.len();
    let tags = be.cluster_tags(&sc.cluster).unwrap();
    (first_applied, second, tags)
}

#[test]
fn a_run_that_starts_while_another_acts_changes_nothing() {
    let (first, second, tags) = overlap(true);
    assert!(first > 3, "the first run acted ({first} calls)");
    assert!(second.is_empty(), "the overlapping run changed {second:?}");
    assert!(!tags.contains_key(ballast::lease::TAG), "the lease was given back: {tags:?}");
}

#[test]
fn without_the_lease_both_would_act() {
    let (first, second, _) = overlap(false);
    assert!(first > 3);
    assert!(!second.is_empty(), "the interleaving must make the second run act when nothing stops it");
}
