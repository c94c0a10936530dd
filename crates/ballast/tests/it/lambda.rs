//! The real `ballast-lambda` binary against a local Lambda Runtime API (a small HTTP server
//! here: `invocation/next`, `…/{id}/response`, `…/{id}/error`), over the AWS emulator.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::aws::Moto;

/// One answer the function gave.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Request id.
    pub id: String,
    /// `response` or `error`.
    pub kind: String,
    /// The JSON body.
    pub body: Value,
}

#[derive(Default)]
struct State {
    deadline_ms: u128,
    events: VecDeque<(String, String)>,
    answers: Vec<Answer>,
    first_next: Option<Instant>,
}

/// The fake Runtime API.
pub struct RuntimeApi {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((method, path, body))
}

fn serve(stream: TcpStream, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut r) {
        if method == "GET" && path.ends_with("/invocation/next") {
            state.lock().unwrap().first_next.get_or_insert_with(Instant::now);
            let ev = loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Some(e) = state.lock().unwrap().events.pop_front() {
                    break e;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let deadline =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + state.lock().unwrap().deadline_ms;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: \
                 arn:aws:lambda:us-east-1:123456789012:function:ballast\r\nContent-Length: {}\r\n\r\n",
                ev.0,
                ev.1.len()
            );
            let _ = w.write_all(head.as_bytes()).and_then(|_| w.write_all(ev.1.as_bytes()));
        } else if method == "POST" && path.contains("/invocation/") {
            let seg: Vec<&str> = path.trim_end_matches('/').rsplit('/').take(2).collect();
            let body = serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
            state.lock().unwrap().answers.push(Answer { id: seg[1].to_string(), kind: seg[0].to_string(), body });
            let _ = w.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n");
        } else {
            let _ = w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

impl RuntimeApi {
    /// Starts the server with `events` (request id, raw body) queued; each invocation gets
    /// Lambda's longest timeout, 15 minutes.
    pub fn start(events: Vec<(String, String)>) -> RuntimeApi {
        RuntimeApi::with_deadline(events, Duration::from_secs(900))
    }

    /// As [`RuntimeApi::start`], each invocation ending `deadline` after it is handed out.
    pub fn with_deadline(events: Vec<(String, String)>, deadline: Duration) -> RuntimeApi {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State {
            events: events.into(),
            deadline_ms: deadline.as_millis(),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (s, st) = (s.clone(), st.clone());
                std::thread::spawn(move || serve(conn, s, st));
            }
        });
        RuntimeApi { addr, state, stop }
    }

    /// Waits until `n` answers arrived (at most `limit`).
    pub fn answers(&self, n: usize, limit: Duration) -> Vec<Answer> {
        let start = Instant::now();
        loop {
            let a = self.state.lock().unwrap().answers.clone();
            if a.len() >= n || start.elapsed() > limit {
                return a;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// When the function first asked for an event.
    pub fn first_next(&self) -> Option<Instant> {
        self.state.lock().unwrap().first_next
    }
}

/// Starts `ballast-lambda` against `api`, with extra environment.
pub fn start_function(api: &RuntimeApi, env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ballast-lambda"));
    c.env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "ballast")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("BALLAST_CONFIG")
        .env_remove("BALLAST_CONFIG_FILE")
        .env_remove("LAMBDA_TASK_ROOT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in ["DRAIN_SLEEP_TIME", "DRAIN_TIMEOUT", "DRAIN_MAX_INSTANCES", "REBALANCE_MAX_RETRY", "COV_PERCENT"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("run ballast-lambda")
}

fn output(mut child: Child) -> (String, String) {
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn instance_event(cluster: &str) -> String {
    json!({
        "version": "0", "id": "8952ba83-7be2-4ab5-9c32-6687532d15a2",
        "detail-type": "ECS Container Instance State Change", "source": "aws.ecs",
        "account": "123456789012", "time": "2026-12-02T00:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/abc")],
        "detail": {
            "clusterArn": format!("arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}"),
            "containerInstanceArn": format!("arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/abc"),
            "ec2InstanceId": "i-0123456789abcdef0", "status": "ACTIVE", "agentConnected": true,
            "runningTasksCount": 0, "pendingTasksCount": 0, "attributes": [], "version": 2
        }
    })
    .to_string()
}

fn scheduled() -> String {
    json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-12-02T00:05:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ballast-schedule"], "detail": {}})
    .to_string()
}

#[test]
fn serves_every_event_kind_and_keeps_serving() {
    let m = Moto::start();
    m.seed("imbalanced");
    let alarm = json!({"AlarmName": "spot-short", "NewStateValue": "ALARM", "Trigger": {"MetricName": "PendingCapacity",
        "Namespace": "AWS/EC2Spot", "Dimensions": [{"name": "FleetRequestId", "value": "sfr-1"}]}});
    let events = vec![
        ("bad-json".to_string(), "this is {not json".to_string()),
        ("unknown".into(), json!({"hello": "world"}).to_string()),
        (
            "spot".into(),
            json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": alarm.to_string()}}]}).to_string(),
        ),
        ("elsewhere".into(), instance_event("elsewhere")),
        ("join".into(), instance_event("shop")),
        ("tick".into(), scheduled()),
    ];
    let n = events.len();
    let api = RuntimeApi::start(events);
    let spawned = Instant::now();
    let mut child =
        start_function(&api, &[("AWS_ENDPOINT_URL", &m.url), ("BALLAST_CONFIG", "clusters:\n  shop: {}\n")]);
    let answers = api.answers(n, Duration::from_secs(240));
    assert!(child.try_wait().unwrap().is_none(), "the function keeps serving");
    if let Some(t) = api.first_next() {
        eprintln!("ballast-lambda: first request for an event {:?} after start (debug build)", t - spawned);
    }
    let (stdout, stderr) = output(child);
    assert_eq!(answers.len(), n, "{answers:?}\n{stderr}");
    let by =
        |id: &str| answers.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("no answer for {id}: {answers:?}"));
    for id in ["bad-json", "unknown"] {
        let a = by(id);
        assert_eq!(a.kind, "error");
        assert_eq!(a.body["errorType"], "NonRetryable.BadEvent", "{a:?}");
    }
    assert!(by("bad-json").body["errorMessage"].as_str().unwrap().contains("not JSON"));
    let spot = by("spot");
    assert_eq!((spot.kind.as_str(), &spot.body["errorType"]), ("error", &json!("NonRetryable.NotConfigured")));
    assert!(spot.body["errorMessage"].as_str().unwrap().contains("sfr-1"));
    let elsewhere = by("elsewhere");
    assert_eq!(elsewhere.kind, "response");
    assert!(elsewhere.body["ignored"].as_str().unwrap().contains("elsewhere"), "{elsewhere:?}");
    // The join of an instance rebalances that cluster now.
    let join = by("join");
    assert_eq!(join.kind, "response", "{join:?}");
    let c = &join.body["clusters"][0];
    assert_eq!(c["cluster"], "shop");
    assert!(!c["actions"].as_array().unwrap().is_empty(), "{c}");
    assert!(c["status_after"]["cov_percent"]["count"].as_f64().unwrap() < 100.0, "{c}");
    // The schedule finds the cluster balanced and does nothing.
    let tick = by("tick");
    assert_eq!(tick.kind, "response");
    assert!(tick.body["clusters"][0]["actions"].as_array().unwrap().is_empty(), "{tick:?}");
    // One EMF line per cluster run, and JSON log lines.
    let emf: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 2, "{stdout}");
    assert_eq!(emf[0]["Cluster"], "shop");
    assert!(emf[0]["TaskRestarts"].as_u64().unwrap() > 0 && emf[0]["ApiCalls"].as_u64().unwrap() > 0, "{}", emf[0]);
    assert!(emf[0]["CovBefore"].as_f64().unwrap() > emf[0]["CovAfter"].as_f64().unwrap());
    assert!(stderr.lines().any(|l| l.starts_with('{') && l.contains("NonRetryable.BadEvent")), "{stderr}");
}

