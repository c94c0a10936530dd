//! Helpers: run the binary, find the shared scenarios, write temporary files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
