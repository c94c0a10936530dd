//! The autoscale job's configuration: seed 003's definitions load unchanged, as a directory
//! of `<cluster>.yml` files and as the `autoscale` section of ballast.yaml, with `%(VAR)`.

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

/// Until the autoscale job runs, a configuration that asks for it is refused by every command
/// that would run jobs (exit 2, saying why), never silently half-run.
#[test]
fn run_paths_refuse_an_autoscale_section_they_would_not_run() {
    let cfg = temp_file(
        "auto.yaml",
        "clusters:\n  new-instance-joins:\n    autoscale: {autoscale_group: asg-main, services: {}}\n",
    );
    let s = shared("new-instance-joins.yaml");
    let o = ballast(&["simulate", "--scenario", s.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not run the autoscale job yet"), "{}", stderr(&o));
    let o = ballast(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}
