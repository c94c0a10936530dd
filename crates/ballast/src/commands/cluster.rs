//! `status`, `plan` and `run` against a cluster. This version reaches clusters through the
//! built-in simulator (`--backend sim --scenario FILE`, at a simulated time `--at`).

use ballast_core::config::RebalanceConfig;
use ballast_core::duration::{Millis, parse_duration};
use ballast_core::planner;
use ballast_sim::backend::SimBackend;
use ballast_sim::{Scenario, Sim};
use serde_json::json;

use crate::cli::{ClusterArgs, Global, Job, RunArgs};
use crate::error::{AppError, Result};
use crate::exec::Exec;
use crate::jobs::rebalance;
use crate::{policies, render};

struct Target {
    sc: Scenario,
    sim: Sim,
    cfg: RebalanceConfig,
}

fn target(a: &ClusterArgs, g: &Global) -> Result<Target> {
    let Some(path) = &a.scenario else {
        return Err(AppError::Input(
            "no cluster to talk to: this version reaches clusters through the built-in simulator; \
             pass --backend sim --scenario FILE (see SPEC.md, Scenario format v1)"
                .into(),
        ));
    };
    let sc = super::load_scenario(path)?;
    if let Some(c) = &a.cluster
        && c != &sc.cluster
    {
        return Err(AppError::Input(format!("--cluster {c}: the scenario simulates cluster `{}`", sc.cluster)));
    }
    let at = match &a.at {
        Some(t) => parse_duration(t).map_err(|e| AppError::Input(format!("--at: {e}")))?,
        None => (sc.last_event_at() + Millis::mins(5)).min(sc.duration),
    };
    if at > sc.duration {
        return Err(AppError::Input(format!("--at {at} is after the scenario's duration ({})", sc.duration)));
    }
    let cfg = super::sim_config(&sc, g.config.as_deref())?;
    let mut sim = Sim::new(&sc);
    sim.advance_to(at);
    sim.triggers.clear();
    Ok(Target { sc, sim, cfg })
}

/// `ballast status`.
pub fn status(a: &ClusterArgs, g: &Global) -> Result<()> {
    let t = target(a, g)?;
    let snap = t.sim.snapshot();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json!({"clusters": [render::status_json(&snap)]})).expect("json"));
    } else {
        println!("at {} of scenario {}", t.sim.now, t.sc.name);
        print!("{}", render::status_text(&snap));
    }
    Ok(())
}

/// `ballast plan`: what a run would do now; changes nothing.
pub fn plan(a: &ClusterArgs, g: &Global) -> Result<()> {
    let mut t = target(a, g)?;
    let snap = t.sim.snapshot();
    let p = planner::plan(&snap, &t.cfg);
    let cluster = t.sc.cluster.clone();
    let mut be = SimBackend::new(&mut t.sim, None);
    let mut ex = Exec::new(&mut be, &cluster, true, policies::RUN_BUDGET);
    rebalance::run(&mut ex, &t.cfg).map_err(|e| AppError::Runtime(e.to_string()))?;
    if a.json {
        let v = json!({"clusters": [{"cluster": cluster, "plan": p, "actions": ex.done}]});
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print!("{}", render::plan_text(&p, &snap));
        for d in &ex.done {
            println!("  would: {}", d.text);
        }
    }
    Ok(())
}

/// `ballast run`: the jobs once (or, with --dry-run, the actions they would send).
pub fn run(a: &RunArgs, g: &Global) -> Result<()> {
    let mut t = target(&a.target, g)?;
    let before = t.sim.snapshot();
    let cluster = t.sc.cluster.clone();
    let started = t.sim.now;
    let (outcome, done) = {
        let mut be = SimBackend::new(&mut t.sim, None);
        let mut ex = Exec::new(&mut be, &cluster, a.dry_run, policies::RUN_BUDGET);
        let outcome = match a.job {
            Job::Rebalance | Job::All => {
                rebalance::run(&mut ex, &t.cfg).map_err(|e| AppError::Runtime(format!("cluster {cluster}: {e}")))?
            }
        };
        (outcome, ex.done)
    };
    let after = t.sim.snapshot();
    if a.target.json {
        let v = json!({"clusters": [{"cluster": cluster, "dry_run": a.dry_run, "outcome": outcome, "actions": done,
            "status_after": render::status_json(&after)}]});
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    print!("{}", render::plan_text(&outcome.plan, &before));
    for r in &outcome.recovered {
        println!("  recovered: {r}");
    }
    for d in &done {
        println!("  {:>7.0}s {}{}", d.at_s - started.as_secs_f64(), if d.dry_run { "would: " } else { "" }, d.text);
    }
    if let Some(why) = &outcome.stopped_early {
        println!("  stopped early: {why}");
    }
    if !a.dry_run {
        println!("{} restart(s) in {} step(s); {} later:", outcome.restarts, outcome.steps, t.sim.now - started);
        print!("{}", render::status_text(&after));
    }
    Ok(())
}
