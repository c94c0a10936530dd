//! The simulated CloudWatch (SPEC.md, "Scenario format v1"): the scenario's `metrics:` series
//! of source `cloudwatch`, the `AWS/ECS` cluster and service metrics from the simulated
//! reservations and `utilization`, and for each `spot` group the `AWS/EC2Spot` fleet metrics
//! (dimension `FleetRequestId` = the group's name).
//!
//! Choices (docs/simulator.md, "CloudWatch"): every metric is *sampled* once a minute, on the
//! minute (a scenario series is a step function read at that instant; the `AWS/ECS` metrics
//! are the simulated reservations and utilisation at the end of that instant's events; the
//! `AWS/EC2Spot` metrics the group's state then). A sample becomes visible `cloudwatch.delay`
//! after it is taken, and each one is missing with probability `cloudwatch.missing` (drawn
//! from the seed, the metric and the minute, so every policy sees the same gaps). A datapoint
//! of period `p` aggregates the visible samples of `[T, T + p)` for `T` a multiple of `p`
//! (Average, Minimum, Maximum, Sum, SampleCount); a period with none has no datapoint.
//! `metric_value` is what ballast reads (GetMetricData): the latest datapoint whose period has
//! ended, among the last five; `metric_statistics` what seed 004 reads (GetMetricStatistics):
//! every datapoint of a window. Reservation and utilisation metrics count ACTIVE and DRAINING
//! instances, as ECS does (ecs-behaviour.md §8), and are emitted only while something runs.

use ballast_core::backend::{BackendError, HttpRequest, MetricQuery};
use ballast_core::duration::Millis;

use crate::engine::{InstState, Sim};
use crate::scenario::Capacity;
use crate::scheduler::TState;

/// CloudWatch's sampling interval in the simulator.
pub const SAMPLE_EVERY: Millis = Millis::secs(60);

/// The `AWS/ECS` metrics at one sample: the cluster's `[CPUReservation, MemoryReservation,
/// CPUUtilization, MemoryUtilization]` and each service's `[CPUUtilization,
/// MemoryUtilization]` (`None`: nothing ran, so no value).
#[derive(Debug, Clone)]
pub struct EcsSample {
    /// The cluster's metrics.
    pub cluster: Option<[f64; 4]>,
    /// Per service, in scenario order.
    pub services: Vec<Option<[f64; 2]>>,
}

impl Sim {
    /// The latest datapoint whose period has ended, among the last five periods, or `None`
    /// (unknown): what GetMetricData gives ballast.
    pub fn metric_value(&self, q: &MetricQuery) -> Option<f64> {
        let p = period_of(q);
        let latest = (self.now.0 / p.0).checked_sub(1)?;
        (0..5u64).filter_map(|i| latest.checked_sub(i)).find_map(|k| self.datapoint(q, Millis(k * p.0), p))
    }

    /// Every datapoint of `q` over `[now − window, now)` (start rounded down to the minute),
    /// oldest first, partial periods included: what GetMetricStatistics returns.
    pub fn metric_statistics(&self, q: &MetricQuery, window: Millis) -> Vec<(Millis, f64)> {
        let p = period_of(q);
        let start = Millis((self.now.0.saturating_sub(window.0) / SAMPLE_EVERY.0) * SAMPLE_EVERY.0);
        let mut out = Vec::new();
        let mut t = Millis(start.0.div_ceil(p.0) * p.0);
        if t > start {
            // The period holding the start counts from the start.
            if let Some(v) = self.aggregate(q, start, t.min(self.now)) {
                out.push((start, v));
            }
        }
        while t < self.now {
            if let Some(v) = self.aggregate(q, t, (t + p).min(self.now)) {
                out.push((t, v));
            }
            t = t + p;
        }
        out
    }

    pub(crate) fn datapoint(&self, q: &MetricQuery, start: Millis, p: Millis) -> Option<f64> {
        self.aggregate(q, start, start + p)
    }

    /// The statistic over the visible, arrived samples taken in `[from, to)`.
    fn aggregate(&self, q: &MetricQuery, from: Millis, to: Millis) -> Option<f64> {
        let first = from.0.div_ceil(SAMPLE_EVERY.0);
        let mut vals = Vec::new();
        let mut k = first;
        while k * SAMPLE_EVERY.0 < to.0 {
            let at = Millis(k * SAMPLE_EVERY.0);
            if at + self.sc.timing.metric_delay > self.now {
                break;
            }
            if !self.sample_missing(q, k)
                && let Some(v) = self.sample(q, k)
            {
                vals.push(v);
            }
            k += 1;
        }
        if vals.is_empty() {
            return None;
        }
        Some(match q.statistic.as_str() {
            "Minimum" => vals.iter().copied().fold(f64::INFINITY, f64::min),
            "Maximum" => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "Sum" => vals.iter().sum(),
            "SampleCount" => vals.len() as f64,
            _ => vals.iter().sum::<f64>() / vals.len() as f64,
        })
    }

