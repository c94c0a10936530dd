//! Every call ballast makes to a cluster goes through [`Exec`]: bounded retries of retryable
//! faults (on top of the SDK's own), the run's deadline, the run lease, dry run, and a log of
//! what was sent. [`crate::execute`] carries a plan out through it; nothing else decides.

use std::collections::{BTreeMap, BTreeSet};

use ballast_core::action::Action;
use ballast_core::backend::{
    Backend, BackendError, GroupInfo, HttpRequest, MetricQuery, PROTECTION_BATCH, TaskProtection,
};
use ballast_core::duration::Millis;
use ballast_core::model::Snapshot;
use ballast_core::plan::{Fresh, Read};
use serde::Serialize;

/// Extra attempts the executor makes after the backend's own retries failed.
pub const EXTRA_ATTEMPTS: u32 = 2;

/// One action as carried out (or only planned, in a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    /// Seconds after the run began (the same on every backend; the run's start on the
    /// backend's clock is [`crate::orchestrate::ClusterRun::started_at_s`]).
    pub at_s: f64,
    /// The action.
    pub action: Action,
    /// One line.
    pub text: String,
    /// Dry run: not sent.
    pub dry_run: bool,
}

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// The backend failed after all retries.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The run's deadline would be passed by the next step.
    #[error("deadline: {0}")]
    Deadline(String),
    /// Another run holds the cluster's lease: this run changes nothing.
    #[error("another ballast run is acting on the cluster: {0}")]
    LeaseHeld(String),
}

impl ExecError {
    /// The process was killed (crash matrix): no clean-up may run.
    pub fn is_crash(&self) -> bool {
        matches!(self, ExecError::Backend(BackendError::Crashed))
    }
}

/// Runs actions against one cluster of a backend.
pub struct Exec<'a> {
    /// When the run began, on the backend's clock.
    pub started: Millis,
    backend: &'a mut dyn Backend,
    /// Cluster name.
    pub cluster: String,
    /// Plan only.
    pub dry_run: bool,
    deadline: Millis,
    /// What was done.
    pub done: Vec<Done>,
    /// This run's lease holder id, when the run takes the lease (see [`crate::lease`]).
    lease_holder: Option<String>,
    /// The lease value written, once taken, and when it expires.
    lease_taken: Option<(String, Millis)>,
}

impl<'a> Exec<'a> {
    /// An executor whose run must end within `budget` from now.
    pub fn new(backend: &'a mut dyn Backend, cluster: &str, dry_run: bool, budget: Millis) -> Self {
        let started = backend.now();
        let deadline = started + budget;
        Exec {
            started,
            backend,
            cluster: cluster.to_string(),
            dry_run,
            deadline,
            done: vec![],
            lease_holder: None,
            lease_taken: None,
        }
    }

    /// Takes the cluster's run lease before the first mutating call, as `holder`.
    pub fn with_lease(mut self, holder: String) -> Self {
        self.lease_holder = Some(holder);
        self
    }

    /// Whether this run holds the lease.
    pub fn holds_lease(&self) -> bool {
        self.lease_taken.is_some()
    }

    fn lease_blocker(&mut self, holder: &str) -> Result<Option<String>, ExecError> {
        let cluster = self.cluster.clone();
        let tags = self.retry(|b| b.cluster_tags(&cluster))?;
        let now = self.backend.now();
        Ok(tags
            .get(crate::lease::TAG)
            .and_then(|v| crate::lease::Lease::parse(v))
            .filter(|l| l.blocks(holder, now))
            .map(|l| format!("{} holds the lease until {}s", l.holder, l.until.as_secs())))
    }

    fn write_lease(&mut self, holder: &str) -> Result<(), ExecError> {
        let until = self.backend.now() + crate::lease::TTL;
        let value = crate::lease::Lease { holder: holder.to_string(), until }.value();
        let cluster = self.cluster.clone();
        let tag = Action::TagCluster { key: crate::lease::TAG.into(), value: value.clone() };
        self.send_recorded(&cluster, tag)?;
        self.lease_taken = Some((value, until));
        Ok(())
    }

    /// Sends a lease call and records it with the run's actions (everything sent is shown).
    fn send_recorded(&mut self, cluster: &str, action: Action) -> Result<(), ExecError> {
        let (at_s, text) = ((self.backend.now() - self.started).as_secs_f64(), action.to_string());
        let r = self.retry(|b| b.apply(cluster, &action));
        if r.is_ok() || matches!(r, Err(ExecError::Backend(BackendError::Crashed))) {
            self.done.push(Done { at_s, action, text, dry_run: false });
        }
        r
    }

    /// Renews the lease when it is ours and close to expiring.
    fn renew_lease(&mut self) -> Result<(), ExecError> {
        match (&self.lease_holder, &self.lease_taken) {
            (Some(h), Some((_, until))) if *until - self.backend.now() < crate::lease::RENEW_BELOW => {
                let h = h.clone();
                self.write_lease(&h)
            }
            _ => Ok(()),
        }
    }

