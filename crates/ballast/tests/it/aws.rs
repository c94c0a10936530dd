//! The real `ballast` binary against the local AWS emulator (moto on 127.0.0.1, started per
//! test on a free port by `tests/moto/server.py`, seeded with boto3 by `tests/moto/seed.py`,
//! and read back independently by `tests/moto/truth.py`). CI installs moto, so these never
//! skip there; without python3 and moto they fail with the install command.
//!
//! moto stores state but schedules nothing; the launcher adds a tiny scheduler so that
//! surges, scale-ins and drains complete (see its docstring). These tests prove that the
//! calls are well formed and change state as intended; behaviour is the simulator's job.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{stderr, stdout, temp_file};

fn moto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/moto")
}

/// One emulator process, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts the emulator and waits until it answers.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new("python3")
            .arg(moto_dir().join("server.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for the AWS emulator tests");
        let m = Moto { child, url: format!("http://127.0.0.1:{port}") };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the AWS emulator did not start; install it with: python3 -m pip install 'moto[server]' boto3"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// Runs one of the helper scripts with the endpoint first.
    pub fn python(&self, script: &str, args: &[&str]) -> Value {
        let o =
            Command::new("python3").arg(moto_dir().join(script)).arg(&self.url).args(args).output().expect("python3");
        assert!(o.status.success(), "{script} failed: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).expect("JSON from the helper")
    }

    /// Seeds a named cluster shape.
    pub fn seed(&self, kind: &str) -> Value {
        self.python("seed.py", &[kind])
    }

    /// The emulator's own view of a cluster.
    pub fn truth(&self, cluster: &str) -> Value {
        self.python("truth.py", &[cluster])
    }

    /// Runs `ballast ARGS --region us-east-1 --endpoint-url URL` with test credentials.
    pub fn ballast(&self, args: &[&str]) -> Output {
        self.ballast_env(args, &[])
    }

    /// [`Moto::ballast`] with more environment variables.
    pub fn ballast_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ballast"));
        c.envs(env.iter().copied());
        c.args(args).args(["--region", "us-east-1", "--endpoint-url", &self.url]).current_dir(std::env::temp_dir());
        for k in ["DRAIN_SLEEP_TIME", "DRAIN_TIMEOUT", "DRAIN_MAX_INSTANCES", "REBALANCE_MAX_RETRY", "COV_PERCENT"] {
            c.env_remove(k);
        }
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c.output().expect("run ballast")
    }

    /// `ballast ARGS --json`, which must succeed, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        self.json_env(args, &[])
    }

    /// [`Moto::json`] with more environment variables.
    pub fn json_env(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let o = self.ballast_env(&a, env);
        assert!(o.status.success(), "ballast {args:?} failed: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)))
    }
}

/// Every operation an action can be carried by (the writes).
const MUTATING: &[&str] = &ballast_core::action::Action::OPERATIONS;

/// A run's actions without its lease calls (which every acting run makes first and last).
pub(crate) fn job_actions(actions: &[Value]) -> Vec<Value> {
    let lease = |a: &Value| ["tag_cluster", "untag_cluster"].contains(&a["action"]["kind"].as_str().unwrap_or(""));
    let out: Vec<Value> = actions.iter().filter(|a| !lease(a)).cloned().collect();
    if out.len() < actions.len() {
        assert!(lease(&actions[0]) && lease(&actions[actions.len() - 1]), "the lease is taken first, given back last");
    }
    out
}

pub(crate) fn calls(v: &Value) -> BTreeMap<String, u64> {
    assert_eq!(v["schema_version"], 1, "{v}");
    let by: BTreeMap<String, u64> = serde_json::from_value(v["api_calls"]["by_operation"].clone()).expect("api_calls");
    assert_eq!(v["api_calls"]["total"].as_u64(), Some(by.values().sum::<u64>()));
    by
}

pub(crate) fn mutating(c: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    c.iter().filter(|(k, _)| MUTATING.contains(&k.as_str())).map(|(k, v)| (k.clone(), *v)).collect()
}

