//! Scenario parsing tests.

use super::*;

const MIN: &str = "name: t\nduration: 10m\ngroups:\n  - {name: g, instance_type: m5.large, desired: 2}\nservices:\n  - {name: web, desired: 2, cpu: 256, memory: 512}\n";

#[test]
fn parses_the_contract_scenarios() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/scenarios");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries {
        let p = e.unwrap().path();
        let s = Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.groups.is_empty());
    }
}

#[test]
fn minimal_scenario_has_defaults() {
    let s = Scenario::parse(MIN, "t.yaml").unwrap();
    assert_eq!(s.cluster, "t");
    assert_eq!(s.azs, vec!["us-east-1a"]);
    assert_eq!(s.services[0].min_healthy_percent, 100);
    assert_eq!(s.services[0].max_percent, 200);
    assert_eq!(s.services[0].start, Millis::secs(40));
    assert_eq!(s.controller.every, Millis::mins(5));
    assert_eq!(s.groups[0].boot, Millis::mins(2));
}

fn err(text: &str) -> ScenarioError {
    Scenario::parse(text, "bad.yaml").unwrap_err()
}

#[test]
fn unknown_keys_are_errors_with_position() {
    let e = err(&format!("{MIN}colour: red\n"));
    assert_eq!(e.line, 7, "{e}");
    assert!(e.to_string().starts_with("bad.yaml:7:"), "{e}");
    assert!(e.message.contains("colour"), "{e}");
}

#[test]
fn bad_values_name_their_key_and_line() {
    let e = err(&MIN.replace("10m", "10 minutes"));
    assert_eq!((e.line, e.key.as_str()), (2, "duration"), "{e}");
    let e = err(&MIN.replace("m5.large", "m5.huge"));
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("m5.huge"), "{e}");
    let e = err(&format!("{MIN}events:\n  - {{at: 5m, set_group_desired: {{group: nope, desired: 1}}}}\n"));
    assert_eq!(e.line, 8, "{e}");
    assert!(e.key.contains("group") && e.message.contains("nope"), "{e}");
    let e = err(&format!("{MIN}events:\n  - {{at: 5m, set_service_desired: {{service: api, desired: 1}}}}\n"));
    assert!(e.message.contains("unknown service `api`"), "{e}");
    let e = err(&MIN.replace("cpu: 256,", "cpu: 256, strategy: [binpack(disk)],"));
    assert!(e.key.ends_with("strategy"), "{e}");
    let e = err(&format!("{MIN}events:\n  - {{at: 11m, set_group_desired: {{group: g, desired: 1}}}}\n"));
    assert!(e.message.contains("after the scenario's duration"), "{e}");
    let e = err(&format!("{MIN}events:\n  - {{at: 1m}}\n"));
    assert!(e.message.contains("needs one of"), "{e}");
    let e = err("name: [unclosed\n");
    assert!(e.line >= 1, "{e}");
}

#[test]
fn sizes_beyond_ecs_limits_are_refused() {
    let e = err(&MIN.replace("desired: 2}", "desired: 2, max: 9000}"));
    assert!(e.message.contains("5000 instances"), "{e}");
    let e = err(&MIN.replace("desired: 2, cpu", "desired: 99999, cpu"));
    assert!(e.message.contains("5000 tasks"), "{e}");
}

#[test]
fn tells_the_key_path_of_a_position() {
    let t = "clusters:\n  prod:\n    rebalance:\n      cov_percent: lots\n      drain: {timeout: [1], x: 2}\n    spot_fallback:\n      groups:\n        - spot: a\n          weight: x\n        - spot: b\n          weight: y\n";
    assert_eq!(key_path_at(t, 4, 20).as_deref(), Some("clusters.prod.rebalance.cov_percent"));
    assert_eq!(key_path_at(t, 5, 24).as_deref(), Some("clusters.prod.rebalance.drain.timeout"));
    assert_eq!(key_path_at(t, 9, 19).as_deref(), Some("clusters.prod.spot_fallback.groups[0].weight"));
    assert_eq!(key_path_at(t, 11, 19).as_deref(), Some("clusters.prod.spot_fallback.groups[1].weight"));
    assert_eq!(key_path_at(t, 10, 17).as_deref(), Some("clusters.prod.spot_fallback.groups[1].spot"));
    assert_eq!(key_path_at(t, 3, 5).as_deref(), Some("clusters.prod.rebalance"));
    assert_eq!(key_path_at(t, 99, 1), None);
    let flat = "a:\n- b: 1\n  c: x\n";
    assert_eq!(key_path_at(flat, 3, 6).as_deref(), Some("a[0].c"));
}

#[test]
fn suggests_the_key_a_typo_meant() {
    assert_eq!(did_you_mean("sleep_tme", ["sleep_time", "timeout"]), Some("sleep_time"));
    assert_eq!(did_you_mean("xyz", ["sleep_time", "timeout"]), None);
    assert_eq!(
        with_suggestion("unknown field `desird`, expected one of name, desired, cpu"),
        "unknown field `desird`, expected one of name, desired, cpu; did you mean `desired`?"
    );
    assert_eq!(with_suggestion("invalid type"), "invalid type");
    let e = Scenario::parse(
        "name: t\nduration: 10m\ngroups:\n  - {name: g, instance_type: m5.large, desird: 2}\n",
        "t.yaml",
    )
    .unwrap_err();
    assert!(e.to_string().contains("did you mean `desired`?"), "{e}");
}
