//! `status`, `plan` and `run` against a cluster. This version reaches clusters through the
//! built-in simulator (`--backend sim --scenario FILE`, at a simulated time `--at`).

use ballast_core::config::ClusterConfig;
use ballast_core::duration::{Millis, parse_duration};
use ballast_sim::backend::SimBackend;
use ballast_sim::{Scenario, Sim};
use serde_json::json;

use ballast_core::view::Jobs;
use ballast_exec::orchestrate::{self, Cause};
use ballast_exec::policies;

use crate::cli::{ClusterArgs, Global, RunArgs};
use crate::error::{AppError, Result};
use crate::render;

struct Target {
    sc: Scenario,
    sim: Sim,
    cfg: ClusterConfig,
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
    let mut t = target(a, g)?;
    let snap = t.sim.snapshot();
    let names: Vec<String> = t.sc.groups.iter().map(|g| g.name.clone()).collect();
    let groups: Vec<ballast_core::backend::GroupInfo> = {
        use ballast_core::backend::Backend;
        let mut b = ballast_sim::backend::SimBackend::new(&mut t.sim, None);
        names.iter().filter_map(|n| b.group(n).ok()).collect()
    };
    if a.json {
        let mut v = render::status_json(&snap);
        v["groups"] = render::groups_json(&groups);
        let doc = render::document(vec![v], json!([]), &t.sim.acct.api);
        crate::outln!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        crate::outln!("at {} of scenario {}", t.sim.now, t.sc.name);
        crate::out!("{}{}", render::status_text(&snap), render::groups_text(&groups));
    }
    Ok(())
}

/// `ballast plan`: what a run would do now; changes nothing.
pub fn plan(a: &ClusterArgs, g: &Global) -> Result<()> {
    let mut t = target(a, g)?;
    let cluster = t.sc.cluster.clone();
    let mut be = SimBackend::new(&mut t.sim, None).paced(ballast_core::throttle::DEFAULT_SHARE);
    let r = orchestrate::run_cluster(
        &mut be,
        &cluster,
        &t.cfg,
        Jobs::ALL,
        &Cause::default(),
        true,
        policies::RUN_BUDGET,
        true,
    )
    .map_err(|e| AppError::Runtime(format!("cluster {cluster}: {e}")))?;
    drop(be);
    if a.json {
        let v = render::document(vec![render::run_json(&r)], json!([]), &t.sim.acct.api);
        crate::outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        crate::out!("{}", render::run_text(&r));
    }
    Ok(())
}

/// `ballast run`: the jobs once (or, with --dry-run, the actions they would send).
pub fn run(a: &RunArgs, g: &Global) -> Result<()> {
    let mut t = target(&a.target, g)?;
    let cluster = t.sc.cluster.clone();
    let started = t.sim.now;
    // The simulated run honours --deadline as the AWS one does.
    let deadline = parse_duration(&a.deadline).map_err(|e| AppError::Input(format!("--deadline: {e}")))?;
    let r = {
        let mut be = SimBackend::new(&mut t.sim, None).paced(ballast_core::throttle::DEFAULT_SHARE);
        let jobs = super::aws::jobs(a.job);
        let cause = Cause {
            holder: Some(ballast_exec::lease::holder_id("ballast-cli", ballast_core::backend::Backend::now(&be))),
            ..Cause::default()
        };
        orchestrate::run_cluster(&mut be, &cluster, &t.cfg, jobs, &cause, a.dry_run, deadline, true)
            .map_err(|e| AppError::Runtime(format!("cluster {cluster}: {e}")))?
    };
    let after = t.sim.snapshot();
    if a.target.json {
        let mut v = render::run_json(&r);
        v["status_after"] = render::status_json(&after);
        let doc = render::document(vec![v], json!([]), &t.sim.acct.api);
        crate::outln!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        return Ok(());
    }
    crate::out!("{}", render::run_text(&r));
    if a.dry_run {
        crate::outln!("(dry run: nothing was sent; {} simulated)", t.sim.now - started);
    } else {
        crate::outln!("{} simulated", t.sim.now - started);
    }
    Ok(())
}
