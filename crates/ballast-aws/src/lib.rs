//! ballast-aws: the [`Backend`] seam over the official AWS SDK for Rust.
//!
//! The executor and the jobs are synchronous and written once against
//! [`ballast_core::backend::Backend`]; this crate bridges that to the async SDK by running each
//! call to completion on a tokio runtime it owns (the CLI) or is handed (the Lambda handler,
//! from a blocking task). Every AWS SDK crate of the workspace lives here.
//!
//! # Layout
//! - [`connect`]: clients from the standard credential chain, `--region`, `--endpoint-url`,
//!   retry and timeout settings; [`AwsBackend`] itself.
//! - [`calls`]: the operations the adapter may call (one table, which the IAM policy and the
//!   tests read), the client-side token buckets and the per-attempt call counter.
//! - [`read`]: a whole-cluster snapshot (paginated lists, batched describes, task
//!   definitions cached) and cluster discovery by tag.
//! - [`write`]: every action kind, batched at the API's maximum.
//! - [`metrics`]: GetMetricData, the latest complete datapoint of each query.
//! - [`http`]: the HTTP JSON metric client (5 s, 1 MiB, credentials never logged).
//! - [`errors`]: SDK errors mapped onto [`BackendError`].
//! - [`iam`]: the least-privilege IAM policy for a configuration.

#![forbid(unsafe_code)]

pub mod calls;
pub mod connect;
pub mod errors;
pub mod http;
pub mod iam;
pub mod metrics;
pub mod read;
pub mod write;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, GroupInfo, HttpRequest, MetricQuery};
use ballast_core::duration::Millis;
use ballast_core::model::{Snapshot, TaskDefinition};

pub use connect::{AwsOptions, connect};

/// Where the SDK's futures run.
enum Rt {
    /// A runtime of our own (the CLI).
    Owned(tokio::runtime::Runtime),
    /// A multi-threaded runtime's handle, used from a blocking thread (the Lambda handler).
    Handle(tokio::runtime::Handle),
}

/// The three SDK clients ballast uses.
#[derive(Clone, Debug)]
pub struct Clients {
    /// ECS.
    pub ecs: aws_sdk_ecs::Client,
    /// EC2 Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// Application Auto Scaling (which services it scales).
    pub appscaling: aws_sdk_applicationautoscaling::Client,
}

/// Real clusters behind the [`Backend`] seam.
pub struct AwsBackend {
    rt: Rt,
    clients: Clients,
    calls: Arc<calls::CallLog>,
    buckets: calls::Gate,
    /// Task definitions are immutable: each is described once per process (the Lambda
    /// function shares one cache across its invocations).
    task_defs: Arc<std::sync::Mutex<BTreeMap<String, TaskDefinition>>>,
    /// Service name → ARN per cluster, from the last snapshot (for tagging).
    service_arns: BTreeMap<(String, String), String>,
    /// Cluster name → ARN, from DescribeClusters (for the lease tag).
    cluster_arns: BTreeMap<String, String>,
}

impl AwsBackend {
    /// A backend over given clients, on a runtime of its own. `calls` must be the log the
    /// clients' [`calls::CountCalls`] interceptor writes to (see [`connect`]).
    pub fn new(clients: Clients, calls: Arc<calls::CallLog>) -> std::io::Result<AwsBackend> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(AwsBackend::with_rt(Rt::Owned(rt), clients, calls))
    }

    /// A backend over given clients that blocks on `handle` (a multi-threaded runtime); call
    /// it from a blocking thread (`tokio::task::spawn_blocking`).
    pub fn on_handle(handle: tokio::runtime::Handle, clients: Clients, calls: Arc<calls::CallLog>) -> AwsBackend {
        AwsBackend::with_rt(Rt::Handle(handle), clients, calls)
    }

    fn with_rt(rt: Rt, clients: Clients, calls: Arc<calls::CallLog>) -> AwsBackend {
        AwsBackend {
            rt,
            clients,
            calls,
            buckets: calls::Gate::default(),
            task_defs: Arc::default(),
            service_arns: BTreeMap::new(),
            cluster_arns: BTreeMap::new(),
        }
    }

    /// Runs one future to completion.
    pub(crate) fn block<F: Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Rt::Owned(rt) => rt.block_on(f),
            Rt::Handle(h) => h.block_on(f),
        }
    }

    /// Shares `cache` of task definitions (one per process, across the Lambda function's
    /// invocations: they are immutable).
    pub fn with_task_definitions(mut self, cache: Arc<std::sync::Mutex<BTreeMap<String, TaskDefinition>>>) -> Self {
        self.task_defs = cache;
        self
    }

    fn take_defs(&self) -> BTreeMap<String, TaskDefinition> {
        std::mem::take(&mut *self.task_defs.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn put_defs(&self, defs: BTreeMap<String, TaskDefinition>) {
        *self.task_defs.lock().unwrap_or_else(|e| e.into_inner()) = defs;
    }

    /// API calls made so far (every attempt, retries included), by operation.
    pub fn api_calls(&self) -> BTreeMap<String, u64> {
        self.calls.counts()
    }

    /// The clusters that opt in with the tag `key` (= `value`, when given).
    pub fn discover(&mut self, key: &str, value: Option<&str>) -> Result<Vec<String>, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        self.block(read::discover(&clients, &gate, key, value))
    }
}

