//! Helpers: scenarios of this repository, and a backend that watches the calls it passes
//! through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, GroupInfo, HttpRequest, MetricQuery};
use ballast_core::duration::Millis;
use ballast_core::model::Snapshot;

/// A scenario of this repository.
pub fn own(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios").join(name)
}

/// A contract scenario from ../shared/scenarios.
pub fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/scenarios").join(name)
}

/// What a [`Tap`] does around the calls it passes through.
pub trait Hooks {
    /// Before each mutating call.
    fn apply(&mut self, _inner: &mut dyn Backend, _cluster: &str, _a: &Action) -> Result<(), BackendError> {
        Ok(())
    }
    /// After each mutating call that went through.
    fn applied(&mut self, _inner: &mut dyn Backend, _cluster: &str, _a: &Action) -> Result<(), BackendError> {
        Ok(())
    }
    /// Before each wait.
    fn sleep(&mut self, _inner: &mut dyn Backend) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A backend that passes every call through to `inner`, records the mutating ones and lets
/// `hooks` look at (or act on) the cluster before each mutating call and each wait.
pub struct Tap<'a, H: Hooks> {
    /// The backend underneath.
    pub inner: &'a mut dyn Backend,
    /// The mutating calls, in order.
    pub applied: Vec<Action>,
    /// What runs around the calls.
    pub hooks: H,
}

impl<'a, H: Hooks> Tap<'a, H> {
    /// Over `inner`.
    pub fn new(inner: &'a mut dyn Backend, hooks: H) -> Self {
        Tap { inner, applied: vec![], hooks }
    }
}

impl<H: Hooks> Backend for Tap<'_, H> {
    fn snapshot(&mut self, c: &str) -> Result<Snapshot, BackendError> {
        self.inner.snapshot(c)
    }
    fn apply(&mut self, c: &str, a: &Action) -> Result<(), BackendError> {
        self.hooks.apply(&mut *self.inner, c, a)?;
        self.applied.push(a.clone());
        self.inner.apply(c, a)?;
        self.hooks.applied(&mut *self.inner, c, a)
    }
    // Every read is passed through as well (the defaults would read whole snapshots, which
    // neither cost nor show what the backend's own reads do).
    fn instances(
        &mut self,
        c: &str,
        s: ballast_core::model::InstanceStatus,
    ) -> Result<Vec<ballast_core::model::ContainerInstance>, BackendError> {
        self.inner.instances(c, s)
    }
    fn instance(&mut self, c: &str, arn: &str) -> Result<Option<ballast_core::model::ContainerInstance>, BackendError> {
        self.inner.instance(c, arn)
    }
    fn service_state(&mut self, c: &str, s: &str) -> Result<Option<ballast_core::model::ServiceState>, BackendError> {
        self.inner.service_state(c, s)
    }
    fn services(&mut self, c: &str) -> Result<Vec<ballast_core::model::Service>, BackendError> {
        self.inner.services(c)
    }
    fn task_protection(
        &mut self,
        c: &str,
        arns: &[String],
    ) -> Result<BTreeMap<String, ballast_core::backend::TaskProtection>, BackendError> {
        self.inner.task_protection(c, arns)
    }
    fn metric_statistics(&mut self, q: &MetricQuery, w: Millis) -> Result<Vec<(Millis, f64)>, BackendError> {
        self.inner.metric_statistics(q, w)
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
        self.hooks.sleep(&mut *self.inner)?;
        self.inner.sleep(d)
    }
}

/// No hooks: only the recording.
pub struct Record;

impl Hooks for Record {}
