//! `ballast simulate`: the scenario under each policy, side by side; `--crash-matrix`.

use std::io::{IsTerminal, Write};

use ballast_core::config::ClusterConfig;
use ballast_sim::{Outcome, RunOptions, Scenario, simulate};

use crate::cli::SimulateArgs;
use crate::error::{AppError, Result};
use crate::{html, render};
use ballast_exec::baselines::PolicySpec;
use ballast_exec::policies;

/// Parses `--policy`: each entry a policy spec (`NAME[:key=value]*`), checked by building it.
pub fn policy_list(text: &str, cfg: &ClusterConfig) -> Result<Vec<PolicySpec>> {
    let list: Vec<&str> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if list.is_empty() {
        return Err(AppError::Input("--policy: give at least one policy".into()));
    }
    let mut specs = Vec::new();
    for p in list {
        let spec = PolicySpec::parse(p).map_err(|e| AppError::Input(format!("--policy: {e}")))?;
        policies::make(&spec, cfg).map_err(AppError::Input)?;
        specs.push(spec);
    }
    Ok(specs)
}

/// What the report's restart bounds may spend (`--bound-work`) and whether the scheduler
/// bound is worked out too (`--scheduler-bound`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds {
    /// Work per bound (`None`: the default).
    pub work: Option<u64>,
    /// Work out `min_moves_scheduled`.
    pub scheduler: bool,
}

/// Runs one policy over the scenario (progress on a terminal only).
pub fn run_policy(
    sc: &Scenario,
    spec: &PolicySpec,
    cfg: &ClusterConfig,
    crash_after: Option<u64>,
    quiet: bool,
    bounds: Bounds,
) -> Outcome {
    let mut ctrl = policies::make(spec, cfg).expect("checked by policy_list");
    let name = spec.text();
    let show = !quiet && std::io::stderr().is_terminal();
    let progress = |f: f64| {
        eprint!("\r{name}: {:>3.0}% of {} simulated", f * 100.0, sc.duration);
        let _ = std::io::stderr().flush();
    };
    let opts = RunOptions {
        crash_after,
        progress: if show { Some(&progress) } else { None },
        bound_work: bounds.work,
        scheduler_bound: bounds.scheduler,
        ..RunOptions::default()
    };
    let out = simulate(sc, &name, ctrl.as_mut(), &opts);
    if show {
        eprint!("\r{:60}\r", "");
    }
    out
}

/// The command.
pub fn run(a: &SimulateArgs, config: Option<&std::path::Path>) -> Result<()> {
    let mut sc = super::load_scenario(&a.scenario)?;
    if let Some(k) = a.variant {
        sc = ballast_sim::variants::variant(&sc, k).0;
    }
    let cfg = super::sim_config(&sc, config)?;
    let names = policy_list(&a.policy, &cfg)?;
    if a.crash_matrix {
        if a.variants.is_some() || a.report.is_some() || a.timeline || a.journal || a.policy != "ballast" {
            return Err(AppError::Input(
                "--crash-matrix runs ballast alone and prints its own verdict; drop --variants, --report, --timeline and --policy".into(),
            ));
        }
        return crash_matrix(&sc, &cfg, a.json);
    }
    if let Some(n) = a.variants {
        if n == 0 || n > 1000 {
            return Err(AppError::Input("--variants: give a number of variants from 1 to 1000".into()));
        }
        if a.report.is_some() || a.timeline {
            return Err(AppError::Input(
                "--variants prints distributions; --report and --timeline show one run (drop them, or --variants)"
                    .into(),
            ));
        }
        let (infos, rows) = super::variants::run_all(&sc, &names, &cfg, n, a.json);
        if a.json {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&super::variants::to_json(&sc, &names, &infos, &rows))
                    .expect("serialisable")
            );
        } else {
            crate::out!("{}", super::variants::to_text(&sc, &names, &infos, &rows));
        }
        let all: Vec<_> = rows.into_iter().flatten().collect();
        return errors_of(&all);
    }
    let runs: Vec<Outcome> = names
        .iter()
        .map(|n| run_policy(&sc, n, &cfg, None, a.json, Bounds { work: a.bound_work, scheduler: a.scheduler_bound }))
        .collect();
    if a.timeline {
        for (n, o) in names.iter().zip(&runs) {
            crate::errln!("timeline of {}:", n.text());
            for s in &o.timeline {
                crate::errln!(
                    "  {:>6.0}s instances {:>3} unplaced {:>3} availability {:>5.1}% count COV {:>5.1}%",
                    s.t,
                    s.instances,
                    s.unplaced,
                    s.availability,
                    s.cov_count
                );
            }
        }
    }
    if a.journal {
        for (n, o) in names.iter().zip(&runs).filter(|(_, o)| !o.journal.is_empty()) {
            crate::errln!("journal of {}:", n.text());
            for l in &o.journal {
                crate::errln!("  {l}");
            }
        }
    }
    let reports: Vec<_> = runs.iter().map(|o| o.report.clone()).collect();
    if a.json {
        // SPEC's array of reports, each carrying the schema version (docs/json.md).
        let rows: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("serialisable");
                v["schema_version"] = serde_json::json!(render::SCHEMA_VERSION);
                v
            })
            .collect();
        crate::outln!("{}", serde_json::to_string_pretty(&rows).expect("serialisable"));
    } else {
        crate::outln!("scenario {} (seed {}, {} simulated)", sc.name, sc.seed, sc.duration);
        crate::out!("{}", render::report_table(&reports));
    }
    if let Some(path) = &a.report {
        let pairs: Vec<_> = runs.iter().map(|o| (o.report.clone(), o.timeline.clone())).collect();
        let text = if path.extension().is_some_and(|e| e == "svg") {
            // Every chart of the HTML page, one under another.
            html::svg(&pairs)
        } else {
            html::page(&sc.name, &pairs)
        };
        std::fs::write(path, text)
            .map_err(|e| AppError::Runtime(format!("{}: cannot write the report: {e}", path.display())))?;
        if !a.json {
            crate::outln!("report written to {}", path.display());
        }
    }
    errors_of(&reports)
}

