//! The contract scenarios, with the figures issues [1] and [2] hold ballast to.

use super::support::*;

#[test]
fn scale_down_then_up_restarts_exactly_one_task() {
    let rows = simulate_json(&shared("scale-down-then-up.yaml"), "ballast,none,redeploy-on-join");
    let b = row(&rows, "ballast");
    assert_eq!(b["tasks_restarted"], 1, "{b}");
    assert_eq!(b["min_moves"], 1);
    assert_eq!(b["min_availability_percent"], 100.0);
    assert_eq!(b["tasks_lost"], 0);
    assert_eq!(b["left_draining"], 0);
    // The instance is ACTIVE 2 minutes after the last event (boot 2m); balanced within one
    // controller period (5m) after that.
    let t = b["time_to_balanced_s"].as_f64().expect("balanced");
    assert!(t <= 120.0 + 300.0, "{t}");
    assert!(row(&rows, "redeploy-on-join")["tasks_restarted"].as_u64().unwrap() >= 2);
    assert!(row(&rows, "none")["final_cov_percent"]["count"].as_f64().unwrap() > 100.0);
}

#[test]
fn new_instance_joins_restarts_close_to_the_lower_bound() {
    let rows = simulate_json(&shared("new-instance-joins.yaml"), "ballast,none,drain-cov,redeploy-on-join");
    let b = row(&rows, "ballast");
    let restarts = b["tasks_restarted"].as_f64().unwrap();
    let lb = b["min_moves"].as_f64().unwrap();
    // Balanced at the end, so by the bound's definition at least `min_moves` restarts; and a
    // regression guard with room: at most half as many again, plus one.
    assert!(lb > 0.0);
    assert!(restarts >= lb, "{restarts} restarts beat the lower bound {lb}");
    // Issue [13]: within 5 % of the fewest restarts to balanced from the same state (the
    // targets and the COV threshold both; `planner::exact`): every 5-restart way to the
    // targets leaves the COV at 25.5 %, so the least is 6.
    let tight = b["min_moves_balanced"].as_f64().unwrap();
    assert!(tight >= lb && b["min_moves_balanced_exact"] == true, "{b}");
    assert!(restarts >= tight && restarts <= 1.05 * tight, "{restarts} restarts vs the bound to balanced {tight}");
    assert_eq!(b["restarts_over_bound"].as_f64(), Some(restarts / tight));
    assert!(b["final_cov_percent"]["count"].as_f64().unwrap() <= 25.0, "{b}");
    assert_eq!(b["min_availability_percent"], 100.0);
    for base in ["drain-cov", "redeploy-on-join"] {
        let other = row(&rows, base)["tasks_restarted"].as_f64().unwrap();
        assert!(restarts <= other / 2.0, "ballast {restarts} vs {base} {other}");
    }
    assert_eq!(b["tasks_lost"], 0);
    assert_eq!(b["left_draining"], 0);
}

#[test]
fn binpack_is_intended_restarts_nothing() {
    let rows = simulate_json(&shared("binpack-is-intended.yaml"), "ballast,drain-cov");
    assert_eq!(row(&rows, "ballast")["tasks_restarted"], 0);
    assert!(row(&rows, "drain-cov")["tasks_restarted"].as_u64().unwrap() > 0);
}

#[test]
fn every_contract_scenario_is_clean_and_deterministic() {
    for name in ["scale-down-then-up.yaml", "new-instance-joins.yaml", "binpack-is-intended.yaml"] {
        let p = shared(name);
        let a = ballast(&["simulate", "--scenario", p.to_str().unwrap(), "--policy", "ballast,none", "--json"]);
        let b = ballast(&["simulate", "--scenario", p.to_str().unwrap(), "--policy", "ballast,none", "--json"]);
        assert!(a.status.success());
        assert_eq!(a.stdout, b.stdout, "{name}: the same seed must give the same report byte for byte");
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&a.stdout).unwrap();
        for r in &rows {
            assert_eq!(r["tasks_lost"], 0, "{name}");
            assert_eq!(r["left_draining"], 0, "{name}");
            assert_eq!(r["errors"], serde_json::json!([]), "{name}: run errors");
            for k in [
                "scenario",
                "policy",
                "seed",
                "tasks_restarted",
                "min_moves",
                "min_moves_balanced",
                "min_moves_balanced_exact",
                "restarts_over_bound",
                "final_cov_percent",
                "time_to_balanced_s",
                "min_availability_percent",
                "unplaced_task_seconds",
                "instance_hours",
                "cost",
                "api_calls",
                "left_draining",
                "tasks_lost",
                "daemon_tasks_stopped",
                "capacity_bound",
                "capacity_ffd",
                "service_availability",
                "errors",
            ] {
                assert!(r.get(k).is_some(), "{name}: report lacks {k}");
            }
            assert!(r["api_calls"]["by_operation"].is_object());
        }
    }
}

#[test]
fn crash_matrix_recovers_every_point() {
    let p = shared("scale-down-then-up.yaml");
    let o = ballast(&["simulate", "--scenario", p.to_str().unwrap(), "--crash-matrix"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let last = stdout(&o).lines().last().unwrap_or("").to_string();
    assert!(
        last.starts_with("crash points: ")
            && last.ends_with(&format!("recovered: {}", last.split(' ').nth(2).unwrap().trim_end_matches(','))),
        "{last}"
    );
    assert_ne!(last, "crash points: 0, recovered: 0");
}

/// `simulate --scheduler-bound`: the bound for policies that restart only through the
/// scheduler is reported beside the balanced one, at least as high, and ballast's stop
/// method does not beat it; the table says it on a line of its own.
#[test]
fn the_scheduler_bound_is_reported_when_asked_for() {
    let p = shared("new-instance-joins.yaml");
    let path = p.to_str().unwrap();
    let out = ballast(&["simulate", "--scenario", path, "--policy", "ballast", "--scheduler-bound", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let b = row(&rows, "ballast");
    let scheduled = b["min_moves_scheduled"].as_u64().expect("asked for");
    assert!(scheduled >= b["min_moves_balanced"].as_u64().unwrap(), "{b}");
    assert!(b["restarts_over_scheduled_bound"].as_f64().expect("ended balanced") >= 1.0, "{b}");
    let without = simulate_json(&p, "ballast");
    assert!(row(&without, "ballast")["min_moves_scheduled"].is_null(), "not asked for");
    let text = ballast(&["simulate", "--scenario", path, "--policy", "ballast", "--scheduler-bound"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("ballast: the fewest restarts to balanced through the scheduler {scheduled}")),
        "{text}"
    );
}
