//! The Lambda function (`ballast-lambda`, custom runtime `provided.al2023`): which event asks
//! for what, the configuration from the environment, and one invocation's run over the same
//! [`crate::runner`] the CLI uses. The binary (`src/bin/ballast-lambda.rs`) only wires this to
//! `lambda_runtime`.
//!
//! Events (docs/lambda.md):
//! - EventBridge "Scheduled Event" → the configured jobs for every configured cluster;
//! - "ECS Container Instance State Change" → that cluster's rebalance, now (seed 001's trigger
//!   done right: every state change is evaluated, and the planner decides);
//! - an SNS-wrapped CloudWatch alarm on `AWS/EC2Spot` `PendingCapacity`, `{"fleetID": "sfr-…"}`
//!   (seed 004's inputs), "EC2 Spot Instance Interruption Warning" and "EC2 Instance Rebalance
//!   Recommendation" → the spot-fallback job of the cluster configured for that fleet;
//! - anything else, or a body that is not JSON → an error response of type
//!   `NonRetryable.BadEvent`, one log line, no action; the function keeps serving.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ballast_aws::calls::CallLog;
use ballast_aws::{AwsBackend, AwsOptions, Clients};
use ballast_core::backend::Backend;
use ballast_core::duration::Millis;
use ballast_core::event::{Envelope, InstanceStateChange};
use ballast_core::model::short_id;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Diagnostic, LambdaEvent, LambdaInvocation};
use serde_json::{Value, json};

use crate::config_file::{self, ClustersError, Config};
use ballast_core::config::{ClusterConfig, SpotFallbackConfig};
use ballast_core::view::{Jobs, Trigger as Woke};
use ballast_exec::orchestrate::{self, Cause, ClusterRun, jobs_for};

/// Time kept back from the invocation's deadline for the answer and the metrics.
pub const DEADLINE_MARGIN: Millis = Millis::secs(5);

/// What an event asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// The schedule: every configured job for every configured cluster.
    Scheduled,
    /// A container instance changed state: that cluster's rebalance.
    Instance {
        /// Cluster name.
        cluster: String,
        /// EC2 instance id.
        ec2_instance_id: String,
    },
    /// A Spot shortfall (alarm or seed 004's `fleetID`): that fleet's spot-fallback.
    SpotShortfall {
        /// Spot Fleet request id (or Spot group).
        fleet: String,
    },
    /// A Spot interruption warning or rebalance recommendation for one instance.
    SpotWarning {
        /// EC2 instance id.
        ec2_instance_id: String,
    },
}

/// The body ballast substitutes for one that is not JSON (see [`MalformedGuard`]).
const MALFORMED: &str = "__ballast_malformed_event";

/// Reads an event. The error says what was expected.
pub fn classify(v: &Value) -> Result<Trigger, String> {
    if let Some(why) = v.get(MALFORMED).and_then(Value::as_str) {
        return Err(format!("the event is not JSON ({why})"));
    }
    let detail_type = v.get("detail-type").and_then(Value::as_str);
    let source = v.get("source").and_then(Value::as_str);
    match (source, detail_type) {
        (Some("aws.events"), Some("Scheduled Event")) => return Ok(Trigger::Scheduled),
        (Some("aws.ecs"), Some("ECS Container Instance State Change")) => {
            let e: Envelope<InstanceStateChange> = serde_json::from_value(v.clone())
                .map_err(|e| format!("an ECS Container Instance State Change without the fields ballast reads: {e}"))?;
            return Ok(Trigger::Instance {
                cluster: short_id(&e.detail.cluster_arn).to_string(),
                ec2_instance_id: e.detail.ec2_instance_id,
            });
        }
        (Some("aws.ec2"), Some("EC2 Spot Instance Interruption Warning" | "EC2 Instance Rebalance Recommendation")) => {
            let id = v
                .pointer("/detail/instance-id")
                .and_then(Value::as_str)
                .ok_or("a Spot warning without detail.instance-id")?;
            return Ok(Trigger::SpotWarning { ec2_instance_id: id.to_string() });
        }
        _ => {}
    }
    if let Some(f) = v.get("fleetID").and_then(Value::as_str) {
        return Ok(Trigger::SpotShortfall { fleet: f.to_string() });
    }
    if let Some(msg) = v.pointer("/Records/0/Sns/Message").and_then(Value::as_str) {
        let alarm: Value =
            serde_json::from_str(msg).map_err(|e| format!("an SNS message that is not a CloudWatch alarm: {e}"))?;
        let trigger = alarm.get("Trigger").ok_or("an SNS message without an alarm Trigger")?;
        let dims = trigger.get("Dimensions").and_then(Value::as_array).cloned().unwrap_or_default();
        let fleet = dims
            .iter()
            .find(|d| d.get("name").and_then(Value::as_str) == Some("FleetRequestId"))
            .and_then(|d| d.get("value").and_then(Value::as_str));
        return match (trigger.get("MetricName").and_then(Value::as_str), fleet) {
            (Some("PendingCapacity"), Some(f)) => Ok(Trigger::SpotShortfall { fleet: f.to_string() }),
            _ => Err("an alarm that is not on AWS/EC2Spot PendingCapacity with a FleetRequestId dimension".into()),
        };
    }
    Err("not an event ballast handles: expected an EventBridge Scheduled Event, an ECS Container Instance State \
         Change, an EC2 Spot warning, an SNS-wrapped PendingCapacity alarm or {\"fleetID\": \"sfr-…\"}"
        .into())
}