#[test]
fn a_bad_configuration_is_answered_not_crashed_on() {
    let api = RuntimeApi::start(vec![("a".into(), scheduled()), ("b".into(), scheduled())]);
    let mut child =
        start_function(&api, &[("BALLAST_CONFIG", "clusters:\n  shop:\n    rebalance: {method: shuffle}\n")]);
    let answers = api.answers(2, Duration::from_secs(30));
    assert!(child.try_wait().unwrap().is_none(), "the function keeps serving");
    let (_, stderr) = output(child);
    assert_eq!(answers.len(), 2, "{stderr}");
    for a in answers {
        assert_eq!(a.kind, "error");
        assert_eq!(a.body["errorType"], "NonRetryable.BadConfig");
        assert!(a.body["errorMessage"].as_str().unwrap().contains("rebalance.method"), "{a:?}");
    }
}

#[test]
fn no_disruptive_step_starts_that_the_deadline_would_cut_short() {
    let m = Moto::start();
    m.seed("imbalanced");
    let before = m.truth("shop");
    let api = RuntimeApi::with_deadline(vec![("join".into(), instance_event("shop"))], Duration::from_secs(90));
    let child = start_function(&api, &[("AWS_ENDPOINT_URL", &m.url), ("BALLAST_CONFIG", "clusters:\n  shop: {}\n")]);
    let answers = api.answers(1, Duration::from_secs(60));
    let (_, stderr) = output(child);
    assert_eq!(answers.len(), 1, "{stderr}");
    let c = &answers[0].body["clusters"][0];
    assert!(c["actions"].as_array().unwrap().is_empty(), "{c}");
    assert!(c["outcome"]["stopped_early"].as_str().unwrap().contains("is left"), "{c}");
    assert_eq!(m.truth("shop"), before, "nothing changed");
}