    /// Whether the sample of minute `k` of this metric never arrives: a draw from the seed, the
    /// metric and the minute, the same for every policy and every query.
    fn sample_missing(&self, q: &MetricQuery, k: u64) -> bool {
        let m = self.sc.timing.metric_missing;
        if m <= 0.0 {
            return false;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.sc.seed;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h = (h ^ x as u64).wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(q.namespace.as_bytes());
        eat(q.name.as_bytes());
        for (a, b) in &q.dimensions {
            eat(a.as_bytes());
            eat(b.as_bytes());
        }
        eat(&k.to_le_bytes());
        ballast_core::rng::Rng::new(h).unit() < m
    }

    /// The value of a metric at minute `k`, as sampled then.
    fn sample(&self, q: &MetricQuery, k: u64) -> Option<f64> {
        let t = Millis(k * SAMPLE_EVERY.0);
        match q.namespace.as_str() {
            "AWS/ECS" => self.ecs_sample(q, k),
            "AWS/EC2Spot" => self.spot_sample(q, t),
            _ => self.series_sample(q, t),
        }
    }

    /// Records the `AWS/ECS` metrics now (once a minute, at the end of the minute's events).
    pub(crate) fn take_ecs_sample(&mut self) {
        let k = (self.now.0 / SAMPLE_EVERY.0) as usize;
        let sample = EcsSample {
            cluster: self.ecs_cluster_now(),
            services: (0..self.svcs.len()).map(|s| self.ecs_service_now(s)).collect(),
        };
        if self.ecs_samples.len() <= k {
            self.ecs_samples.resize(k, None);
            self.ecs_samples.push(Some(sample));
        } else {
            self.ecs_samples[k] = Some(sample);
        }
    }

    /// The simulated HTTP JSON metric endpoint: for a URL with `http` series, the JSON object
    /// holding each series' latest value at its dot path (`{"messages_ready": 5}`); a series
    /// with no point yet is left out. Any other URL answers 404.
    pub fn http_answer(&self, req: &HttpRequest) -> Result<Vec<u8>, BackendError> {
        let series: Vec<&crate::scenario::MetricSeries> = self
            .sc
            .metrics
            .iter()
            .filter(|m| m.source == "http" && m.url.as_deref() == Some(req.url.as_str()))
            .collect();
        if series.is_empty() {
            return Err(BackendError::Invalid {
                operation: "HTTP metric".into(),
                message: "HTTP 404: no such metric endpoint in the scenario".into(),
            });
        }
        let mut root = serde_json::Value::Object(Default::default());
        for s in series {
            let Some(v) = s.points.iter().rev().find(|(t, _)| *t <= self.now).map(|(_, v)| *v) else { continue };
            let path = s.field.as_deref().unwrap_or_default();
            let mut at = &mut root;
            let parts: Vec<&str> = path.split('.').collect();
            for (k, part) in parts.iter().enumerate() {
                let last = k + 1 == parts.len();
                let serde_json::Value::Object(m) = at else { break };
                let next = m.entry(part.to_string()).or_insert_with(|| serde_json::Value::Object(Default::default()));
                if last {
                    *next = serde_json::json!(v);
                }
                at = next;
            }
        }
        Ok(serde_json::to_vec(&root).unwrap_or_default())
    }

    fn series_sample(&self, q: &MetricQuery, t: Millis) -> Option<f64> {
        let s = self.sc.metrics.iter().find(|m| {
            m.source == "cloudwatch"
                && m.namespace.as_deref() == Some(q.namespace.as_str())
                && m.name.as_deref() == Some(q.name.as_str())
                && m.dimensions == q.dimensions
        })?;
        s.points.iter().rev().find(|(p, _)| *p <= t).map(|(_, v)| *v)
    }

    fn ecs_sample(&self, q: &MetricQuery, k: u64) -> Option<f64> {
        if q.dimensions.get("ClusterName") != Some(&self.sc.cluster) {
            return None;
        }
        let sample = self.ecs_samples.get(k as usize)?.as_ref()?;
        match q.dimensions.get("ServiceName") {
            None => {
                let c = sample.cluster?;
                match q.name.as_str() {
                    "CPUReservation" => Some(c[0]),
                    "MemoryReservation" => Some(c[1]),
                    "CPUUtilization" => Some(c[2]),
                    "MemoryUtilization" => Some(c[3]),
                    _ => None,
                }
            }
            Some(service) => {
                let s = self.svcs.iter().position(|x| &x.name == service)?;
                let v = (*sample.services.get(s)?)?;
                match q.name.as_str() {
                    "CPUUtilization" => Some(v[0]),
                    "MemoryUtilization" => Some(v[1]),
                    _ => None,
                }
            }
        }
    }

    /// Reserved and used `[cpu, memory, used cpu, used memory]` over the live tasks `keep`
    /// selects; `None` when nothing runs.
    fn ecs_load(&self, keep: &dyn Fn(&crate::scheduler::SimTask) -> bool) -> Option<[f64; 4]> {
        let mut l = [0.0; 4];
        for t in self.tasks.iter().filter(|t| matches!(t.state, TState::Running | TState::Pending) && keep(t)) {
            let (cpu, mem, (uc, um)) = self.task_load(t);
            l = [l[0] + cpu, l[1] + mem, l[2] + cpu * uc, l[3] + mem * um];
        }
        (l[0] > 0.0 || l[1] > 0.0).then_some(l)
    }

    fn ecs_cluster_now(&self) -> Option<[f64; 4]> {
        let counted: Vec<usize> = (0..self.insts.len())
            .filter(|&n| matches!(self.insts[n].state, InstState::Active | InstState::Draining))
            .collect();
        let mut mask = vec![false; self.insts.len()];
        for &n in &counted {
            mask[n] = true;
        }
        let [res_cpu, res_mem, used_cpu, used_mem] = self.ecs_load(&|t| mask[t.node])?;
        let reg_cpu: f64 = counted.iter().map(|&n| self.cs.nodes[n].registered.cpu as f64).sum();
        let reg_mem: f64 = counted.iter().map(|&n| self.cs.nodes[n].registered.memory as f64).sum();
        let (rc, rm) = (reg_cpu.max(1.0), reg_mem.max(1.0));
        Some([100.0 * res_cpu / rc, 100.0 * res_mem / rm, 100.0 * used_cpu / rc, 100.0 * used_mem / rm])
    }

    fn ecs_service_now(&self, s: usize) -> Option<[f64; 2]> {
        let [res_cpu, res_mem, used_cpu, used_mem] = self.ecs_load(&|t| t.service == Some(s))?;
        Some([100.0 * used_cpu / res_cpu.max(1.0), 100.0 * used_mem / res_mem.max(1.0)])
    }

    fn task_load(&self, t: &crate::scheduler::SimTask) -> (f64, f64, (f64, f64)) {
        match (t.service, t.standalone) {
            (Some(s), _) => {
                let sv = &self.svcs[s];
                (sv.spec.cpu as f64, sv.spec.memory as f64, sv.utilization)
            }
            (None, Some(k)) => {
                let sp = &self.standalone_specs[k];
                (sp.cpu as f64, sp.memory as f64, (0.5, 0.5))
            }
            _ => (0.0, 0.0, (0.0, 0.0)),
        }
    }

    /// A Spot group's fleet metric at time `t`, from its history: `TargetCapacity` (the
    /// group's desired), `FulfilledCapacity` (registered instances without an interruption
    /// notice) and `PendingCapacity` (their difference, at least 0); one unit per instance.
    fn spot_sample(&self, q: &MetricQuery, t: Millis) -> Option<f64> {
        let fleet = q.dimensions.get("FleetRequestId")?;
        let g = self.sc.groups.iter().position(|g| &g.name == fleet && g.capacity == Capacity::Spot)?;
        let target = self.groups[g].desired_history.iter().rev().find(|(w, _)| *w <= t).map(|(_, d)| *d as f64)?;
        let fulfilled = self
            .insts
            .iter()
            .filter(|i| {
                i.group == g
                    && i.active_at.is_some_and(|a| a <= t)
                    && i.notice_at.is_none_or(|n| n > t)
                    && i.gone_at.is_none_or(|x| x > t)
            })
            .count() as f64;
        match q.name.as_str() {
            "TargetCapacity" => Some(target),
            "FulfilledCapacity" => Some(fulfilled),
            "PendingCapacity" => Some((target - fulfilled).max(0.0)),
            _ => None,
        }
    }
}

/// A query's period, a whole number of minutes (at least one).
fn period_of(q: &MetricQuery) -> Millis {
    Millis((q.period_s.max(60) as u64).div_ceil(60) * 60_000)
}