fn diagnostic(kind: &str, message: impl Into<String>) -> Diagnostic {
    let message = message.into();
    tracing::error!(error_type = kind, "{message}");
    Diagnostic { error_type: kind.to_string(), error_message: message }
}

/// Where the configuration comes from: `BALLAST_CONFIG` (the YAML itself), else the file or
/// directory `BALLAST_CONFIG_FILE`, else `ballast.yaml` or the seed 003 directory `ballast.d`
/// beside `bootstrap` (`$LAMBDA_TASK_ROOT`), else none (every cluster tagged
/// `ballast:enabled=true`, with the defaults).
pub fn config_from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Config>, String> {
    let cfg = read_config(lookup)?;
    // The function runs on AWS: the measures it cannot read are refused at start.
    for (name, c) in cfg.iter().flat_map(|c| c.clusters.iter()) {
        crate::commands::aws::refuse_unmeasured(name, c).map_err(|e| e.to_string())?;
    }
    Ok(cfg)
}

fn read_config(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Config>, String> {
    let env = config_file::env_settings().map_err(|e| e.to_string())?;
    if let Some(text) = lookup("BALLAST_CONFIG").filter(|t| !t.trim().is_empty()) {
        return config_file::parse(&text, "BALLAST_CONFIG", &env).map(Some).map_err(|e| e.to_string());
    }
    // The package holds ballast.yaml, or a directory of seed 003 definitions as ballast.d/
    // (scripts/package-lambda --config FILE|DIR).
    let file = lookup("BALLAST_CONFIG_FILE").or_else(|| {
        let root = lookup("LAMBDA_TASK_ROOT")?;
        ["ballast.yaml", "ballast.d"].iter().map(|n| format!("{root}/{n}")).find(|p| Path::new(p).exists())
    });
    match file {
        Some(f) => config_file::load(Path::new(&f), &env).map(Some).map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// The function's state across invocations: the configuration (or why it is unusable) and
/// the SDK clients, built once at start.
pub struct Function {
    config: Result<Option<Config>, String>,
    clients: Clients,
    log: Arc<CallLog>,
    handle: tokio::runtime::Handle,
    /// Task definitions described by earlier invocations of this process (immutable).
    task_defs: Arc<std::sync::Mutex<BTreeMap<String, ballast_core::model::TaskDefinition>>>,
}

impl Function {
    /// Builds the clients and reads the configuration; a bad configuration is logged now and
    /// answered as `NonRetryable.BadConfig` by every invocation.
    pub async fn from_env() -> Function {
        let config = config_from_env(&|k| std::env::var(k).ok());
        if let Err(e) = &config {
            tracing::error!(error_type = "NonRetryable.BadConfig", "{e}");
        }
        let sdk = ballast_aws::connect::sdk_config(&AwsOptions::default()).await;
        let log = Arc::new(CallLog::default());
        let clients = ballast_aws::connect::clients(&sdk, &log);
        Function { config, clients, log, handle: tokio::runtime::Handle::current(), task_defs: Arc::default() }
    }

    /// One invocation.
    pub async fn handle(self: Arc<Self>, ev: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let deadline = Millis(ev.context.deadline);
        let f = self.clone();
        tokio::task::spawn_blocking(move || f.invoke(&ev.payload, deadline))
            .await
            .map_err(|e| diagnostic("Retryable.Internal", format!("the run panicked: {e}")))?
    }

    /// One invocation, on a blocking thread.
    pub fn invoke(&self, payload: &Value, deadline: Millis) -> Result<Value, Diagnostic> {
        let trigger = classify(payload).map_err(|e| diagnostic("NonRetryable.BadEvent", e))?;
        let cfg = self.config.clone().map_err(|e| diagnostic("NonRetryable.BadConfig", e))?;
        let mut backend = AwsBackend::on_handle(self.handle.clone(), self.clients.clone(), self.log.clone())
            .with_task_definitions(self.task_defs.clone());
        let calls_before = self.log.counts();
        let budget = deadline - backend.now() - DEADLINE_MARGIN;
        tracing::info!(?trigger, budget_s = budget.as_secs(), "invocation");
        let mut cause =
            Cause { holder: Some(ballast_exec::lease::holder_id("ballast-lambda", backend.now())), ..Cause::default() };
        let clusters = match &trigger {
            Trigger::Scheduled => self.clusters(&mut backend, cfg.as_ref(), None)?,
            Trigger::Instance { cluster, .. } => {
                let list = self.clusters(&mut backend, cfg.as_ref(), Some(cluster))?;
                if list.is_empty() {
                    tracing::info!(cluster = %cluster, "an instance event for a cluster ballast does not manage; ignored");
                    return Ok(json!({"ignored": format!("cluster {cluster} is not configured or tagged")}));
                }
                cause.trigger = Woke::InstanceJoined;
                list
            }
            Trigger::SpotShortfall { fleet } => {
                let list = spot_clusters(cfg.as_ref(), |s| &s.fleet == fleet);
                if list.is_empty() {
                    return Err(diagnostic(
                        "NonRetryable.NotConfigured",
                        format!("no cluster in the configuration has a spot_fallback section for fleet {fleet}"),
                    ));
                }
                cause.trigger = Woke::SpotShortfall;
                list
            }
            Trigger::SpotWarning { ec2_instance_id } => {
                let list = spot_clusters(cfg.as_ref(), |_| true);
                if list.is_empty() {
                    return Err(diagnostic(
                        "NonRetryable.NotConfigured",
                        format!(
                            "a Spot warning for {ec2_instance_id}, but no cluster in the configuration has a spot_fallback section"
                        ),
                    ));
                }
                cause.trigger = Woke::SpotWarning(ec2_instance_id.clone());
                list
            }
        };
        let jobs: Jobs = jobs_for(&cause.trigger);
        let end = backend.now() + budget;
        let mut runs = Vec::new();
        let mut errors = Vec::new();
        for (name, c) in &clusters {
            let left = end - backend.now();
            match orchestrate::run_cluster(&mut backend, name, c, jobs, &cause, false, left, false) {
                Ok(r) => runs.push(r),
                Err(e) => {
                    tracing::error!(cluster = %name, "{e}");
                    errors.push(json!({"cluster": name, "error": e.to_string()}));
                }
            }
        }
        let calls = delta(&calls_before, &self.log.counts());
        for r in &runs {
            println!("{}", emf(r, calls.values().sum(), errors.len()));
        }
        if runs.is_empty() && !errors.is_empty() {
            return Err(diagnostic(
                "Retryable.ClusterFailed",
                errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
            ));
        }
        Ok(crate::render::document(runs.iter().map(crate::render::run_json).collect(), json!(errors), &calls))
    }

    /// The configured clusters (named, or found by tag), or only `only` if it is one of them.
    fn clusters(
        &self,
        backend: &mut AwsBackend,
        cfg: Option<&Config>,
        only: Option<&str>,
    ) -> Result<Vec<(String, ClusterConfig)>, Diagnostic> {
        let found =
            config_file::configured_clusters(cfg, only, &mut |k, v| backend.discover(k, v).map_err(|e| e.to_string()));
        match found {
            Ok(m) => Ok(m.into_iter().collect()),
            Err(ClustersError::Input(m)) => Err(diagnostic("NonRetryable.BadConfig", m)),
            Err(ClustersError::Discovery(m)) => Err(diagnostic("Retryable.Discovery", m)),
        }
    }
}

/// The named clusters whose spot-fallback section matches.
fn spot_clusters(cfg: Option<&Config>, want: impl Fn(&SpotFallbackConfig) -> bool) -> Vec<(String, ClusterConfig)> {
    cfg.map(|c| {
        c.clusters
            .iter()
            .filter(|(_, cc)| cc.spot_fallback.as_ref().is_some_and(&want))
            .map(|(n, cc)| (n.clone(), cc.clone()))
            .collect()
    })
    .unwrap_or_default()
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

/// One CloudWatch Embedded Metric Format line for a cluster's run (namespace `ballast`,
/// dimension `Cluster`).
pub fn emf(r: &ClusterRun, api_calls: u64, errors: usize) -> String {
    let before = r.plan.rebalance.as_ref().map_or(0.0, |p| p.cov_before);
    let restarts = r.restarts();
    let v = json!({
        "_aws": {
            "Timestamp": ballast_aws::wall_clock().0,
            "CloudWatchMetrics": [{
                "Namespace": "ballast",
                "Dimensions": [["Cluster"]],
                "Metrics": [
                    {"Name": "CovBefore", "Unit": "Percent"},
                    {"Name": "CovAfter", "Unit": "Percent"},
                    {"Name": "TaskRestarts", "Unit": "Count"},
                    {"Name": "InstancesDrained", "Unit": "Count"},
                    {"Name": "InstancesReturned", "Unit": "Count"},
                    {"Name": "ApiCalls", "Unit": "Count"},
                    {"Name": "Errors", "Unit": "Count"}
                ]
            }]
        },
        "Cluster": r.cluster,
        "CovBefore": before,
        "CovAfter": r.cov_after.unwrap_or(before),
        "TaskRestarts": restarts,
        "InstancesDrained": r.drained(),
        "InstancesReturned": r.returned(),
        "ApiCalls": api_calls,
        "Errors": errors,
    });
    v.to_string()
}

/// A layer that turns a body that is not JSON into a marker the handler answers as a bad
/// event (otherwise the runtime would answer it with a generic deserialisation error).
#[derive(Debug, Clone, Copy, Default)]
pub struct MalformedGuard;

impl<S> Layer<S> for MalformedGuard {
    type Service = Guarded<S>;
    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded(inner)
    }
}

/// The service [`MalformedGuard`] wraps.
#[derive(Debug, Clone)]
pub struct Guarded<S>(S);

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for Guarded<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut inv: LambdaInvocation) -> Self::Future {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&inv.body) {
            let body = json!({ MALFORMED: e.to_string() }).to_string();
            inv.body = body.into_bytes().into();
        }
        self.0.call(inv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_event_kind() {
        let sched = json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        assert_eq!(classify(&sched).unwrap(), Trigger::Scheduled);
        assert_eq!(
            classify(&json!({"fleetID": "sfr-123"})).unwrap(),
            Trigger::SpotShortfall { fleet: "sfr-123".into() }
        );
        let alarm = json!({"AlarmName": "spot", "NewStateValue": "ALARM", "Trigger": {"MetricName": "PendingCapacity",
            "Namespace": "AWS/EC2Spot", "Dimensions": [{"name": "FleetRequestId", "value": "sfr-9"}]}});
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": alarm.to_string()}}]});
        assert_eq!(classify(&sns).unwrap(), Trigger::SpotShortfall { fleet: "sfr-9".into() });
        let warn = json!({"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning",
            "detail": {"instance-id": "i-1", "instance-action": "terminate"}});
        assert_eq!(classify(&warn).unwrap(), Trigger::SpotWarning { ec2_instance_id: "i-1".into() });
        assert!(classify(&json!({"hello": 1})).unwrap_err().contains("not an event ballast handles"));
        assert!(classify(&json!({"source": "aws.ecs", "detail-type": "ECS Container Instance State Change"})).is_err());
        assert!(classify(&json!({MALFORMED: "expected value"})).unwrap_err().contains("not JSON"));
    }
}