#[test]
fn a_spot_shortfall_event_runs_that_fleets_spot_fallback() {
    // The pool's metrics come from CloudWatch (rpcv2Cbor), which the twin serves and moto does
    // not: the twin's Spot outage, 8 minutes in.
    let t = crate::twin::Twin::start(&crate::support::own("twin-spot.yaml"), "1");
    t.advance_to(600);
    let config = "clusters:\n  shop:\n    spot_fallback: {fleet_request_id: sfr-test, on_demand_group: od-backup}\n";
    let api = RuntimeApi::start(vec![
        ("fleet".into(), json!({"fleetID": "sfr-test"}).to_string()),
        ("other".into(), json!({"fleetID": "sfr-other"}).to_string()),
    ]);
    let child = start_function(&api, &[("AWS_ENDPOINT_URL", &t.url), ("BALLAST_CONFIG", config)]);
    let answers = api.answers(2, Duration::from_secs(60));
    let (_, stderr) = output(child);
    assert_eq!(answers.len(), 2, "{stderr}");
    let fleet = answers.iter().find(|a| a.id == "fleet").unwrap();
    assert_eq!(fleet.kind, "response", "{fleet:?}");
    let c = &fleet.body["clusters"][0];
    assert!(c["spot_fallback"]["decision"].as_str().unwrap().contains("scale od-backup out"), "{c}");
    assert!(c["rebalance"].is_null() && c["autoscale"].is_null(), "a Spot event runs spot-fallback only: {c}");
    let scaled =
        c["actions"].as_array().unwrap().iter().find(|a| a["action"]["kind"] == "set_group_desired").expect("scaled");
    let state = t.admin("GET", "/_twin/state");
    let od = state["groups"].as_array().unwrap().iter().find(|g| g["name"] == "od-backup").unwrap();
    assert_eq!(od["desired"], scaled["action"]["desired"], "{state}");
    let other = answers.iter().find(|a| a.id == "other").unwrap();
    assert_eq!(other.body["errorType"], "NonRetryable.NotConfigured", "{other:?}");
}

