//! The ECS twin (`ballast twin`, docs/twin.md) as its users meet it: boto3 and the AWS CLI
//! against a cluster that schedules, seed 001's published Python redeploying through it, and
//! ballast's AWS path (the real binary, the real SDK) rebalancing it, action for action as
//! the same run does in-process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{ballast, own, shared, stderr, stdout};

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/twin")
}

/// One `ballast twin` process on a free loopback port, killed on drop.
struct Twin {
    child: Child,
    url: String,
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Twin {
    fn start(scenario: &Path, speed: &str) -> Twin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ballast"))
            .args(["twin", "--scenario", scenario.to_str().unwrap(), "--listen", "127.0.0.1:0", "--speed", speed])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the twin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the twin's first line");
        let url = line.split_whitespace().last().filter(|u| u.starts_with("http://")).expect("its address").to_string();
        Twin { child, url }
    }

    /// One request to the twin's own routes; the JSON answer.
    fn admin(&self, method: &str, path: &str) -> Value {
        let host = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(host).expect("connect to the twin");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{method} {path}: {head}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    fn advance_to(&self, seconds: u64) {
        self.admin("POST", &format!("/_twin/advance?to={seconds}"));
    }

    fn python(&self, script: &str, args: &[&str]) -> Value {
        let o = Command::new("python3")
            .arg(tests_dir().join(script))
            .arg(&self.url)
            .args(args)
            .output()
            .expect("python3 (with boto3: python3 -m pip install boto3)");
        assert!(o.status.success(), "{script} failed: {}{}", stdout(&o), stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
    }

    /// `ballast ARGS --region us-east-1 --endpoint-url URL` with test credentials.
    fn ballast(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ballast"))
            .args(args)
            .args(["--region", "us-east-1", "--endpoint-url", &self.url])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run ballast")
    }
}

#[test]
fn boto3_meets_a_cluster_that_schedules() {
    let t = Twin::start(&shared("new-instance-joins.yaml"), "1");
    // tour.py asserts each behaviour itself (docstring); here, what it saw.
    let v = t.python("tour.py", &[]);
    assert_eq!(v["paging"], serde_json::json!({"instances": 3, "services": 4, "tasks": 35}));
    assert_eq!(v["rolling_update"]["replaced"], 3);
    assert_eq!(v["force_new_deployment"], 18);
    assert_eq!(v["drained_left"], serde_json::json!(["family:nightly-report"]), "draining moves service tasks only");
    assert_eq!(v["protected_kept"], 2);
    assert!(v["metric_datapoints"].as_u64().unwrap() >= 10);
    let calls = &t.admin("GET", "/_twin/state")["api_calls"];
    for op in [
        "ListContainerInstances",
        "RegisterTaskDefinition",
        "RunTask",
        "StartTask",
        "StopTask",
        "CreateService",
        "UpdateService",
        "UpdateContainerInstancesState",
        "UpdateTaskProtection",
        "GetTaskProtection",
        "SetDesiredCapacity",
        "TerminateInstanceInAutoScalingGroup",
        "GetMetricData",
    ] {
        assert!(calls[op].as_u64().unwrap_or(0) > 0, "{op} was served: {calls}");
    }
}

#[test]
fn the_aws_cli_works_against_the_twin() {
    let t = Twin::start(&own("twin-join.yaml"), "1");
    let aws = |args: &[&str]| -> Output {
        Command::new("aws")
            .args(["--endpoint-url", &t.url, "--region", "us-east-1", "--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .expect("the AWS CLI is needed: python3 -m pip install awscli")
    };
    let json = |o: &Output| -> Value {
        assert!(o.status.success(), "aws failed: {}", stderr(o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // The CLI pages on its own: one instance a page, all three listed.
    let v = json(&aws(&["ecs", "list-container-instances", "--cluster", "twin-join", "--page-size", "1"]));
    assert_eq!(v["containerInstanceArns"].as_array().unwrap().len(), 3);
    let v = json(&aws(&["autoscaling", "describe-auto-scaling-groups"]));
    assert_eq!(v["AutoScalingGroups"][0]["DesiredCapacity"], 3);
    let now = ballast_twin::wall_ms() / 1000;
    let q = r#"[{"Id":"m","MetricStat":{"Metric":{"Namespace":"AWS/ECS","MetricName":"CPUReservation","Dimensions":[{"Name":"ClusterName","Value":"twin-join"}]},"Period":60,"Stat":"Average"}}]"#;
    t.advance_to(600);
    let v = json(&aws(&[
        "cloudwatch",
        "get-metric-data",
        "--metric-data-queries",
        q,
        "--start-time",
        &(now - 3600).to_string(),
        "--end-time",
        &(now + 3600).to_string(),
    ]));
    assert!(!v["MetricDataResults"][0]["Values"].as_array().unwrap().is_empty(), "{v}");
    let o = aws(&["ecs", "describe-services", "--cluster", "nope", "--services", "api"]);
    assert!(!o.status.success() && stderr(&o).contains("ClusterNotFoundException"), "{}", stderr(&o));
}

#[test]
fn seed_001_published_python_redeploys_through_the_twin() {
    let t = Twin::start(&own("twin-join.yaml"), "1");
    // The group grows at 5 minutes; the instance registers 2 minutes later.
    t.advance_to(500);
    let events = t.admin("GET", "/_twin/events");
    let joined = events.as_array().unwrap().last().expect("the join's event")["container_instance_arn"]
        .as_str()
        .unwrap()
        .to_string();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds/001_1b503ebaba744ad1.txt");
    let v = t.python("seed001.py", &[seed.to_str().unwrap(), "twin-join", &joined]);
    let printed: Vec<&str> = v["printed"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(printed.contains(&"Rebalancing the tasks due to the event."), "{printed:?}");
    assert_eq!(printed.iter().filter(|l| l.starts_with("New task definition arn")).count(), 2, "{printed:?}");
    // Its redeploys are carried out: every task replaced by a revision-2 one, placed by ECS.
    t.advance_to(1200);
    let s = t.admin("GET", "/_twin/state");
    for svc in s["services"].as_array().unwrap() {
        assert!(svc["task_definition"].as_str().unwrap().ends_with(":2"), "{svc}");
        assert_eq!(svc["running"], svc["desired"], "{svc}");
    }
    let r = t.admin("GET", "/_twin/report");
    assert_eq!(r["tasks_restarted"], 18, "all 18 tasks redeployed");
    assert_eq!(r["min_availability_percent"], 100.0, "a rolling deployment within its budget");
    let on_new = s["instances"].as_array().unwrap().iter().find(|i| i["arn"] == joined.as_str()).unwrap();
    assert!(!on_new["tasks"].as_array().unwrap().is_empty(), "the new instance receives tasks");
}

/// A run's actions for comparison: the lease's calls (their timing is the client's clock)
/// left out, holder ids cut from surge tags, and what ECS leaves unordered made a set: the
/// tasks of consecutive protection calls (ListTasks' order is ECS's to choose, so the
/// batches of 10 differ) and the victims named in a scale-in's reason.
fn comparable(run: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for a in run["actions"].as_array().unwrap().iter().map(|a| a["action"].clone()) {
        if a["key"] == "ballast:lease" {
            continue;
        }
        let mut a = a;
        if let Some(v) = a["value"].as_str().and_then(|v| v.split_once('@')).map(|(x, _)| x.to_string()) {
            a["value"] = Value::String(v);
        }
        if let Some((head, ids)) = a["reason"].as_str().and_then(|r| r.split_once("unprotected ")) {
            let mut ids: Vec<&str> = ids.split(", ").collect();
            ids.sort_unstable();
            a["reason"] = Value::String(format!("{head}unprotected {}", ids.join(", ")));
        }
        if a["kind"] == "set_task_protection"
            && let Some(last) = out.last_mut()
            && last["kind"] == "set_task_protection"
            && last["protected"] == a["protected"]
        {
            let mut arns: Vec<Value> = last["task_arns"].as_array().unwrap().clone();
            arns.extend(a["task_arns"].as_array().unwrap().iter().cloned());
            arns.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            last["task_arns"] = Value::Array(arns);
            continue;
        }
        if let Some(arns) = a["task_arns"].as_array_mut() {
            arns.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
        }
        out.push(a);
    }
    out
}

fn placements(run: &Value) -> Vec<(String, u64, u64)> {
    let mut v: Vec<(String, u64, u64)> = run["status_after"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["ec2_instance_id"].as_str().unwrap().to_string(),
                i["running_tasks"].as_u64().unwrap(),
                i["service_tasks"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn ballast_rebalances_the_twin_as_it_does_in_process() {
    let sc = own("twin-join.yaml");
    let o = ballast(&["run", "--scenario", sc.to_str().unwrap(), "--at", "500s", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let inproc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let inproc = &inproc["clusters"][0];

    // The same world, served; ballast's AWS path (SDK, adapter, executor) acts on it.
    let t = Twin::start(&sc, "50");
    t.advance_to(500);
    let o = t.ballast(&["run", "--cluster", "twin-join", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let twin: Value = serde_json::from_slice(&o.stdout).unwrap();
    let twin = &twin["clusters"][0];

    assert_eq!(twin["decisions"], inproc["decisions"], "the same plan from the same cluster");
    assert_eq!(comparable(twin), comparable(inproc), "the same calls, task for task");
    assert_eq!(twin["outcome"]["restarts"], inproc["outcome"]["restarts"]);
    assert_eq!(placements(twin), placements(inproc), "the same placements after");
    assert_eq!(twin["status_after"]["cov_percent"]["count"], inproc["status_after"]["cov_percent"]["count"]);
    let r = t.admin("GET", "/_twin/report");
    assert_eq!(r["tasks_restarted"], inproc["outcome"]["restarts"], "the twin's report counts them alike");
    assert_eq!(r["tasks_lost"], 0);
    assert_eq!(r["left_draining"], 0);
}

#[test]
fn twin_refuses_bad_input_with_exit_2() {
    let sc = own("twin-join.yaml");
    let s = sc.to_str().unwrap();
    for (args, says) in [
        (vec!["twin", "--scenario", s, "--listen", "0.0.0.0:0"], "loopback"),
        (vec!["twin", "--scenario", s, "--listen", "127.0.0.1:0", "--speed", "0"], "--speed"),
        (vec!["twin", "--scenario", "/nonexistent.yaml", "--listen", "127.0.0.1:0"], "nonexistent"),
        (vec!["twin", "--scenario", s, "--region", "us-east-1"], "--region"),
    ] {
        let o = ballast(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}
