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
pub(crate) struct Twin {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Twin {
    pub(crate) fn start(scenario: &Path, speed: &str) -> Twin {
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
    pub(crate) fn admin(&self, method: &str, path: &str) -> Value {
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

    pub(crate) fn advance_to(&self, seconds: u64) {
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
        self.ballast_env(args, &[])
    }

    /// [`Twin::ballast`] with more environment variables.
    fn ballast_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ballast"))
            .args(args)
            .args(["--region", "us-east-1", "--endpoint-url", &self.url])
            .envs(env.iter().copied())
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

/// The twin's services by name (from `/_twin/state`).
fn services_of(state: &Value) -> std::collections::BTreeMap<String, Value> {
    state["services"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap().to_string(), s.clone())).collect()
}

fn group_of<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["groups"].as_array().unwrap().iter().find(|g| g["name"] == name).expect("the group")
}

/// spot-fallback reads the pool's AWS/EC2Spot metrics over CloudWatch's rpcv2Cbor (the SDK
/// this crate builds with) and backfills with the on-demand group; the twin then boots the
/// instances and places the tasks the outage left waiting.
#[test]
fn spot_fallback_backfills_a_spot_outage_on_the_twin() {
    let sc = own("twin-spot.yaml");
    let t = Twin::start(&sc, "1");
    t.advance_to(600);
    let cfg = crate::support::temp_file(
        "twin-spot.yaml",
        "clusters:\n  shop:\n    rebalance: {enabled: false}\n    spot_fallback: {fleet_request_id: sfr-test, on_demand_group: od-backup}\n",
    );
    let c = cfg.to_str().unwrap();
    let o = t.ballast(&["run", "--config", c, "--job", "spot-fallback", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let all = v["clusters"][0]["actions"].as_array().unwrap();
    let actions = crate::aws::job_actions(all);
    assert_eq!(actions.len(), 1, "{v}");
    let a = &actions[0]["action"];
    assert_eq!((a["kind"].as_str(), a["group"].as_str()), (Some("set_group_desired"), Some("od-backup")), "{v}");
    assert_eq!(a["honor_cooldown"], false, "scale out at once");
    let calls = crate::aws::calls(&v);
    assert!(calls["GetMetricData"] >= 1 && calls["DescribeAutoScalingGroups"] >= 1, "{calls:?}");
    assert_eq!(crate::aws::mutating(&calls), crate::aws::named_by(all));
    crate::aws::assert_granted(Some(&cfg), &calls, &[]);
    // The same decision in-process, from the same world at the same time.
    let o = ballast(&["run", "--scenario", sc.to_str().unwrap(), "--at", "600s", "--job", "spot-fallback", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let inproc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let same = crate::aws::job_actions(inproc["clusters"][0]["actions"].as_array().unwrap());
    assert_eq!(same[0]["action"]["desired"], a["desired"], "in-process: {inproc}");
    let wanted = a["desired"].as_u64().unwrap();
    assert!(wanted > 0);
    assert_eq!(group_of(&t.admin("GET", "/_twin/state"), "od-backup")["desired"], wanted);
    // Again at once: nothing more to do.
    let o = t.ballast(&["run", "--config", c, "--job", "spot-fallback", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(crate::aws::job_actions(v["clusters"][0]["actions"].as_array().unwrap()).is_empty(), "{v}");
    // A fleet with no datapoint is unknown, not zero: nothing scales.
    let none = crate::support::temp_file(
        "twin-nodata.yaml",
        "clusters:\n  shop:\n    rebalance: {enabled: false}\n    spot_fallback: {fleet_request_id: sfr-none, on_demand_group: od-backup}\n",
    );
    let o = t.ballast(&["run", "--config", none.to_str().unwrap(), "--job", "spot-fallback", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cl = &v["clusters"][0];
    assert!(cl["actions"].as_array().unwrap().is_empty(), "{v}");
    assert!(cl["spot_fallback"]["decision"].as_str().unwrap().contains("unknown"), "{v}");
    // What moto could not show: the backup boots, registers, and ECS places the tasks.
    t.advance_to(1800);
    let s = t.admin("GET", "/_twin/state");
    assert_eq!(group_of(&s, "od-backup")["instances"], wanted);
    let web = &services_of(&s)["web"];
    assert_eq!(web["running"], web["desired"], "{s}");
}

/// autoscale reads an HTTP JSON metric (a RabbitMQ stand-in) and a CloudWatch metric (over
/// rpcv2Cbor), scales both services and the group to fit; the twin launches the instance and
/// places the new tasks.
#[test]
fn autoscale_scales_services_and_the_group_from_http_and_cloudwatch_metrics_on_the_twin() {
    let t = Twin::start(&own("twin-autoscale.yaml"), "1");
    // Ten minutes of RequestRate datapoints.
    t.advance_to(660);
    let (port, heads) = crate::aws::metric_server(r#"{"queue": {"messages_ready": 250}}"#);
    let def = format!(
        "autoscale_group: asg-main\nmin: 1\nmax: 4\nservices:\n  worker:\n    min: 1\n    max: 5\n    metric_sources:\n      \
         third_party:\n        - url: http://%(Q_USER):%(Q_PASS)@127.0.0.1:{port}/api/queues/celery\n          \
         statistics: [{{name: queue.messages_ready, alias: queue_length}}]\n    events:\n      \
         - {{metric: queue_length, action: 2, min: 100, max: null}}\n      - {{metric: queue_length, action: -1, min: null, max: 3}}\n  \
         web:\n    min: 1\n    max: 3\n    metric_sources:\n      cloudwatch:\n        - namespace: Custom/App\n          \
         metric_name: RequestRate\n          dimensions: [{{name: Service, value: web}}]\n          period: 60\n          \
         statistics: [{{name: Average, alias: rate}}]\n    events:\n      - {{metric: rate / 100, action: 1, min: 5, max: null}}\n"
    );
    let dir = std::env::temp_dir().join(format!("ballast-autoscale-twin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shop.yml"), def).unwrap();
    let d = dir.to_str().unwrap();
    let env = [("Q_USER", "guest"), ("Q_PASS", "pw-never-logged")];
    let run = |args: &[&str]| t.ballast_env(args, &env);
    let o = run(&["run", "--config", d, "--job", "autoscale", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("pw-never-logged") && !stderr(&o).contains("pw-never-logged"));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["clusters"][0];
    assert_eq!(c["autoscale"]["metrics"]["worker.queue_length"], 250.0, "{v}");
    assert_eq!(c["autoscale"]["metrics"]["web.rate"], 900.0, "{v}");
    let head = heads.recv().unwrap();
    assert!(head.contains("authorization: Basic Z3Vlc3Q6cHctbmV2ZXItbG9nZ2Vk"), "{head}");
    let s = t.admin("GET", "/_twin/state");
    let svcs = services_of(&s);
    assert_eq!(svcs["worker"]["desired"], 3, "base is the desired count, +2: {v}");
    assert_eq!(svcs["web"]["desired"], 2, "{v}");
    assert!(svcs["worker"]["tags"]["ballast:autoscaled"].as_str().unwrap().starts_with("out@"), "{s}");
    // The new web task fits beside the first ones; the 2 new workers (1024 CPU each) need one
    // more 2048-CPU instance. The configuration's min/max (1, 4) replace the group's (1, 3).
    let g = group_of(&s, "asg-main");
    assert_eq!((g["min"].as_u64(), g["max"].as_u64(), g["desired"].as_u64()), (Some(1), Some(4), Some(2)), "{v}");
    let all = c["actions"].as_array().unwrap();
    let calls = crate::aws::calls(&v);
    assert_eq!(crate::aws::mutating(&calls), crate::aws::named_by(all));
    assert!(calls["GetMetricData"] >= 1, "{calls:?}");
    crate::aws::assert_granted(Some(&dir), &calls, &env);
    // At once again: the scale-out cooldown holds the services; the booting instance covers
    // the waiting tasks.
    let o = run(&["run", "--config", d, "--job", "autoscale", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["clusters"][0];
    assert!(crate::aws::job_actions(c["actions"].as_array().unwrap()).is_empty(), "{v}");
    assert!(c["autoscale"]["services"][1]["why"].as_str().unwrap().contains("cooldown"), "{v}");
    assert!(c["autoscale"]["decision"].as_str().unwrap().contains("booting"), "{v}");
    // Then the instance registers and ECS places the tasks that waited.
    t.advance_to(1200);
    let s = t.admin("GET", "/_twin/state");
    for svc in services_of(&s).values() {
        assert_eq!(svc["running"], svc["desired"], "{s}");
    }
    assert_eq!(s["instances"].as_array().unwrap().len(), 2);
}
