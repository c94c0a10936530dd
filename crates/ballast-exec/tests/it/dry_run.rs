//! The dry run is the run (issue [9]): on every scenario, the actions `plan` and `run
//! --dry-run` show are the actions the run sends, when nothing changes in between. Lease calls
//! are the run's own (a dry run takes no lease), and a task a surge starts is unknown before
//! it starts: the dry run shows `(new task N of SERVICE)` where the run names it.

use ballast_core::action::Action;
use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_core::duration::Millis;
use ballast_core::duration::Millis as Budget;
use ballast_core::view::Jobs;
use ballast_exec::orchestrate::{Cause, run_cluster};
use ballast_sim::backend::SimBackend;
use ballast_sim::{Scenario, Sim};

/// An action with its operation and targets, task lists sorted and merged across batches, a
/// task the view did not know written `(new)`.
fn normalised(actions: &[Action], known: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut protection: Option<(bool, Vec<String>)> = None;
    let flush = |out: &mut Vec<String>, p: &mut Option<(bool, Vec<String>)>| {
        if let Some((on, mut arns)) = p.take() {
            arns.sort();
            out.push(format!("SetTaskProtection {on} {arns:?}"));
        }
    };
    for a in actions {
        match a {
            Action::TagCluster { .. } | Action::UntagCluster { .. } => {}
            Action::SetTaskProtection { task_arns, protected, .. } => {
                let names: Vec<String> =
                    task_arns.iter().map(|t| if known.contains(t) { t.clone() } else { "(new)".into() }).collect();
                match &mut protection {
                    Some((on, list)) if on == protected => list.extend(names),
                    _ => {
                        flush(&mut out, &mut protection);
                        protection = Some((*protected, names));
                    }
                }
            }
            Action::TagService { service, key, value } => {
                // The surge tag names the run that holds the lease; a dry run holds none.
                flush(&mut out, &mut protection);
                let v = value.split('@').next().unwrap_or(value);
                out.push(format!("TagResource {service} {key}={v}"));
            }
            other => {
                flush(&mut out, &mut protection);
                out.push(format!("{} {}", other.operation(), other));
            }
        }
    }
    flush(&mut out, &mut protection);
    out
}

fn scenarios() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for dir in ["../../../shared/scenarios", "../../scenarios"] {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn on_every_scenario_the_dry_run_shows_what_the_run_sends() {
    let mut planned_something = 0;
    for path in scenarios() {
        let sc = Scenario::load(&path).unwrap();
        let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
        // Where `plan` looks by default: 5 minutes after the last event (faults left out: they
        // are changes), with time for every step (a Lambda's 14 minutes leave the last surges to
        // the next run).
        let at = (sc.last_event_at() + Millis::mins(5)).min(sc.duration);
        let mut quiet = sc.clone();
        quiet.events.retain(|e| !matches!(e.kind, ballast_sim::scenario::EventKind::ApiFaults { .. }));
        let setup = || {
            let mut sim = Sim::new(&quiet);
            sim.advance_to(at);
            sim.triggers.clear();
            sim
        };
        let mut a = setup();
        let dry = run_cluster(
            &mut SimBackend::new(&mut a, None),
            &sc.cluster,
            &cfg,
            Jobs::ALL,
            &Cause::default(),
            true,
            Budget::mins(120),
            false,
        )
        .unwrap();
        let known: std::collections::BTreeSet<String> = a.snapshot().tasks.iter().map(|t| t.arn.clone()).collect();
        let mut b = setup();
        let cause = Cause { holder: Some("test".into()), ..Cause::default() };
        let run = run_cluster(
            &mut SimBackend::new(&mut b, None),
            &sc.cluster,
            &cfg,
            Jobs::ALL,
            &cause,
            false,
            Budget::mins(120),
            false,
        )
        .unwrap();
        let shown: Vec<Action> = dry.actions.iter().map(|d| d.action.clone()).collect();
        let sent: Vec<Action> = run.actions.iter().map(|d| d.action.clone()).collect();
        let o = run.outcome.as_ref().unwrap();
        assert!(
            o.steps.iter().all(|s| s.result == ballast_exec::execute::StepResult::Done),
            "{}: every step ran as planned: {:?}",
            path.display(),
            o.steps
        );
        assert_eq!(normalised(&shown, &known), normalised(&sent, &known), "{}", path.display());
        if !shown.is_empty() {
            planned_something += 1;
        }
    }
    assert!(planned_something >= 4, "only {planned_something} scenarios planned anything");
}