impl AwsBackend {
    fn cluster_tags_and_arn(&mut self, cluster: &str) -> Result<(String, BTreeMap<String, String>), BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        let (arn, tags) = self.block(read::cluster_tags(&clients, &gate, cluster))?;
        self.cluster_arns.insert(cluster.to_string(), arn.clone());
        Ok((arn, tags))
    }
}

/// Milliseconds since the Unix epoch (the clock snapshots and ECS timestamps share).
pub fn wall_clock() -> Millis {
    Millis(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

impl Backend for AwsBackend {
    fn snapshot(&mut self, cluster: &str) -> Result<Snapshot, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        let mut defs = self.take_defs();
        let r = self.block(read::snapshot(&clients, &gate, cluster, &mut defs));
        self.put_defs(defs);
        let snap = r?;
        for s in &snap.services {
            self.service_arns.insert((cluster.to_string(), s.name.clone()), s.arn.clone());
        }
        Ok(snap)
    }

    fn apply(&mut self, cluster: &str, action: &Action) -> Result<(), BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        let arn = match action {
            Action::TagService { service, .. } | Action::UntagService { service, .. } => {
                self.service_arns.get(&(cluster.to_string(), service.clone())).cloned()
            }
            Action::TagCluster { .. } | Action::UntagCluster { .. } => match self.cluster_arns.get(cluster) {
                Some(a) => Some(a.clone()),
                None => Some(self.cluster_tags_and_arn(cluster)?.0),
            },
            _ => None,
        };
        self.block(write::apply(&clients, &gate, cluster, action, arn))
    }

    fn cluster_tags(&mut self, cluster: &str) -> Result<BTreeMap<String, String>, BackendError> {
        Ok(self.cluster_tags_and_arn(cluster)?.1)
    }

    fn group(&mut self, name: &str) -> Result<GroupInfo, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        self.block(read::group(&clients, &gate, name))
    }

    fn metric_data(&mut self, queries: &[MetricQuery]) -> Result<Vec<Option<f64>>, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        self.block(metrics::get(&clients, &gate, queries, wall_clock()))
    }

    fn http(&mut self, req: &HttpRequest) -> Result<Vec<u8>, BackendError> {
        self.block(http::fetch(req))
    }

    fn now(&self) -> Millis {
        wall_clock()
    }

    fn instance(
        &mut self,
        cluster: &str,
        arn: &str,
    ) -> Result<Option<ballast_core::model::ContainerInstance>, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        self.block(read::one_instance(&clients, &gate, cluster, arn))
    }

    fn scaled_by(&mut self, cluster: &str, services: &[String]) -> Result<BTreeMap<String, Vec<String>>, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        let mut out = BTreeMap::new();
        // DescribeScalableTargets takes up to 50 resource ids.
        for chunk in services.chunks(50) {
            out.extend(self.block(read::scalable_targets(&clients, &gate, cluster, chunk))?);
        }
        Ok(out)
    }

    fn task_protection(
        &mut self,
        cluster: &str,
        task_arns: &[String],
    ) -> Result<BTreeMap<String, ballast_core::backend::TaskProtection>, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        let mut out = BTreeMap::new();
        for chunk in task_arns.chunks(ballast_core::backend::PROTECTION_BATCH) {
            out.extend(self.block(read::task_protection(&clients, &gate, cluster, chunk))?);
        }
        Ok(out)
    }

    fn service_state(
        &mut self,
        cluster: &str,
        service: &str,
    ) -> Result<Option<ballast_core::model::ServiceState>, BackendError> {
        let (clients, gate) = (self.clients.clone(), self.buckets.clone());
        let mut defs = self.take_defs();
        let r = self.block(read::service_state(&clients, &gate, cluster, service, &mut defs));
        self.put_defs(defs);
        let s = r?;
        if let Some(st) = &s {
            self.service_arns.insert((cluster.to_string(), st.service.name.clone()), st.service.arn.clone());
        }
        Ok(s)
    }

    fn sleep(&mut self, d: Millis) -> Result<(), BackendError> {
        std::thread::sleep(std::time::Duration::from_millis(d.0));
        Ok(())
    }
}
