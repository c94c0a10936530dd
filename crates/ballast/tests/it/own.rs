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

#[test]
fn faults_while_rebalancing_leave_nothing_behind() {
    let rows = simulate_json(&own("faults-while-rebalancing.yaml"), "ballast");
    let b = &rows[0];
    assert_eq!(b["tasks_lost"], 0);
    assert_eq!(b["left_draining"], 0);
    assert!(b["min_availability_percent"].as_f64().unwrap() >= 50.0, "{b}");
    let calls = b["api_calls"]["total"].as_u64().unwrap();
    assert!(calls > 0);
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
