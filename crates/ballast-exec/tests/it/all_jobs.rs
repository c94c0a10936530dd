//! Issue [9]'s acceptance, over generated variants of both autoscale scenarios: with every job
//! on (as by default: the definitions' `rebalance: {enabled: false}` taken out), ballast leaves
//! at most 1.1 × the unplaced task-seconds and uses at most 1.05 × the instance-hours of the
//! same definition with autoscale alone, and never leaves more unplaced than ecs-autoscale
//! (to the task-second).

use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_exec::baselines::PolicySpec;
use ballast_exec::policies::make;
use ballast_sim::variants::variant;
use ballast_sim::{RunOptions, Scenario, simulate};

use crate::support::own;

fn report(sc: &Scenario, policy: &str) -> ballast_sim::report::Report {
    let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
    let mut c = make(&PolicySpec::parse(policy).unwrap(), &cfg).unwrap();
    simulate(sc, policy, c.as_mut(), &RunOptions::default()).report
}

#[test]
fn every_job_on_costs_no_more_than_autoscale_alone() {
    for name in ["autoscale-day.yaml", "autoscale-burst.yaml"] {
        let text = std::fs::read_to_string(own(name)).unwrap();
        assert!(text.contains("rebalance: {enabled: false}"));
        let alone = Scenario::parse(&text, name).unwrap();
        let all = Scenario::parse(&text.replace("rebalance: {enabled: false}", "rebalance: {}"), name).unwrap();
        for k in 0..20 {
            let (a, _) = variant(&alone, k);
            let (b, _) = variant(&all, k);
            let (ra, rb, re) = (report(&a, "ballast"), report(&b, "ballast"), report(&b, "ecs-autoscale"));
            let (ua, ub) = (ra.unplaced_task_seconds, rb.unplaced_task_seconds);
            assert!(
                ub <= 1.1 * ua + 1e-6,
                "{name} #{k}: {ub} unplaced task-s with every job, {ua} with autoscale alone"
            );
            assert!(
                rb.instance_hours <= 1.05 * ra.instance_hours,
                "{name} #{k}: {} vs {} instance-h",
                rb.instance_hours,
                ra.instance_hours
            );
            // At task-second resolution: ballast reads the cluster (about eight calls of the
            // simulated 50 ms) before it acts, where ecs-autoscale reads only its metrics, so
            // on the same decision it acts a few hundred milliseconds later (variant 3 of the
            // day: 3920.2 against 3920.0 task-seconds).
            assert!(
                ub <= re.unplaced_task_seconds + 1.0,
                "{name} #{k}: {ub} vs ecs-autoscale's {}",
                re.unplaced_task_seconds
            );
            assert_eq!((rb.tasks_lost, rb.left_draining), (0, 0), "{name} #{k}");
            assert!(rb.errors.is_empty(), "{name} #{k}: {:?}", rb.errors);
        }
    }
}