    fn take_lease(&mut self) -> Result<(), ExecError> {
        let Some(holder) = self.lease_holder.clone() else { return Ok(()) };
        if self.lease_taken.is_some() {
            return self.renew_lease();
        }
        if let Some(why) = self.lease_blocker(&holder)? {
            return Err(ExecError::LeaseHeld(why));
        }
        self.write_lease(&holder)?;
        self.backend.sleep(crate::lease::SETTLE)?;
        if let Some(why) = self.lease_blocker(&holder)? {
            // Another run wrote after us: its lease stands, ours was overwritten.
            self.lease_taken = None;
            return Err(ExecError::LeaseHeld(why));
        }
        Ok(())
    }

    /// Gives the lease back (only if it is still ours). Called when the run ends.
    pub fn release_lease(&mut self) -> Result<(), ExecError> {
        let Some((ours, _)) = self.lease_taken.take() else { return Ok(()) };
        let cluster = self.cluster.clone();
        let tags = self.retry(|b| b.cluster_tags(&cluster))?;
        if tags.get(crate::lease::TAG) == Some(&ours) {
            self.send_recorded(&cluster, Action::UntagCluster { key: crate::lease::TAG.into() })?;
        }
        Ok(())
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Millis {
        self.deadline - self.backend.now()
    }

    /// Fails unless `need` fits before the deadline (checked before each disruptive step).
    pub fn require(&self, need: Millis, what: &str) -> Result<(), ExecError> {
        if self.remaining() < need {
            return Err(ExecError::Deadline(format!(
                "{what} needs up to {need} but only {} is left; left for the next run",
                self.remaining()
            )));
        }
        Ok(())
    }

    /// The backend clock.
    pub fn now(&self) -> Millis {
        self.backend.now()
    }

    fn retry<T>(&mut self, f: impl FnMut(&mut dyn Backend) -> Result<T, BackendError>) -> Result<T, ExecError> {
        self.retry_if(f, BackendError::retryable)
    }

    /// Retries the faults `again` accepts, at most [`EXTRA_ATTEMPTS`] times.
    fn retry_if<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Backend) -> Result<T, BackendError>,
        again: fn(&BackendError) -> bool,
    ) -> Result<T, ExecError> {
        let mut attempt = 0;
        loop {
            match f(self.backend) {
                Ok(v) => return Ok(v),
                Err(e) if again(&e) && attempt < EXTRA_ATTEMPTS => {
                    attempt += 1;
                    tracing::info!(error = %e, attempt, "retrying after a retryable fault");
                    self.backend.sleep(Millis::secs(2u64 << attempt))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A fresh snapshot of the cluster.
    pub fn snapshot(&mut self) -> Result<Snapshot, ExecError> {
        let cluster = self.cluster.clone();
        self.retry(|b| b.snapshot(&cluster))
    }

    /// An Auto Scaling group (read even in a dry run).
    pub fn group(&mut self, name: &str) -> Result<GroupInfo, ExecError> {
        self.retry(|b| b.group(name))
    }

    /// What a guard or a wait reads, fresh: each service with its tasks, each instance, each
    /// group (one that is gone reads as `None`).
    pub fn fresh(&mut self, reads: &BTreeSet<Read>) -> Result<Fresh, ExecError> {
        let cluster = self.cluster.clone();
        let mut f = Fresh::default();
        for r in reads {
            match r {
                Read::Service(s) => {
                    let v = self.retry(|b| b.service_state(&cluster, s))?;
                    f.services.insert(s.clone(), v);
                }
                Read::Instance(arn) => {
                    let v = self.retry(|b| b.instance(&cluster, arn))?;
                    f.instances.insert(arn.clone(), v);
                }
                Read::Group(g) => {
                    let v = match self.group(g) {
                        Ok(v) => Some(v),
                        Err(ExecError::Backend(BackendError::NotFound { .. })) => None,
                        Err(e) => return Err(e),
                    };
                    f.groups.insert(g.clone(), v);
                }
                Read::Protection(s) => {
                    // After the service's own read (the set orders it so), on its tasks.
                    if !f.services.contains_key(s) {
                        let v = self.retry(|b| b.service_state(&cluster, s))?;
                        f.services.insert(s.clone(), v);
                    }
                    if let Some(Some(state)) = f.services.get_mut(s) {
                        let arns: Vec<String> = state.tasks.iter().map(|t| t.arn.clone()).collect();
                        let p = self.task_protection(&arns)?;
                        for t in &mut state.tasks {
                            t.protected = p.get(&t.arn).is_some_and(|p| p.enabled);
                        }
                        f.protection.extend(p);
                    }
                }
            }
        }
        Ok(f)
    }

    /// What else scales these services (Application Auto Scaling), read even in a dry run.
    pub fn scaled_by(&mut self, services: &[String]) -> Result<BTreeMap<String, Vec<String>>, ExecError> {
        let cluster = self.cluster.clone();
        self.retry(|b| b.scaled_by(&cluster, services))
    }

    /// The scale-in protection of these tasks (GetTaskProtection, 10 per call), read even in
    /// a dry run.
    pub fn task_protection(&mut self, arns: &[String]) -> Result<BTreeMap<String, TaskProtection>, ExecError> {
        let cluster = self.cluster.clone();
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(PROTECTION_BATCH) {
            out.extend(self.retry(|b| b.task_protection(&cluster, chunk))?);
        }
        Ok(out)
    }

    /// The latest complete datapoint of each metric (`None`: unknown).
    pub fn metrics(&mut self, queries: &[MetricQuery]) -> Result<Vec<Option<f64>>, ExecError> {
        self.retry(|b| b.metric_data(queries))
    }

    /// One HTTP metric request, tried once (a metric that fails is unknown this run, not
    /// worth the run's time); read even in a dry run.
    pub fn http(&mut self, req: &HttpRequest) -> Result<Vec<u8>, BackendError> {
        self.backend.http(req)
    }

    /// Applies (or, in a dry run, records) one action.
    pub fn apply(&mut self, action: Action) -> Result<(), ExecError> {
        let text = action.to_string();
        let at_s = (self.backend.now() - self.started).as_secs_f64();
        if self.dry_run {
            tracing::info!(cluster = %self.cluster, "dry run: {text}");
            self.done.push(Done { at_s, action, text, dry_run: true });
            return Ok(());
        }
        self.take_lease()?;
        let at_s = (self.backend.now() - self.started).as_secs_f64();
        tracing::info!(cluster = %self.cluster, "{text}");
        let cluster = self.cluster.clone();
        // A timeout or a 5xx may come after the change took effect: only an idempotent action
        // is sent again then; any action is sent again after throttling (never applied).
        let again: fn(&BackendError) -> bool =
            if action.idempotent() { BackendError::retryable } else { |e| matches!(e, BackendError::Throttled { .. }) };
        let result = self.retry_if(|b| b.apply(&cluster, &action), again);
        match result {
            Ok(()) => {
                self.done.push(Done { at_s, action, text, dry_run: false });
                Ok(())
            }
            Err(ExecError::Backend(BackendError::Crashed)) => {
                self.done.push(Done { at_s, action, text, dry_run: false });
                Err(ExecError::Backend(BackendError::Crashed))
            }
            Err(e) => Err(e),
        }
    }

    /// Lets time pass (simulated or real), bounded by the deadline.
    pub fn sleep(&mut self, d: Millis) -> Result<(), ExecError> {
        let d = d.min(self.remaining());
        self.backend.sleep(d)?;
        if !self.dry_run {
            self.renew_lease()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use ballast_core::backend::{GroupInfo, HttpRequest, MetricQuery};

    /// Fails every apply with one error; counts the attempts.
    struct Failing {
        error: BackendError,
        attempts: u32,
        now: Millis,
    }

    impl Backend for Failing {
        fn snapshot(&mut self, _: &str) -> Result<Snapshot, BackendError> {
            unreachable!()
        }
        fn apply(&mut self, _: &str, _: &Action) -> Result<(), BackendError> {
            self.attempts += 1;
            Err(self.error.clone())
        }
        fn cluster_tags(&mut self, _: &str) -> Result<BTreeMap<String, String>, BackendError> {
            Ok(BTreeMap::new())
        }
        fn group(&mut self, _: &str) -> Result<GroupInfo, BackendError> {
            unreachable!()
        }
        fn metric_data(&mut self, _: &[MetricQuery]) -> Result<Vec<Option<f64>>, BackendError> {
            unreachable!()
        }
        fn http(&mut self, _: &HttpRequest) -> Result<Vec<u8>, BackendError> {
            unreachable!()
        }
        fn now(&self) -> Millis {
            self.now
        }
        fn sleep(&mut self, d: Millis) -> Result<(), BackendError> {
            self.now = self.now + d;
            Ok(())
        }
    }

    fn attempts(error: BackendError, action: Action) -> u32 {
        let mut b = Failing { error, attempts: 0, now: Millis(0) };
        let mut ex = Exec::new(&mut b, "shop", false, Millis::mins(14));
        assert!(ex.apply(action).is_err());
        drop(ex);
        b.attempts
    }

    /// A timeout may come after the change took effect: a forced deployment (each one starts
    /// another) is then not sent again; after throttling (a refusal) it is. An idempotent
    /// action is sent again after either, at most EXTRA_ATTEMPTS more times.
    #[test]
    fn only_idempotent_actions_are_resent_after_an_ambiguous_fault() {
        let timeout = || BackendError::Timeout { operation: "UpdateService".into() };
        let throttled = || BackendError::Throttled { operation: "UpdateService".into() };
        let deploy = || Action::ForceNewDeployment { service: "web".into(), reason: "t".into() };
        let desired = || Action::SetServiceDesired { service: "web".into(), desired: 2, reason: "t".into() };
        assert_eq!(attempts(timeout(), deploy()), 1);
        assert_eq!(attempts(throttled(), deploy()), 1 + EXTRA_ATTEMPTS);
        assert_eq!(attempts(timeout(), desired()), 1 + EXTRA_ATTEMPTS);
        assert_eq!(attempts(throttled(), desired()), 1 + EXTRA_ATTEMPTS);
    }
}
