//! The command line as a user meets it: output shapes, bad input, exit codes.

use super::support::*;

const SCENARIO: &str = "name: t\nduration: 30m\nazs: [us-east-1a, us-east-1b]\ngroups:\n  - {name: g, instance_type: m5.large, desired: 2, max: 3}\nservices:\n  - {name: web, desired: 4, cpu: 256, memory: 512}\nevents:\n  - {at: 5m, set_group_desired: {group: g, desired: 3}}\n";

#[test]
fn demo_tells_the_story() {
    let o = ballast(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for s in ["Before", "ballast's plan", "After", "drain-cov", "redeploy-on-join", "lower bound"] {
        assert!(out.contains(s), "demo output lacks {s}:\n{out}");
    }
}

#[test]
fn simulate_table_and_html_report() {
    let p = temp_file("s.yaml", SCENARIO);
    let html = p.with_file_name("r.html");
    let o = ballast(&[
        "simulate",
        "--scenario",
        p.to_str().unwrap(),
        "--policy",
        "ballast,none",
        "--report",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("policy"));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg") && !page.contains("<script"));
    // JSON output is quiet: nothing but the array on stdout, nothing on stderr.
    let o = ballast(&["simulate", "--scenario", p.to_str().unwrap(), "--json"]);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn status_plan_and_run_on_the_simulator() {
    let p = shared("new-instance-joins.yaml");
    let s = p.to_str().unwrap();
    let o = ballast(&["status", "--backend", "sim", "--scenario", s, "--at", "13m", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["clusters"][0];
    assert_eq!(c["instances"].as_array().unwrap().len(), 4);
    for k in [
        "container_instance_arn",
        "ec2_instance_id",
        "status",
        "az",
        "instance_type",
        "running_tasks",
        "cpu_reserved_percent",
        "memory_reserved_percent",
    ] {
        assert!(c["instances"][0].get(k).is_some(), "{k}");
    }
    assert!(c["cov_percent"]["count"].as_f64().unwrap() > 25.0);

    let o = ballast(&["plan", "--backend", "sim", "--scenario", s, "--at", "13m", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["clusters"][0]["rebalance"]["verdict"], "act");
    assert!(!v["clusters"][0]["actions"].as_array().unwrap().is_empty());

    let o = ballast(&["run", "--backend", "sim", "--scenario", s, "--at", "13m", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["clusters"][0]["actions"].as_array().unwrap().iter().all(|a| a["dry_run"] == true));
    assert!(
        v["clusters"][0]["status_after"]["cov_percent"]["count"].as_f64().unwrap() > 25.0,
        "a dry run changes nothing"
    );

    // One run with time for every step (the default 14 minutes, a Lambda's, leaves the last
    // surges to the next run) reaches the threshold, restarting at least the lower bound the
    // plan states (its definition) and no more than twice it.
    let o = ballast(&["run", "--backend", "sim", "--scenario", s, "--at", "13m", "--deadline", "40m", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["clusters"][0]["status_after"]["cov_percent"]["count"].as_f64().unwrap() <= 25.0, "{v}");
    let restarts = v["clusters"][0]["outcome"]["restarts"].as_u64().unwrap();
    let bound = v["clusters"][0]["rebalance"]["min_moves"].as_u64().unwrap();
    assert!(bound > 0 && restarts >= bound && restarts <= 2 * bound, "{restarts} restarts, bound {bound}");
}

#[test]
fn bad_input_exits_2_with_a_position() {
    let bad = temp_file("bad.yaml", &SCENARIO.replace("m5.large", "m5.huge"));
    let o = ballast(&["simulate", "--scenario", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.yaml:5:") && stderr(&o).contains("m5.huge"), "{}", stderr(&o));

    let unknown = temp_file("unknown.yaml", &format!("{SCENARIO}colour: red\n"));
    let o = ballast(&["validate", "--scenario", unknown.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown.yaml:10:1") && stderr(&o).contains("colour"), "{}", stderr(&o));

    let cfg = temp_file("ballast.yaml", "clusters:\n  shop:\n    rebalance:\n      method: shuffle\n");
    let o = ballast(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ballast.yaml:4:") && stderr(&o).contains("rebalance.method"), "{}", stderr(&o));

    let good = temp_file("good.yaml", SCENARIO);
    let o = ballast_env(&["simulate", "--scenario", good.to_str().unwrap()], &[("DRAIN_TIMEOUT", "90")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("DRAIN_TIMEOUT") && stderr(&o).contains("0 to 60"), "{}", stderr(&o));
    let o = ballast_env(&["simulate", "--scenario", good.to_str().unwrap()], &[("COV_PERCENT", "lots")]);
    assert_eq!(o.status.code(), Some(2));

    let o = ballast(&["simulate", "--scenario", good.to_str().unwrap(), "--policy", "magic"]);
    assert_eq!(o.status.code(), Some(2));
    let o = ballast(&["simulate", "--scenario", "/nonexistent/x.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = ballast(&["status", "--backend", "sim"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--scenario"), "{}", stderr(&o));
    let o = ballast(&["status", "--backend", "aws", "--scenario", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    // On AWS with no Region anywhere: exit 2, naming --region.
    let o = ballast_env(
        &["status"],
        &[("AWS_CONFIG_FILE", "/nonexistent"), ("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--region"), "{}", stderr(&o));
    let empty = temp_file("empty.yaml", "clusters: {}\n");
    let o = ballast(&["validate", "--config", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("names no cluster"), "{}", stderr(&o));
    let o = ballast(&["run", "--region", "us-east-1", "--deadline", "soon"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = ballast(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn validate_accepts_good_input() {
    let cfg = temp_file(
        "ballast.yaml",
        "clusters:\n  shop:\n    rebalance: {method: drain, metric: mem-unreserved, drain: {timeout: 30s}}\n  other: {}\n",
    );
    let o = ballast(&[
        "validate",
        "--config",
        cfg.to_str().unwrap(),
        "--scenario",
        shared("binpack-is-intended.yaml").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 cluster(s)"));
}

/// Issue [10]: a closed pipe (`ballast status | head -1`) never panics: output stops, the
/// command ends as it would have, and stderr says nothing about it.
#[test]
fn a_closed_pipe_never_panics() {
    use std::process::{Command, Stdio};
    let sc = shared("new-instance-joins.yaml").display().to_string();
    for (args, out_closed) in [
        (vec!["status", "--scenario", sc.as_str()], true),
        (vec!["simulate", "--scenario", sc.as_str(), "--policy", "ballast,none", "--json"], true),
        (vec!["simulate", "--scenario", sc.as_str(), "--timeline"], false),
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ballast"));
        c.args(&args).current_dir(std::env::temp_dir());
        if out_closed {
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            c.stdout(Stdio::null()).stderr(Stdio::piped());
        }
        let mut child = c.spawn().unwrap();
        // Close the reading end at once: every write fails with EPIPE.
        let err_pipe = if out_closed {
            drop(child.stdout.take());
            child.stderr.take()
        } else {
            drop(child.stderr.take());
            None
        };
        let status = child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = err_pipe {
            use std::io::Read;
            e.read_to_string(&mut err).unwrap();
        }
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Issue [10]: options that do not apply are refused (exit 2, naming them), not ignored.
#[test]
fn options_that_do_not_apply_are_refused() {
    let sc = shared("new-instance-joins.yaml").display().to_string();
    for (args, want) in [
        (vec!["simulate", "--scenario", sc.as_str(), "--region", "us-east-1"], "--region"),
        (vec!["simulate", "--scenario", sc.as_str(), "--backend", "aws"], "--backend"),
        (vec!["status", "--scenario", sc.as_str(), "--endpoint-url", "http://127.0.0.1:1"], "--endpoint-url"),
        (vec!["plan", "--cluster", "shop", "--at", "10m"], "--at applies to the simulator"),
        (vec!["demo", "--config", "ballast.yaml"], "--config does not apply to demo"),
        (vec!["validate", "--region", "us-east-1"], "--region"),
        (vec!["iam-policy", "--endpoint-url", "http://127.0.0.1:1"], "--endpoint-url"),
    ] {
        let o = ballast(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

/// Issue [12]: no surprises. Typos get "did you mean"; every cluster's (and every file's)
/// problems are listed at once; names that match nothing in the scenario are warned about;
/// a simulation never reads ./ballast.yaml unasked.
#[test]
fn errors_list_every_problem_and_suggest_what_was_meant() {
    let cfg = temp_file(
        "two-bad.yaml",
        "clusters:\n  a:\n    rebalance: {cov_percent: 300}\n  b:\n    rebalance: {method: nope}\n",
    );
    let o = ballast(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("clusters.a.") && e.contains("clusters.b."), "both clusters' problems: {e}");
    let cfg = temp_file("typo.yaml", "clusters:\n  a:\n    rebalance:\n      drain: {sleep_tme: 10s}\n");
    let o = ballast(&["validate", "--config", cfg.to_str().unwrap()]);
    assert!(stderr(&o).contains("did you mean `sleep_time`?"), "{}", stderr(&o));
    let o = ballast(&[
        "simulate",
        "--scenario",
        &shared("new-instance-joins.yaml").display().to_string(),
        "--policy",
        "balast",
    ]);
    assert!(stderr(&o).contains("did you mean `ballast`?"), "{}", stderr(&o));
    // Names that match nothing in the scenario.
    let cfg = temp_file("names.yaml", "clusters:\n  new-instance-joins:\n    rebalance: {exclude_services: [wrker]}\n");
    let o = ballast(&[
        "validate",
        "--config",
        cfg.to_str().unwrap(),
        "--scenario",
        &shared("new-instance-joins.yaml").display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "warning: rebalance.exclude_services: `wrker` is no service of the scenario; did you mean `worker`?"
        ),
        "{}",
        stderr(&o)
    );
    // ./ballast.yaml is not read by a simulation unless named.
    let dir = std::env::temp_dir().join(format!("ballast-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ballast.yaml"), "clusters:\n  new-instance-joins:\n    rebalance: {enabled: false}\n")
        .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["simulate", "--scenario", &shared("new-instance-joins.yaml").display().to_string(), "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("./ballast.yaml is not read"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(rows[0]["tasks_restarted"].as_u64().unwrap() > 0, "the scenario's own configuration ran");
}

/// Issue [12]: the JSON is a contract (docs/json.md): a schema version, snake_case keys,
/// one shape of `api_calls`, `at_s` relative to the run's start, and a real run does not
/// repeat the planned moves; `status` shows the groups.
#[test]
fn json_documents_follow_docs_json_md() {
    let sc = shared("new-instance-joins.yaml").display().to_string();
    fn keys(v: &serde_json::Value, path: &str, bad: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let free = ["by_operation", "tags", "attributes", "metrics", "service_availability"];
                    if !free.iter().any(|f| path.ends_with(f))
                        && !k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    {
                        bad.push(format!("{path}.{k}"));
                    }
                    keys(x, &format!("{path}.{k}"), bad);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, &format!("{path}[]"), bad)),
            _ => {}
        }
    }
    for cmd in ["status", "plan", "run"] {
        let o = ballast(&[cmd, "--scenario", &sc, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["schema_version"], 1, "{cmd}");
        assert!(v["errors"].is_array() && v["api_calls"]["by_operation"].is_object(), "{cmd}: {v}");
        let mut bad = vec![];
        keys(&v, "", &mut bad);
        assert!(bad.is_empty(), "{cmd}: keys not snake_case: {bad:?}");
        let c = &v["clusters"][0];
        match cmd {
            "status" => assert_eq!(c["groups"][0]["name"], "asg-main", "{c}"),
            "plan" => assert!(c["rebalance"]["services"].is_array()),
            _ => {
                assert!(c["rebalance"].get("services").is_none(), "a run does not repeat the plan");
                let first = c["actions"][0]["at_s"].as_f64().unwrap();
                assert!((0.0..60.0).contains(&first), "at_s is relative to the run's start: {first}");
                assert!(c["started_at_s"].as_f64().unwrap() > 0.0);
                assert!(v["api_calls"]["total"].as_u64().unwrap() > 0);
            }
        }
    }
}

/// Issue [12]: the report as a browser shows it. Headless Chromium (Debian's `chromium`,
/// which CI installs) loads the page; its DOM holds one chart per figure with every policy in
/// the legend and a line each, the per-policy charts, the table with the capacity columns of
/// an autoscale scenario and each service's availability beside its budget. The `.svg` form
/// holds every chart.
#[test]
fn the_report_renders_in_a_browser_with_every_chart() {
    let sc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/autoscale-burst.yaml");
    let html = temp_file("browser.html", "");
    let policies = ["ballast", "ecs-autoscale", "none"];
    let o = ballast(&[
        "simulate",
        "--scenario",
        sc.to_str().unwrap(),
        "--policy",
        &policies.join(","),
        "--report",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dom = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is needed for this test: apt-get install -y chromium");
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout).replace('\n', "");
    let charts = dom.matches("<svg").count();
    assert_eq!(charts, 4 + policies.len(), "four overlaid figures and one per policy: {charts}");
    for figure in ["Task-count COV", "Availability", "Instances", "Unplaced tasks"] {
        let at = dom.find(&format!(">{figure}<")).unwrap_or_else(|| panic!("no {figure} chart"));
        let chart = &dom[at..at + dom[at..].find("</svg>").unwrap()];
        for p in policies {
            assert!(chart.contains(&format!(">{p}<")), "{figure}: no {p} in the legend");
        }
        assert!(
            chart.matches("stroke-width=\"2\"").count() >= 2 * policies.len(),
            "{figure}: a line and a legend mark per policy"
        );
        assert!(chart.contains("simulated time (h:mm)") && chart.contains(">0:00<"), "{figure}: the time axis");
    }
    for col in ["instance-hours", "× capacity bound", "final COV (count)", "budget (minimumHealthyPercent)"] {
        assert!(dom.contains(col), "the table lacks {col}");
    }
    let svg = temp_file("all.svg", "");
    let o = ballast(&[
        "simulate",
        "--scenario",
        sc.to_str().unwrap(),
        "--policy",
        "ballast,none",
        "--report",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text.matches("<svg").count(), 1 + 4 + 2, "the .svg holds every chart");
}
