//! The simulated CloudWatch (SPEC.md, "Scenario format v1"): the scenario's `metrics:` series
//! of source `cloudwatch`, the `AWS/ECS` cluster and service metrics from the simulated
//! reservations and `utilization`, and for each `spot` group the `AWS/EC2Spot` fleet metrics
//! (dimension `FleetRequestId` = the group's name).
//!
//! Choices (docs/simulator.md): a scenario series is a step function and the latest complete
//! datapoint is its value one period ago (at time 0 there is none: unknown); the `AWS/ECS`
//! metrics are the state at the moment of the call; the `AWS/EC2Spot` metrics are computed
//! from the group's history over the last period (Minimum, Maximum, time-weighted Average;
//! other statistics give the latest value), so that "the target changed within 10 minutes"
//! is Maximum ≠ Minimum of `TargetCapacity` over a 600 s period. Reservation and
//! utilisation metrics count ACTIVE and DRAINING instances, as ECS does (ecs-behaviour.md §8),
//! and are emitted only while something runs.

use ballast_core::backend::{BackendError, HttpRequest, MetricQuery};
use ballast_core::duration::Millis;

use crate::engine::{InstState, Sim};
use crate::scenario::Capacity;
use crate::scheduler::TState;

impl Sim {
    /// The latest complete datapoint of one query, or `None` (unknown).
    pub fn metric_value(&self, q: &MetricQuery) -> Option<f64> {
        match q.namespace.as_str() {
            "AWS/ECS" => self.ecs_metric(q),
            "AWS/EC2Spot" => self.spot_metric(q),
            _ => self.series_value(q),
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

    fn series_value(&self, q: &MetricQuery) -> Option<f64> {
        let s = self.sc.metrics.iter().find(|m| {
            m.source == "cloudwatch"
                && m.namespace.as_deref() == Some(q.namespace.as_str())
                && m.name.as_deref() == Some(q.name.as_str())
                && m.dimensions == q.dimensions
        })?;
        let at = self.now.0.checked_sub(Millis::secs(q.period_s.max(60) as u64).0).map(Millis)?;
        s.points.iter().rev().find(|(t, _)| *t <= at).map(|(_, v)| *v)
    }

    fn ecs_metric(&self, q: &MetricQuery) -> Option<f64> {
        if q.dimensions.get("ClusterName") != Some(&self.sc.cluster) {
            return None;
        }
        let counted: Vec<usize> = (0..self.insts.len())
            .filter(|&n| matches!(self.insts[n].state, InstState::Active | InstState::Draining))
            .collect();
        let running = |t: &crate::scheduler::SimTask| matches!(t.state, TState::Running | TState::Pending);
        // Reserved and used (cpu, memory) over the tasks `keep` selects; none: no datapoint.
        let load = |keep: &dyn Fn(&crate::scheduler::SimTask) -> bool| -> Option<[f64; 4]> {
            let mut l = [0.0; 4];
            for t in self.tasks.iter().filter(|t| running(t) && keep(t)) {
                let (cpu, mem, (uc, um)) = self.task_load(t);
                l = [l[0] + cpu, l[1] + mem, l[2] + cpu * uc, l[3] + mem * um];
            }
            (l[0] > 0.0 || l[1] > 0.0).then_some(l)
        };
        match q.dimensions.get("ServiceName") {
            None => {
                let [res_cpu, res_mem, used_cpu, used_mem] = load(&|t| counted.contains(&t.node))?;
                let reg_cpu: f64 = counted.iter().map(|&n| self.cs.nodes[n].registered.cpu as f64).sum();
                let reg_mem: f64 = counted.iter().map(|&n| self.cs.nodes[n].registered.memory as f64).sum();
                match q.name.as_str() {
                    "CPUReservation" => Some(100.0 * res_cpu / reg_cpu.max(1.0)),
                    "MemoryReservation" => Some(100.0 * res_mem / reg_mem.max(1.0)),
                    "CPUUtilization" => Some(100.0 * used_cpu / reg_cpu.max(1.0)),
                    "MemoryUtilization" => Some(100.0 * used_mem / reg_mem.max(1.0)),
                    _ => None,
                }
            }
            Some(service) => {
                let s = self.svcs.iter().position(|x| &x.name == service)?;
                let [res_cpu, res_mem, used_cpu, used_mem] = load(&|t| t.service == Some(s))?;
                match q.name.as_str() {
                    "CPUUtilization" => Some(100.0 * used_cpu / res_cpu.max(1.0)),
                    "MemoryUtilization" => Some(100.0 * used_mem / res_mem.max(1.0)),
                    _ => None,
                }
            }
        }
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

    fn spot_metric(&self, q: &MetricQuery) -> Option<f64> {
        let fleet = q.dimensions.get("FleetRequestId")?;
        let g = self.sc.groups.iter().position(|g| &g.name == fleet && g.capacity == Capacity::Spot)?;
        let at = |t: Millis| -> Option<f64> {
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
        };
        // The statistic over the last period: evaluated where anything changed.
        let start = Millis(self.now.0.saturating_sub(q.period_s.max(60) as u64 * 1000));
        let mut points: Vec<Millis> = vec![start, self.now];
        points.extend(self.groups[g].desired_history.iter().map(|(t, _)| *t));
        for i in self.insts.iter().filter(|i| i.group == g) {
            points.extend([i.active_at, i.notice_at, i.gone_at].into_iter().flatten());
        }
        points.retain(|t| *t >= start && *t <= self.now);
        points.sort();
        points.dedup();
        let values: Vec<(Millis, f64)> = points.iter().filter_map(|&t| at(t).map(|v| (t, v))).collect();
        let (first, _) = values.first()?;
        match q.statistic.as_str() {
            "Minimum" => values.iter().map(|v| v.1).reduce(f64::min),
            "Maximum" => values.iter().map(|v| v.1).reduce(f64::max),
            "Average" if self.now > *first => {
                let mut sum = 0.0;
                for w in values.windows(2) {
                    sum += w[0].1 * (w[1].0 - w[0].0).as_secs_f64();
                }
                Some(sum / (self.now - *first).as_secs_f64())
            }
            _ => values.last().map(|v| v.1),
        }
    }
}
