//! The autoscale job: seed 003's definitions load unchanged, as a directory of `<cluster>.yml`
//! files and as the `autoscale` section of ballast.yaml, with `%(VAR)`; the job itself against
//! the baselines on the simulator.

use super::support::*;

/// A fresh directory holding one file; returns the directory.
fn dir_with(dir: &str, file: &str, text: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ballast-it-{}-{dir}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(file), text).unwrap();
    d
}

/// The example definition from seed 003's README, with its RabbitMQ URL written the way the
/// README recommends (credentials from `%(USERNAME)` and `%(PASSWORD)`).
fn seed_example() -> String {
    let seed = std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("003_"))
        .expect("seed 003");
    let text = std::fs::read_to_string(seed.path()).unwrap();
    let start = text.find("# Exact name of the autoscaling group.").expect("the example's first line");
    let end = text[start..].find("NOTE: You may not want").expect("the note after the example") + start;
    text[start..end].replace(
        "https://username:password@my_rabbitmq_host.com",
        "https://%(USERNAME):%(PASSWORD)@my_rabbitmq_host.com",
    )
}

#[test]
fn seed_003s_example_validates_as_written_in_both_forms() {
    let example = seed_example();
    let dir = dir_with("defs", "my_cluster.yml", &example);
    let vars = [("USERNAME", "guest"), ("PASSWORD", "s3cret")];
    let o = ballast_env(&["validate", "--config", dir.to_str().unwrap()], &vars);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("my_cluster"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("s3cret") && !stderr(&o).contains("s3cret"), "credentials never printed");
    let indented: String = example.lines().map(|l| format!("      {l}\n")).collect();
    let cfg = temp_file("as-section.yaml", &format!("clusters:\n  my_cluster:\n    autoscale:\n{indented}"));
    let o = ballast_env(&["validate", "--config", cfg.to_str().unwrap()], &vars);
    assert!(o.status.success(), "{}", stderr(&o));
    // A missing variable exits 2 naming it, with its position.
    let o = ballast_env(&["validate", "--config", dir.to_str().unwrap()], &[("USERNAME", "guest")]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("%(PASSWORD)") && e.contains("my_cluster.yml:") && !e.contains("guest"), "{e}");
}

#[test]
fn metric_arithmetic_is_parsed_never_executed() {
    let base = "autoscale_group: asg\nservices:\n  worker:\n    min: 1\n    max: 3\n    metric_sources:\n      cloudwatch:\n        - {namespace: AWS/ECS, metric_name: CPUUtilization, period: 300, statistics: [{name: Average, alias: cpu}]}\n    events:\n      - {metric: \"METRIC\", action: 1, min: 5, max: null}\n";
    for (metric, wanted) in [
        ("__import__('os').system('true')", "column 12"),
        ("cpu; import os", "column 4"),
        ("cpu_usage * 2", "`cpu_usage` is not an alias"),
        ("open(cpu)", "not a function"),
        ("cpu +", "ends too early"),
    ] {
        let dir = dir_with(&format!("bad-{}", metric.len()), "c.yml", &base.replace("METRIC", metric));
        let o = ballast(&["validate", "--config", dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{metric}");
        assert!(stderr(&o).contains(wanted) && stderr(&o).contains("events[0].metric"), "{metric}: {}", stderr(&o));
    }
    let dir = dir_with("good", "c.yml", &base.replace("METRIC", "max([cpu, 2]) ** 2 - abs(-cpu) / 3"));
    let o = ballast(&["validate", "--config", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Over a day of demand and over two bursts, ballast's autoscale job leaves far fewer tasks
/// unplaced than ecs-autoscale (never more), loses nothing, leaves nothing draining, costs no
/// availability, and stays close to the per-moment bin-packing bound of the demand it set.
#[test]
fn autoscale_beats_ecs_autoscale_over_a_day_and_over_bursts() {
    for sc in ["autoscale-day.yaml", "autoscale-burst.yaml", "autoscale-faults.yaml"] {
        let rows = simulate_json(&own(sc), "ballast,ecs-autoscale,capacity-provider,none");
        let (b, e, cp) = (row(&rows, "ballast"), row(&rows, "ecs-autoscale"), row(&rows, "capacity-provider"));
        let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap();
        assert_eq!((b["tasks_lost"].as_u64(), b["left_draining"].as_u64()), (Some(0), Some(0)), "{sc}: {b}");
        assert_eq!(f(b, "min_availability_percent"), 100.0, "{sc}: {b}");
        let (bu, eu) = (f(b, "unplaced_task_seconds"), f(e, "unplaced_task_seconds"));
        assert!(bu * 2.0 <= eu, "{sc}: ballast leaves far fewer tasks unplaced: {bu} vs {eu}");
        assert!(f(b, "instance_hours") < f(cp, "instance_hours"), "{sc}: less capacity than capacity-provider");
        let ratio = f(b, "instance_hours") / b["capacity_bound"]["instance_hours"].as_f64().unwrap();
        assert!((0.9..1.15).contains(&ratio), "{sc}: ratio to the bound {ratio}");
        let ops = &b["api_calls"]["by_operation"];
        assert!(
            ops["UpdateService"].as_u64() > Some(0) && ops["TerminateInstanceInAutoScalingGroup"].as_u64() > Some(0)
        );
    }
}

/// A directory of seed 003 `<cluster>.yml` files drives the simulated cluster of that name:
/// the drop-in path, autoscale alone.
#[test]
fn a_seed_003_directory_runs_the_autoscale_job_in_the_simulator() {
    let text = std::fs::read_to_string(own("autoscale-day.yaml")).unwrap();
    let start = text.find("    autoscale:\n").unwrap() + "    autoscale:\n".len();
    let def: String = text[start..].lines().map(|l| format!("{}\n", l.get(6..).unwrap_or(""))).collect();
    let dir = dir_with("dropin", "autoscale-day.yml", &def);
    let o = ballast(&[
        "simulate",
        "--scenario",
        own("autoscale-day.yaml").to_str().unwrap(),
        "--config",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let same = row(&simulate_json(&own("autoscale-day.yaml"), "ballast"), "ballast").clone();
    assert_eq!(v[0]["instance_hours"], same["instance_hours"], "the file and the section are the same job");
}

/// What the simulator can check before it runs is refused with exit 2: a DAEMON service has
/// no desired count to scale, and the group must exist.
#[test]
fn daemon_services_and_unknown_groups_are_refused() {
    let text = std::fs::read_to_string(own("autoscale-day.yaml")).unwrap();
    for (from, to, wanted) in [
        ("        web:\n", "        log-agent:\n", "services.log-agent: a DAEMON service"),
        ("autoscale_group: asg-main", "autoscale_group: asg-nope", "`asg-nope` is not a group"),
    ] {
        let f = temp_file(&format!("bad-{}.yaml", wanted.len()), &text.replace(from, to));
        let o = ballast(&["simulate", "--scenario", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(wanted), "{}", stderr(&o));
    }
}

/// `plan` on the simulated cluster shows each service's decision and the instance decision,
/// and changes nothing.
#[test]
fn plan_shows_the_autoscale_decisions() {
    let o =
        ballast(&["plan", "--backend", "sim", "--scenario", own("autoscale-burst.yaml").to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["clusters"][0]["autoscale"];
    assert_eq!(a["services"].as_array().unwrap().len(), 2, "{v}");
    assert!(a["decision"].is_string(), "{v}");
}
