//! Helpers: run the binary, find the shared scenarios, write temporary files, watch a backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, GroupInfo, HttpRequest, MetricQuery};
use ballast_core::duration::Millis;
use ballast_core::model::Snapshot;

/// Runs `ballast` with `args` (no environment leaks from the caller's seed-000 variables).
pub fn ballast(args: &[&str]) -> Output {
    ballast_env(args, &[])
}

/// Runs `ballast` with extra environment variables.
pub fn ballast_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ballast"));
    c.args(args).current_dir(std::env::temp_dir());
    for k in ["DRAIN_SLEEP_TIME", "DRAIN_TIMEOUT", "DRAIN_MAX_INSTANCES", "REBALANCE_MAX_RETRY", "COV_PERCENT"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run ballast")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A contract scenario from ../shared/scenarios.
pub fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/scenarios").join(name)
}

/// A scenario of this repository.
pub fn own(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios").join(name)
}

/// Writes `text` to a fresh temporary file and returns its path.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ballast-it-{}-{}", std::process::id(), name.replace('/', "_")));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `simulate --json` rows by policy.
pub fn simulate_json(scenario: &Path, policies: &str) -> Vec<serde_json::Value> {
    let o = ballast(&["simulate", "--scenario", scenario.to_str().unwrap(), "--policy", policies, "--json"]);
    assert!(o.status.success(), "simulate failed: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    v.as_array().expect("an array").clone()
}

/// `simulate --variants N --json`: the distributions (commands::variants::to_json).
pub fn variants_json(scenario: &Path, policies: &str, n: usize) -> serde_json::Value {
    let n = n.to_string();
    let o = ballast(&[
        "simulate",
        "--scenario",
        scenario.to_str().unwrap(),
        "--policy",
        policies,
        "--variants",
        &n,
        "--json",
    ]);
    assert!(o.status.success(), "simulate --variants failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("valid JSON")
}

/// One figure's distribution for one policy in a [`variants_json`] answer.
pub fn dist<'a>(v: &'a serde_json::Value, figure: &str, policy: &str) -> &'a serde_json::Value {
    &v["figures"][figure]["policies"][policy]
}

/// A number of a [`dist`] (`median`, `worst`, `ballast_worse_in`).
pub fn num(v: &serde_json::Value, figure: &str, policy: &str, what: &str) -> f64 {
    dist(v, figure, policy)[what].as_f64().unwrap_or_else(|| panic!("{figure}/{policy}/{what}: {v}"))
}

/// The row of one policy.
pub fn row<'a>(rows: &'a [serde_json::Value], policy: &str) -> &'a serde_json::Value {
    rows.iter().find(|r| r["policy"] == policy).unwrap_or_else(|| panic!("no row for {policy}"))
}

/// What a [`Tap`] does around the calls it passes through.
pub trait Hooks {
    /// Before each mutating call.
    fn apply(&mut self, _inner: &mut dyn Backend, _cluster: &str, _a: &Action) -> Result<(), BackendError> {
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
        self.hooks.sleep(&mut *self.inner)?;
        self.inner.sleep(d)
    }
}

/// No hooks: only the recording.
pub struct Record;

impl Hooks for Record {}
