//! Issue [12]: `ballast:ignore` on a service or an instance is honoured: the service's tasks
//! are never moved (and it is never autoscaled), an ignored instance is never drained and its
//! tasks never moved; everything else is still balanced.

use std::collections::BTreeSet;

use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_core::model::attr::IGNORE_TAG;
use ballast_exec::baselines::PolicySpec;
use ballast_exec::policies::make;
use ballast_sim::{RunOptions, Scenario, Sim, simulate};

use crate::support::{own, shared};

fn run(sc: &Scenario) -> ballast_sim::Outcome {
    let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
    let mut c = make(&PolicySpec::parse("ballast").unwrap(), &cfg).unwrap();
    simulate(sc, "ballast", c.as_mut(), &RunOptions::default())
}

fn arns(sim: &Sim, service: &str) -> BTreeSet<String> {
    sim.snapshot().service_tasks(service).map(|t| t.arn.clone()).collect()
}

#[test]
fn an_ignored_service_keeps_its_tasks_and_the_others_still_move() {
    let mut sc = Scenario::load(&shared("new-instance-joins.yaml")).unwrap();
    let plain = run(&sc);
    assert!(plain.report.tasks_restarted > 0);
    let i = sc.services.iter().position(|s| s.name == "api").expect("api");
    sc.services[i].tags.insert(IGNORE_TAG.into(), "true".into());
    let start = arns(&Sim::new(&sc), "api");
    let out = run(&sc);
    assert_eq!(arns(&out.sim, "api"), start, "an api task was moved");
    assert!(out.report.tasks_restarted > 0, "the other services still moved");
    assert!(out.report.tasks_restarted < plain.report.tasks_restarted);
}

#[test]
fn an_ignored_instance_is_never_drained_nor_emptied() {
    let tag_all = |sc: &mut Scenario| {
        for g in &mut sc.groups {
            g.tags.insert(IGNORE_TAG.into(), "true".into());
        }
    };
    // Surges move tasks off the busy instances: with every instance ignored, none moves.
    let mut sc = Scenario::load(&shared("new-instance-joins.yaml")).unwrap();
    assert!(run(&sc).report.tasks_restarted > 0);
    tag_all(&mut sc);
    let start: BTreeSet<String> = Sim::new(&sc).snapshot().tasks.iter().map(|t| t.arn.clone()).collect();
    let out = run(&sc);
    assert_eq!(out.report.tasks_restarted, 0, "every instance is ignored: nothing moves");
    let end: BTreeSet<String> = out.sim.snapshot().tasks.iter().map(|t| t.arn.clone()).collect();
    assert!(start.is_subset(&end), "a task on an ignored instance went away");
    // Autoscale gives instances back by draining them: never an ignored one.
    let drains = |o: &ballast_sim::Outcome| {
        o.report.api_calls.by_operation.get("UpdateContainerInstancesState").copied().unwrap_or(0)
    };
    let mut sc = Scenario::load(&own("autoscale-day.yaml")).unwrap();
    assert!(drains(&run(&sc)) > 0, "autoscale-day consolidates");
    tag_all(&mut sc);
    let out = run(&sc);
    assert_eq!(drains(&out), 0, "an ignored instance was drained");
    assert_eq!(out.report.left_draining, 0);
}