#[test]
fn a_scheduled_run_runs_the_autoscale_job() {
    // A CloudWatch metric source: the twin (rpcv2Cbor), with ten minutes of datapoints.
    let t = crate::twin::Twin::start(&crate::support::own("twin-autoscale.yaml"), "1");
    t.advance_to(660);
    let config = "clusters:\n  shop:\n    rebalance: {enabled: false}\n    autoscale:\n      autoscale_group: asg-main\n      \
                  services:\n        web:\n          min: 1\n          max: 3\n          metric_sources:\n            cloudwatch:\n              \
                  - {namespace: Custom/App, metric_name: RequestRate, dimensions: [{name: Service, value: web}], period: 60, \
                  statistics: [{name: Average, alias: rate}]}\n          events:\n            - {metric: rate, action: 1, min: 500, max: null}\n";
    let api = RuntimeApi::start(vec![("tick".into(), scheduled())]);
    let child = start_function(&api, &[("AWS_ENDPOINT_URL", &t.url), ("BALLAST_CONFIG", config)]);
    let answers = api.answers(1, Duration::from_secs(60));
    let (_, stderr) = output(child);
    assert_eq!(answers.len(), 1, "{stderr}");
    assert_eq!(answers[0].kind, "response", "{:?}", answers[0]);
    let c = &answers[0].body["clusters"][0];
    assert_eq!(c["autoscale"]["services"][0]["new_desired"], 2, "{c}");
    let state = t.admin("GET", "/_twin/state");
    let web = state["services"].as_array().unwrap().iter().find(|s| s["name"] == "web").unwrap();
    assert_eq!(web["desired"], 2, "{state}");
}

/// Issue [10]: `ballast-lambda --help` prints help; started outside Lambda it says so (exit
/// 2) instead of panicking; an argument it does not take is refused.
#[test]
fn the_function_binary_explains_itself() {
    let bin = env!("CARGO_BIN_EXE_ballast-lambda");
    let o = Command::new(bin).arg("--help").output().unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("BALLAST_CONFIG") && help.contains("ballast run"), "{help}");
    let o = Command::new(bin).env_remove("AWS_LAMBDA_RUNTIME_API").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("runs inside AWS Lambda") && !err.contains("panicked"), "{err}");
    let o = Command::new(bin).arg("--cluster").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// Issue [10]: a package holding a seed 003 directory (`ballast.d/`, as `package-lambda
/// --config DIR` writes it) runs those definitions.
#[test]
fn a_packaged_seed_003_directory_is_the_configuration() {
    let t = crate::twin::Twin::start(&crate::support::own("twin-autoscale.yaml"), "1");
    t.advance_to(660);
    let root = std::env::temp_dir().join(format!("ballast-task-root-{}", std::process::id()));
    std::fs::create_dir_all(root.join("ballast.d")).unwrap();
    std::fs::write(
        root.join("ballast.d/shop.yml"),
        "autoscale_group: asg-main\nservices:\n  web:\n    min: 1\n    max: 3\n    metric_sources:\n      cloudwatch:\n        \
         - {namespace: Custom/App, metric_name: RequestRate, dimensions: [{name: Service, value: web}], period: 60, \
         statistics: [{name: Average, alias: rate}]}\n    events:\n      - {metric: rate, action: 1, min: 500, max: null}\n",
    )
    .unwrap();
    let api = RuntimeApi::start(vec![("tick".into(), scheduled())]);
    let child = start_function(&api, &[("AWS_ENDPOINT_URL", &t.url), ("LAMBDA_TASK_ROOT", root.to_str().unwrap())]);
    let answers = api.answers(1, Duration::from_secs(60));
    let (_, stderr) = output(child);
    assert_eq!(answers.len(), 1, "{stderr}");
    let c = &answers[0].body["clusters"][0];
    assert_eq!(c["cluster"], "shop", "{c}");
    assert_eq!(c["autoscale"]["services"][0]["new_desired"], 2, "{c}");
    assert!(c["rebalance"].is_null(), "a seed 003 directory runs autoscale alone: {c}");
}