/// Prints each policy's run errors (a few each) on stderr; ballast's own make the command
/// fail (exit 1), a baseline's are its tool's and only reported.
pub fn errors_of(reports: &[ballast_sim::report::Report]) -> Result<()> {
    let mut ours = 0;
    for r in reports.iter().filter(|r| !r.errors.is_empty()) {
        crate::errln!("{}: {} run error(s):", r.policy, r.errors.len());
        for e in r.errors.iter().take(5) {
            crate::errln!("  {e}");
        }
        if r.errors.len() > 5 {
            crate::errln!("  and {} more", r.errors.len() - 5);
        }
        if r.policy == "ballast" {
            ours += r.errors.len();
        }
    }
    if ours > 0 {
        return Err(AppError::Runtime(format!("ballast's runs met {ours} error(s) (listed above)")));
    }
    Ok(())
}

/// One crash point's verdict.
#[derive(Debug, serde::Serialize)]
pub struct CrashPoint {
    /// Killed right after this mutating call.
    pub after_call: u64,
    /// Every invariant held at the end.
    pub recovered: bool,
    /// What failed, if anything.
    pub problems: Vec<String>,
}

/// Kills ballast after each of its mutating calls in turn; the next scheduled run must
/// leave nothing DRAINING, nothing surged, no task lost, no service below its budget.
pub fn crash_matrix(sc: &Scenario, cfg: &ClusterConfig, json: bool) -> Result<()> {
    let ballast = PolicySpec::parse("ballast").expect("a plain name");
    let base = run_policy(sc, &ballast, cfg, None, true, Bounds::default());
    let n = base.mutations;
    let min_budget =
        sc.services.iter().filter(|s| !s.daemon).map(|s| s.min_healthy_percent as f64).fold(100.0, f64::min);
    let show = !json && std::io::stderr().is_terminal();
    let mut points = Vec::new();
    for k in 1..=n {
        if show {
            eprint!("\rcrash point {k}/{n}");
        }
        let out = run_policy(sc, &ballast, cfg, Some(k), true, Bounds::default());
        let r = &out.report;
        let mut problems = Vec::new();
        if r.left_draining > 0 {
            problems.push(format!("{} instance(s) left DRAINING", r.left_draining));
        }
        if r.tasks_lost > 0 {
            problems.push(format!("{} task(s) lost", r.tasks_lost));
        }
        if r.min_availability_percent + 1e-9 < min_budget {
            problems.push(format!("availability fell to {:.1}% (budget {min_budget}%)", r.min_availability_percent));
        }
        let snap = out.sim.snapshot();
        for s in &snap.services {
            if s.tags.contains_key(ballast_core::jobs::SURGE_TAG) {
                problems.push(format!("{} still carries the surge tag", s.name));
            }
        }
        for (svc, spec) in out.sim.svcs.iter().zip(&sc.services) {
            if !spec.daemon && svc.desired != svc.scenario_desired {
                problems
                    .push(format!("{} left at desired {} (scenario: {})", svc.name, svc.desired, svc.scenario_desired));
            }
        }
        points.push(CrashPoint { after_call: k, recovered: problems.is_empty(), problems });
    }
    if show {
        eprint!("\r{:40}\r", "");
    }
    let recovered = points.iter().filter(|p| p.recovered).count();
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&points).expect("serialisable"));
    } else {
        for p in points.iter().filter(|p| !p.recovered) {
            crate::outln!("crash after call {}: {}", p.after_call, p.problems.join("; "));
        }
    }
    crate::outln!("crash points: {n}, recovered: {recovered}");
    if recovered as u64 != n {
        return Err(AppError::Runtime(format!("{} crash point(s) did not recover", n - recovered as u64)));
    }
    Ok(())
}