/// The calls a list of actions names: one per action (batches of 10 fit in one here), and
/// the protection read before each stop.
pub(crate) fn named_by(actions: &[Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for a in actions {
        let op = match a["action"]["kind"].as_str().unwrap() {
            "set_instance_state" => "UpdateContainerInstancesState",
            "put_attribute" => "PutAttributes",
            "delete_attribute" => "DeleteAttributes",
            "stop_task" => {
                *m.entry("GetTaskProtection".to_string()).or_default() += 1;
                "StopTask"
            }
            "set_service_desired" | "force_new_deployment" => "UpdateService",
            "set_task_protection" => "UpdateTaskProtection",
            "tag_service" => "TagResource",
            "untag_service" => "UntagResource",
            "set_group_desired" => "SetDesiredCapacity",
            "set_group_limits" => "UpdateAutoScalingGroup",
            "tag_cluster" => "TagResource",
            "untag_cluster" => "UntagResource",
            "terminate_instance" => "TerminateInstanceInAutoScalingGroup",
            k => panic!("unexpected action {k}"),
        };
        *m.entry(op.to_string()).or_default() += 1;
    }
    m
}

fn policy_actions(config: Option<&Path>, env: &[(&str, &str)]) -> BTreeSet<String> {
    // iam-policy calls no API: no endpoint.
    let mut args = vec!["iam-policy", "--region", "us-east-1"];
    if let Some(c) = config {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    let o = crate::support::ballast_env(&args, env);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().split_once(':').unwrap().1.to_string())
        })
        .collect()
}

/// Every call made is one `ballast iam-policy` grants for the configuration.
pub(crate) fn assert_granted(config: Option<&Path>, made: &BTreeMap<String, u64>, env: &[(&str, &str)]) {
    let granted = policy_actions(config, env);
    for op in made.keys() {
        assert!(granted.contains(op), "ballast called {op}, which `ballast iam-policy` does not grant: {granted:?}");
    }
}

