//! What one run reads, once, before any job decides: the cluster's snapshot, the Auto Scaling
//! groups the configuration names, and the metrics its jobs use ([`Reads`] says which). Every
//! job decides from this one value; the executor reads again only to check a step's guard.

use std::collections::{BTreeMap, BTreeSet};

use crate::autoscale::Source;
use crate::backend::{GroupInfo, HttpRequest, MetricQuery};
use crate::config::{ClusterConfig, SpotSource};
use crate::duration::Millis;
use crate::model::Snapshot;

/// Which jobs a run asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Jobs {
    /// The rebalance job (when enabled for the cluster).
    pub rebalance: bool,
    /// The spot-fallback job (when configured for the cluster).
    pub spot_fallback: bool,
    /// The autoscale job (when configured for the cluster).
    pub autoscale: bool,
}

impl Jobs {
    /// Every configured job.
    pub const ALL: Jobs = Jobs { rebalance: true, spot_fallback: true, autoscale: true };
    /// No job; add the ones wanted.
    pub const NONE: Jobs = Jobs { rebalance: false, spot_fallback: false, autoscale: false };

    /// The jobs of `cfg` that this selection runs.
    pub fn of(self, cfg: &ClusterConfig) -> Jobs {
        Jobs {
            rebalance: self.rebalance && cfg.rebalance.enabled,
            spot_fallback: self.spot_fallback && cfg.spot_fallback.is_some(),
            autoscale: self.autoscale && cfg.autoscale.is_some(),
        }
    }

    /// Whether any job runs.
    pub fn any(self) -> bool {
        self.rebalance || self.spot_fallback || self.autoscale
    }
}

/// What woke the run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Trigger {
    /// The schedule (or a person).
    #[default]
    Scheduled,
    /// A container instance joined the cluster.
    InstanceJoined,
    /// A Spot interruption warning (or rebalance recommendation) for this EC2 instance.
    SpotWarning(String),
    /// A Spot fleet's capacity alarm (PendingCapacity above zero).
    SpotShortfall,
}

/// What a run must read for its jobs, besides the cluster's snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reads {
    /// Auto Scaling groups (DescribeAutoScalingGroups).
    pub groups: BTreeSet<String>,
    /// CloudWatch queries (GetMetricData, up to 500 a call).
    pub metrics: Vec<MetricQuery>,
    /// HTTP JSON metric requests (each once).
    pub http: BTreeSet<HttpRequest>,
}

/// The spot-fallback job's CloudWatch queries for a fleet: `PendingCapacity` now and over the
/// stable window, `TargetCapacity`'s minimum and maximum over the settle window.
pub fn spot_queries(cfg: &crate::config::SpotFallbackConfig) -> Vec<MetricQuery> {
    let q = |name: &str, statistic: &str, period: Millis| MetricQuery {
        namespace: "AWS/EC2Spot".into(),
        name: name.into(),
        dimensions: [("FleetRequestId".to_string(), cfg.fleet.clone())].into_iter().collect(),
        statistic: statistic.into(),
        period_s: (period.as_secs().max(60)) as u32,
    };
    vec![
        q("PendingCapacity", "Maximum", Millis::mins(1)),
        q("PendingCapacity", "Maximum", cfg.stable_window),
        q("TargetCapacity", "Minimum", cfg.settle_window),
        q("TargetCapacity", "Maximum", cfg.settle_window),
    ]
}

/// The HTTP request of a third-party metric source.
pub fn http_request(src: &Source) -> Option<HttpRequest> {
    match src {
        Source::Http { url, post, payload, .. } => Some(HttpRequest {
            url: url.clone(),
            post: post
                .then(|| payload.as_ref().map_or(String::new(), |p| serde_json::to_string(p).unwrap_or_default())),
        }),
        Source::CloudWatch(_) => None,
    }
}

impl Reads {
    /// What the `jobs` of `cfg` need. Rebalance alone needs nothing more, except the groups of
    /// the other configured jobs (to see capacity still arriving before it moves anything).
    pub fn of(cfg: &ClusterConfig, jobs: Jobs) -> Reads {
        let mut r = Reads::default();
        if let Some(a) = &cfg.autoscale {
            if jobs.autoscale || jobs.rebalance {
                r.groups.insert(a.group.clone());
            }
            if jobs.autoscale {
                for s in a.services.values() {
                    for src in s.metrics.values() {
                        match src {
                            Source::CloudWatch(q) if !r.metrics.contains(q) => r.metrics.push(q.clone()),
                            Source::CloudWatch(_) => {}
                            Source::Http { .. } => {
                                r.http.extend(http_request(src));
                            }
                        }
                    }
                }
            }
        }
        if let Some(s) = &cfg.spot_fallback {
            if jobs.spot_fallback || jobs.rebalance {
                r.groups.insert(s.on_demand_group.clone());
            }
            if jobs.spot_fallback {
                match s.source {
                    SpotSource::Fleet => {
                        for q in spot_queries(s) {
                            if !r.metrics.contains(&q) {
                                r.metrics.push(q);
                            }
                        }
                    }
                    SpotSource::Group => {
                        r.groups.insert(s.fleet.clone());
                    }
                }
            }
        }
        r
    }
}

/// Everything one run decides from.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The cluster.
    pub snapshot: Snapshot,
    /// The groups read (a missing one was not found).
    pub groups: BTreeMap<String, GroupInfo>,
    /// CloudWatch values (`None`: no datapoint, which is unknown, never zero).
    pub metrics: BTreeMap<MetricQuery, Option<f64>>,
    /// HTTP metric answers (`Err`: why the value is unknown this run).
    pub http: BTreeMap<HttpRequest, Result<Vec<u8>, String>>,
    /// What woke the run.
    pub trigger: Trigger,
    /// This run's lease holder id (recorded in the marks a crash could leave).
    pub holder: String,
}

impl View {
    /// A view of a snapshot alone (rebalance needs nothing more).
    pub fn of(snapshot: Snapshot) -> View {
        View { snapshot, ..View::default() }
    }

    /// When it was read.
    pub fn now(&self) -> Millis {
        self.snapshot.taken_at
    }

    /// A metric's value (`None`: unknown).
    pub fn metric(&self, q: &MetricQuery) -> Option<f64> {
        self.metrics.get(q).copied().flatten()
    }
}
