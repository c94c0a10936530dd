//! This repository's own scenarios: no headroom, the other methods, faults, a large cluster.

use super::support::*;

#[test]
fn no_headroom_restarts_nothing_and_says_why() {
    let rows = simulate_json(&own("no-headroom.yaml"), "ballast");
    assert_eq!(rows[0]["tasks_restarted"], 0);
    let o =
        ballast(&["plan", "--backend", "sim", "--scenario", own("no-headroom.yaml").to_str().unwrap(), "--at", "10m"]);
    let out = stdout(&o);
    assert!(out.contains("cannot improve") && out.contains("maximumPercent 100"), "{out}");
}

#[test]
fn drain_method_refuses_a_drain_that_only_swaps_load() {
    let rows = simulate_json(&own("drain-method.yaml"), "ballast,drain-cov");
    assert_eq!(row(&rows, "ballast")["tasks_restarted"], 0);
    assert_eq!(row(&rows, "ballast")["left_draining"], 0);
    assert!(row(&rows, "drain-cov")["tasks_restarted"].as_u64().unwrap() > 0);
}

#[test]
fn redeploy_method_stays_within_the_health_budget() {
    let rows = simulate_json(&own("redeploy-method.yaml"), "ballast");
    let b = &rows[0];
    assert!(b["tasks_restarted"].as_u64().unwrap() > 0);
    assert!(b["min_availability_percent"].as_f64().unwrap() >= 50.0, "{b}");
    assert!(b["final_cov_percent"]["count"].as_f64().unwrap() < 30.0, "{b}");
    assert_eq!(b["tasks_lost"], 0);
}

/// Half the calls fail for half an hour: runs fail (each is reported, and `simulate` exits 1
/// because ballast's own runs errored), and whatever a failed run started is undone or
/// finished by the next: nothing lost, nothing left DRAINING, no budget broken, and the
/// cluster still ends balanced.
#[test]
fn faults_while_rebalancing_leave_nothing_behind() {
    let p = own("faults-while-rebalancing.yaml");
    let o = ballast(&["simulate", "--scenario", p.to_str().unwrap(), "--policy", "ballast", "--json"]);
    assert_eq!(o.status.code(), Some(1), "ballast's errors surface: {}", stderr(&o));
    assert!(stderr(&o).contains("ballast: ") && stderr(&o).contains("run error(s)"), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).expect("the report is still printed");
    let b = &rows[0];
    let errors = b["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    for e in errors {
        let e = e.as_str().unwrap();
        assert!(
            e.contains("throttled") || e.contains("server error") || e.contains("timed out"),
            "only the injected faults: {e}"
        );
    }
    assert_eq!(b["tasks_lost"], 0);
    assert_eq!(b["left_draining"], 0);
    for (name, a) in b["service_availability"].as_object().unwrap() {
        assert!(a["min_percent"].as_f64() >= a["budget_percent"].as_f64(), "{name}: {a}");
    }
    assert!(b["final_cov_percent"]["count"].as_f64().unwrap() <= 25.0, "{b}");
}

#[test]
fn large_mixed_cluster_stays_close_to_the_bound() {
    let rows = simulate_json(&own("large-mixed.yaml"), "ballast,none");
    let b = row(&rows, "ballast");
    let restarts = b["tasks_restarted"].as_f64().unwrap();
    let lb = b["min_moves"].as_f64().unwrap();
    assert!(restarts <= 1.2 * lb.max(1.0), "{restarts} vs {lb}");
    assert_eq!(b["min_availability_percent"], 100.0);
    assert_eq!(b["tasks_lost"], 0);
    assert!(b["final_cov_percent"]["count"].as_f64() < row(&rows, "none")["final_cov_percent"]["count"].as_f64());
}

/// Issue [6]'s claim, over generated variants of a 30-minute full Spot outage and a partial
/// interruption, with the Spot capacity read from Fleet metrics and from a Spot Auto Scaling
/// group: ballast never loses a task (seed 004 scales in without draining, so it does), never
/// leaves more tasks unplaced than seed 004 in any variant, leaves at most a fifth of what
/// doing nothing leaves (median), and costs at most a quarter more than seed 004 (median).
#[test]
fn spot_fallback_covers_an_outage_and_gives_capacity_back_by_draining() {
    for name in ["spot-outage.yaml", "spot-group-outage.yaml"] {
        let v = variants_json(&own(name), "ballast,spot-pending,none", 10);
        assert_eq!(num(&v, "tasks_lost", "ballast", "worst"), 0.0, "{name}");
        assert!(num(&v, "tasks_lost", "spot-pending", "median") > 0.0, "{name}: seed 004 kills tasks on scale-in");
        assert_eq!(num(&v, "unplaced_task_seconds", "spot-pending", "ballast_worse_in"), 0.0, "{name}");
        let b = num(&v, "unplaced_task_seconds", "ballast", "median");
        assert!(b * 5.0 <= num(&v, "unplaced_task_seconds", "none", "median"), "{name}: {b}");
        assert!(num(&v, "cost", "ballast", "median") <= 1.25 * num(&v, "cost", "spot-pending", "median"), "{name}");
    }
    let rows = simulate_json(&own("spot-outage.yaml"), "ballast");
    let b = row(&rows, "ballast");
    assert_eq!(b["left_draining"], 0);
    assert!(b["api_calls"]["by_operation"]["SetDesiredCapacity"].as_u64().unwrap() > 0);
    assert!(b["api_calls"]["by_operation"]["TerminateInstanceInAutoScalingGroup"].as_u64().unwrap() > 0);
}

#[test]
fn spot_fallback_configuration_errors_name_the_key() {
    let bad = [
        ("spot_fallback: {on_demand_group: od}", "spot_fallback.fleet_request_id"),
        ("spot_fallback: {fleet_request_id: sfr-1, on_demand_group: od, units_per_instance: 0}", "units_per_instance"),
        ("spot_fallback: {fleet_request_id: sfr-1, on_demand_group: od, settle_window: 2h}", "settle_window"),
        ("spot_fallback: {fleet_request_id: sfr-1, on_demand_group: od, source: pool}", "spot_fallback.source"),
        ("spot_fallback: {fleet_request_id: sfr-1, on_demand_group: od, cooldown: 5m}", "cooldown"),
    ];
    for (section, key) in bad {
        let cfg = temp_file("spot.yaml", &format!("clusters:\n  shop:\n    {section}\n"));
        let o = ballast(&["validate", "--config", cfg.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{section}");
        assert!(stderr(&o).contains(key) && stderr(&o).contains("spot.yaml:"), "{section}: {}", stderr(&o));
    }
    let good = temp_file(
        "spot.yaml",
        "clusters:\n  shop:\n    spot_fallback: {fleet_request_id: sfr-1, on_demand_group: od, units_per_instance: 2, settle_window: 10m}\n",
    );
    let o = ballast(&["validate", "--config", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The policy for it adds exactly the Auto Scaling and CloudWatch calls, scoped to the group.
    let o = ballast(&["iam-policy", "--config", good.to_str().unwrap()]);
    let text = stdout(&o);
    for a in [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "cloudwatch:GetMetricData",
        "autoscaling:DescribeAutoScalingGroups",
    ] {
        assert!(text.contains(a), "{a}: {text}");
    }
    assert!(text.contains("autoScalingGroupName/od"), "{text}");
}