fn service_tasks(truth: &Value) -> BTreeSet<String> {
    truth["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["group"] == "service:web")
        .map(|t| t["task_arn"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn status_matches_the_emulator_and_costs_the_documented_calls() {
    let m = Moto::start();
    m.seed("imbalanced");
    let truth = m.truth("shop");
    let v = m.json(&["status"]);
    let clusters = v["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "only the tagged cluster is discovered: {v}");
    let c = &clusters[0];
    assert_eq!(c["cluster"], "shop");
    let ours = c["instances"].as_array().unwrap();
    let theirs = truth["instances"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    for t in theirs {
        let o =
            ours.iter().find(|o| o["container_instance_arn"] == t["container_instance_arn"]).expect("every instance");
        assert_eq!(o["ec2_instance_id"], t["ec2_instance_id"]);
        assert_eq!(o["status"], t["status"]);
        assert_eq!(o["az"], t["attributes"]["ecs.availability-zone"]);
        assert_eq!(o["instance_type"], t["attributes"]["ecs.instance-type"]);
        assert_eq!(o["running_tasks"], t["running_tasks"]);
        let reg = t["registered_cpu"].as_f64().unwrap();
        let cpu = 100.0 * (reg - t["remaining_cpu"].as_f64().unwrap()) / reg;
        assert!((o["cpu_reserved_percent"].as_f64().unwrap() - cpu).abs() < 0.06, "{o} vs {t}");
    }
    // 6 service tasks on one of three instances: COV of counts = sd/mean = sqrt(12)/2.
    assert!((c["cov_percent"]["count"].as_f64().unwrap() - 173.2).abs() < 0.1, "{c}");
    // The snapshot costs exactly the documented calls (3 instances, 1 service, 7 tasks, 2 task
    // definitions), plus discovery (one page of clusters, one describe).
    let mut want: BTreeMap<String, u64> =
        ballast_core::backend::snapshot_calls(3, 1, 7, 2).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    want.insert("ListClusters".into(), 1);
    want.insert("DescribeClusters".into(), 1);
    assert_eq!(calls(&v), want);
}

#[test]
fn dry_run_changes_nothing() {
    let m = Moto::start();
    m.seed("imbalanced");
    let before = m.truth("shop");
    let v = m.json(&["run", "--cluster", "shop", "--dry-run"]);
    let actions = v["clusters"][0]["actions"].as_array().unwrap();
    assert!(!actions.is_empty() && actions.iter().all(|a| a["dry_run"] == true), "{v}");
    assert!(mutating(&calls(&v)).is_empty(), "a dry run sent {:?}", mutating(&calls(&v)));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(m.truth("shop"), before);
}

#[test]
fn stop_method_makes_exactly_the_calls_it_names_and_stops_the_planned_tasks() {
    let m = Moto::start();
    m.seed("imbalanced");
    let plan = m.json(&["plan", "--cluster", "shop"]);
    let planned = plan["clusters"][0]["actions"].as_array().unwrap().clone();
    let before = service_tasks(&m.truth("shop"));
    let v = m.json(&["run", "--cluster", "shop"]);
    let c = &v["clusters"][0];
    let actions = c["actions"].as_array().unwrap();
    // Every mutating call the run made is one of its named actions, and nothing else.
    assert_eq!(mutating(&calls(&v)), named_by(actions), "{v}");
    // The first step is the one the plan named (the rest is re-planned on fresh state).
    let kinds = |a: &[Value]| -> Vec<String> {
        a.iter()
            .filter(|x| {
                !["set_task_protection", "tag_cluster", "untag_cluster"]
                    .contains(&x["action"]["kind"].as_str().unwrap())
            })
            .take(4)
            .map(|x| format!("{} {}", x["action"]["kind"], x["action"]["service"]))
            .collect()
    };
    assert_eq!(kinds(actions), kinds(&planned));
    // ECS stopped exactly the tasks ballast named as victims.
    let after_truth = m.truth("shop");
    let after = service_tasks(&after_truth);
    let stopped: BTreeSet<String> =
        before.difference(&after).map(|a| ballast_core::model::short_id(a).to_string()).collect();
    let named: BTreeSet<String> = actions
        .iter()
        .filter(|a| a["action"]["kind"] == "set_service_desired")
        .filter_map(|a| a["text"].as_str().unwrap().split("stops the unprotected ").nth(1))
        .flat_map(|l| l.split(", ").map(str::to_string))
        .collect();
    assert!(!stopped.is_empty());
    assert_eq!(stopped, named);
    assert_eq!(after.len(), 6, "the service is whole again");
    let after_cov = c["status_after"]["cov_percent"]["count"].as_f64().unwrap();
    assert!(after_cov < 100.0, "{after_cov}");
    // Nothing left behind: no surge tag, the desired count as it was.
    let svc = &after_truth["services"][0];
    assert_eq!(svc["desired"], 6);
    assert!(svc["tags"].as_object().unwrap().is_empty(), "{svc}");
    assert_granted(None, &calls(&v), &[]);
}

#[test]
fn drain_method_marks_drains_returns_and_unmarks() {
    let m = Moto::start();
    m.seed("imbalanced");
    let cfg = temp_file(
        "drain.yaml",
        "clusters:\n  shop:\n    rebalance:\n      method: drain\n      drain: {sleep_time: 10s, timeout: 20s}\n",
    );
    let cfg_s = cfg.to_str().unwrap();
    let v = m.json(&["run", "--config", cfg_s]);
    let all = v["clusters"][0]["actions"].as_array().unwrap();
    let actions = &job_actions(all);
    let kinds: Vec<String> = actions
        .iter()
        .map(|a| format!("{} {}", a["action"]["kind"].as_str().unwrap(), a["action"]["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, ["put_attribute ", "set_instance_state DRAINING", "set_instance_state ACTIVE"], "{v}");
    assert_eq!(mutating(&calls(&v)), named_by(all));
    let drained = actions[0]["action"]["instance_arn"].as_str().unwrap().to_string();
    let truth = m.truth("shop");
    let inst = truth["instances"].as_array().unwrap().iter().find(|i| i["container_instance_arn"] == drained).unwrap();
    assert_eq!(inst["status"], "ACTIVE", "returned to ACTIVE: {inst}");
    assert_eq!(inst["attributes"]["ballast.drained-by"], "ballast", "{inst}");
    assert_eq!(service_tasks(&truth).len(), 6, "no task lost");
    // The next run removes the mark (and finds nothing worth draining again, or drains anew).
    let v2 = m.json(&["run", "--config", cfg_s]);
    let first = &job_actions(v2["clusters"][0]["actions"].as_array().unwrap())[0]["action"];
    assert_eq!(first["kind"], "delete_attribute", "{v2}");
    assert_eq!(first["instance_arn"], drained.as_str());
    assert_granted(Some(&cfg), &calls(&v), &[]);
    assert_granted(Some(&cfg), &calls(&v2), &[]);
}

#[test]
fn one_failing_cluster_does_not_stop_the_others() {
    let m = Moto::start();
    m.seed("imbalanced");
    let cfg = temp_file("two.yaml", "clusters:\n  shop: {}\n  ghost: {}\n");
    let o = m.ballast(&["status", "--config", cfg.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["clusters"][0]["cluster"], "shop");
    assert_eq!(v["errors"][0]["cluster"], "ghost");
    assert!(stderr(&o).contains("cluster ghost"), "{}", stderr(&o));
    // Every cluster failing is a plain failure (exit 1).
    let cfg = temp_file("ghost.yaml", "clusters:\n  ghost: {}\n");
    let o = m.ballast(&["status", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn redeploy_method_forces_a_new_deployment_of_the_planned_service() {
    let m = Moto::start();
    m.seed("imbalanced-rolling");
    let cfg = temp_file("redeploy.yaml", "clusters:\n  shop:\n    rebalance: {method: redeploy}\n");
    let plan = m.json(&["plan", "--config", cfg.to_str().unwrap()]);
    let planned = plan["clusters"][0]["actions"].as_array().unwrap().clone();
    let v = m.json(&["run", "--config", cfg.to_str().unwrap()]);
    let all = v["clusters"][0]["actions"].as_array().unwrap();
    let actions = &job_actions(all);
    assert_eq!(actions.len(), 1, "{v}");
    assert_eq!(actions[0]["action"]["kind"], "force_new_deployment");
    assert_eq!(actions[0]["action"]["service"], "web");
    assert_eq!(planned[0]["action"], actions[0]["action"]);
    assert_eq!(mutating(&calls(&v)), named_by(all));
    assert_granted(Some(&cfg), &calls(&v), &[]);
}

#[test]
fn direct_stops_stop_the_planned_tasks_and_never_a_protected_one() {
    let m = Moto::start();
    m.seed("imbalanced-rolling");
    let plan = m.json(&["plan", "--cluster", "shop"]);
    let planned: Vec<String> = plan["clusters"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"]["kind"] == "stop_task")
        .map(|a| a["action"]["task_arn"].as_str().unwrap().to_string())
        .collect();
    assert!(planned.len() >= 2, "a 50/100 service is moved by direct stops: {plan}");
    // Someone protects the first planned victim after the plan was made.
    let protected = planned[0].clone();
    m.python("protect.py", &["shop", &protected]);
    let before = service_tasks(&m.truth("shop"));
    let o = m.ballast(&["run", "--cluster", "shop", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let after = service_tasks(&m.truth("shop"));
    assert!(after.contains(&protected), "a protected task was stopped");
    let stopped: BTreeSet<String> = before.difference(&after).cloned().collect();
    let sent: BTreeSet<String> = v["clusters"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"]["kind"] == "stop_task")
        .map(|a| a["action"]["task_arn"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stopped, sent, "exactly the tasks ballast stopped are gone");
    let c = calls(&v);
    assert_eq!(c.get("StopTask").copied().unwrap_or(0), sent.len() as u64);
    // Issue [10]: the run reads the protection of the tasks its plan would stop before it
    // decides, so it never chooses the protected task (rather than having a stop refused).
    assert!(!sent.contains(&protected), "a protected task was chosen: {v}");
    assert!(!sent.is_empty(), "the others still move: {v}");
    assert!(c["GetTaskProtection"] > sent.len() as u64, "read before deciding and again before every stop: {c:?}");
    assert!(!stderr(&o).contains("refused"), "{}", stderr(&o));
    assert_granted(None, &c, &[]);
}

/// Issue [10]: a task an application protected (a queue worker mid-job) keeps its
/// protection, and its expiry to the second, through a surge that protects every other task
/// of its service and then clears what it set; the tasks ballast protected end unprotected.
#[test]
fn an_application_protected_task_keeps_its_protection_through_a_surge() {
    let m = Moto::start();
    m.seed("imbalanced");
    let plan = m.json(&["plan", "--cluster", "shop"]);
    let victims: BTreeSet<String> = plan["clusters"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["text"].as_str().unwrap().split("stops the unprotected ").nth(1))
        .flat_map(|l| l.split(", ").map(str::to_string))
        .collect();
    assert!(!victims.is_empty(), "the plan surges: {plan}");
    let before = service_tasks(&m.truth("shop"));
    let worker = before
        .iter()
        .find(|a| !victims.contains(ballast_core::model::short_id(a)))
        .expect("a task the surge would protect")
        .clone();
    let set = m.python("protect.py", &["shop", &worker, "90"]);
    let expiry = set["expires"][&worker].as_str().unwrap().to_string();
    let v = m.json(&["run", "--cluster", "shop"]);
    let actions = v["clusters"][0]["actions"].as_array().unwrap();
    let touched: BTreeSet<String> = actions
        .iter()
        .filter(|a| a["action"]["kind"] == "set_task_protection")
        .flat_map(|a| a["action"]["task_arns"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()))
        .collect();
    assert!(!touched.is_empty(), "the surge protected the other tasks: {v}");
    assert!(!touched.contains(&worker), "ballast sent a protection call for the application's task: {v}");
    let after = service_tasks(&m.truth("shop"));
    assert!(after.contains(&worker), "the protected task still runs");
    let mut args = vec!["shop"];
    args.extend(after.iter().map(String::as_str));
    let p = m.python("protection.py", &args);
    assert_eq!(p[&worker]["enabled"], true, "{p}");
    assert_eq!(p[&worker]["expires"].as_str(), Some(expiry.as_str()), "the expiry is the application's: {p}");
    for t in after.iter().filter(|t| **t != worker) {
        assert_eq!(p[t]["enabled"], false, "ballast left its own protection on {t}: {p}");
    }
}

/// Issue [10]: a network failure is named for what it is, once, without the SDK's debug
/// dump; `--json` prints one valid document with an `errors` array even when discovery fails.
#[test]
fn network_failures_are_named_once_and_json_stays_valid() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let run = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ballast"));
        c.args(args).args(["--region", "us-east-1", "--endpoint-url", &url]).current_dir(std::env::temp_dir());
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c.output().unwrap()
    };
    for args in [vec!["status", "--json"], vec!["plan", "--json"], vec!["run", "--cluster", "shop", "--json"]] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let v: Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&o)));
        let errors = v["errors"].as_array().expect("an errors array");
        assert_eq!(errors.len(), 1, "{v}");
        let e = errors[0]["error"].as_str().unwrap();
        assert!(e.contains("could not reach the service") && e.contains("Connection refused"), "{e}");
        assert!(!e.contains("DispatchFailure") && !e.contains("server error"), "{e}");
        let err = stderr(&o);
        assert_eq!(err.matches("could not reach the service").count(), 1, "named once: {err}");
    }
}

/// Issue [10]: what tasks use is not read on AWS, so those measures are refused (exit 2,
/// nothing changed) and status shows them as unknown (null), never a made-up figure.
#[test]
fn utilization_measures_are_refused_on_aws_and_unknown_in_status() {
    let m = Moto::start();
    m.seed("imbalanced");
    let before = m.truth("shop");
    let cfg = temp_file("utilized.yaml", "clusters:\n  shop:\n    rebalance: {metric: cpu-utilized}\n");
    let o = m.ballast(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("clusters.shop.rebalance.metric: cpu-utilized"), "{}", stderr(&o));
    assert_eq!(m.truth("shop"), before);
    let v = m.json(&["status", "--cluster", "shop"]);
    let cov = &v["clusters"][0]["cov_percent"];
    assert!(cov["cpu_utilized"].is_null() && cov["memory_utilized"].is_null(), "{cov}");
    assert!(cov["cpu"].is_number(), "{cov}");
}

/// Issue [10]: a service with 5/1/0 tasks over three AZs and no placement strategy is planned
/// by ECS's default for services (spread over AZs, then instances), and the run leaves 2/2/2.
#[test]
fn no_strategy_means_ecs_default_spread_over_zones() {
    let m = Moto::start();
    m.seed("three-az");
    let per_az = |truth: &Value| -> BTreeMap<String, u64> {
        truth["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["attributes"]["ecs.availability-zone"].as_str().unwrap().to_string(),
                    i["running_tasks"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let before = per_az(&m.truth("shop"));
    assert_eq!(before.values().copied().collect::<Vec<_>>(), vec![5, 1, 0], "{before:?}");
    let plan = m.json(&["plan", "--cluster", "shop"]);
    let c = &plan["clusters"][0];
    assert_eq!(c["rebalance"]["verdict"], "act", "{c}");
    assert!(
        c["rebalance"]["services"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("spread(attribute:ecs.availability-zone), spread(instanceId)"),
        "{c}"
    );
    m.json(&["run", "--cluster", "shop"]);
    let after = per_az(&m.truth("shop"));
    assert_eq!(after.values().copied().collect::<Vec<_>>(), vec![2, 2, 2], "{after:?}");
}

/// Issue [10]: the task definition's own placement constraint is honoured: the plan moves
/// tasks only to the instance that satisfies it.
#[test]
fn task_definition_constraints_decide_where_tasks_go() {
    let m = Moto::start();
    let seeded = m.seed("constrained");
    let ids: Vec<String> = seeded["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ec2_instance_id"].as_str().unwrap().to_string())
        .collect();
    let plan = m.json(&["plan", "--cluster", "shop"]);
    let c = &plan["clusters"][0];
    let moves: Vec<&Value> =
        c["rebalance"]["services"].as_array().unwrap().iter().flat_map(|s| s["moves"].as_array().unwrap()).collect();
    assert!(!moves.is_empty(), "{c}");
    let truth = m.truth("shop");
    let ec2_of = |arn: &str| -> String {
        truth["instances"].as_array().unwrap().iter().find(|i| i["container_instance_arn"] == arn).unwrap()["ec2_instance_id"].as_str().unwrap().to_string()
    };
    for mv in moves {
        let to = ec2_of(mv["to"].as_str().unwrap());
        assert_eq!(to, ids[1], "only the second instance has tier=web: {c}");
    }
}

/// Issue [12]: a service Application Auto Scaling scales (target tracking) is not surged:
/// the two would fight over its desired count; the plan says so and changes nothing of it.
#[test]
fn a_service_with_application_auto_scaling_is_left_alone() {
    let m = Moto::start();
    m.seed("imbalanced");
    m.python("scale_target.py", &["shop", "web"]);
    let before = m.truth("shop");
    let plan = m.json(&["plan", "--cluster", "shop"]);
    let c = &plan["clusters"][0];
    let skipped = c["rebalance"]["skipped"].as_array().unwrap();
    let web = skipped.iter().find(|s| s["service"] == "web").unwrap_or_else(|| panic!("web not skipped: {c}"));
    assert!(web["reason"].as_str().unwrap().contains("Application Auto Scaling (TargetTrackingScaling"), "{web}");
    let v = m.json(&["run", "--cluster", "shop"]);
    assert!(job_actions(v["clusters"][0]["actions"].as_array().unwrap()).is_empty(), "{v}");
    assert_eq!(m.truth("shop")["services"], before["services"]);
    assert_granted(None, &calls(&v), &[]);
}

#[test]
fn a_run_changes_nothing_while_another_holds_the_lease() {
    let m = Moto::start();
    m.seed("imbalanced");
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 120_000;
    m.python("tag_cluster.py", &["shop", "ballast:lease", &format!("ballast-lambda-7-abc@{until}")]);
    let before = m.truth("shop");
    let v = m.json(&["run", "--cluster", "shop"]);
    let c = &v["clusters"][0];
    assert!(c["lease_held"].as_str().unwrap().contains("ballast-lambda-7-abc"), "{v}");
    assert!(mutating(&calls(&v)).is_empty(), "{v}");
    assert_eq!(m.truth("shop"), before);
    // An expired lease is no lease: the run acts, and gives its own lease back.
    m.python("tag_cluster.py", &["shop", "ballast:lease", "ballast-lambda-7-abc@1000"]);
    let v = m.json(&["run", "--cluster", "shop"]);
    let actions = v["clusters"][0]["actions"].as_array().unwrap();
    assert!(v["clusters"][0]["lease_held"].is_null(), "{v}");
    assert_eq!(actions.first().unwrap()["action"]["kind"], "tag_cluster", "{v}");
    assert_eq!(actions.last().unwrap()["action"]["kind"], "untag_cluster", "{v}");
}

/// A one-route HTTP JSON metric server on 127.0.0.1 (a RabbitMQ stand-in): answers every
/// request with `body`; sends each request head.
pub(crate) fn metric_server(body: &'static str) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, rx)
}
