//! Amazon CloudWatch over the simulated metrics (crate::cloudwatch): GetMetricData with
//! MetricStat queries and GetMetricStatistics, on the wall-clock scale of the world's
//! timestamps.

use std::collections::BTreeMap;

use ballast_core::backend::MetricQuery;
use ballast_core::duration::Millis;
use serde_json::{Value, json};

use super::{ApiError, World, int_of, str_of, time_of, ts, unknown_op};

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterValue", message)
}

/// `period` is on the client's clock: the world aggregates `speed` times as long a period of
/// its own time (in whole minutes), so that datapoints are `period` apart as served.
fn metric(m: &Value, stat: &str, period: i64, speed: f64) -> Result<MetricQuery, ApiError> {
    let namespace = str_of(m, "Namespace").ok_or_else(|| invalid("a metric needs a Namespace"))?;
    let name = str_of(m, "MetricName").ok_or_else(|| invalid("a metric needs a MetricName"))?;
    if period < 1 || (period >= 60 && period % 60 != 0) {
        return Err(invalid(format!("Period {period} must be 1, 5, 10, 30 or a multiple of 60")));
    }
    let dimensions: BTreeMap<String, String> = m
        .get("Dimensions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| Some((str_of(d, "Name")?.to_string(), d.get("Value")?.as_str()?.to_string())))
        .collect();
    Ok(MetricQuery {
        namespace: namespace.into(),
        name: name.into(),
        dimensions,
        statistic: stat.into(),
        period_s: ((period.max(60) as f64 * speed / 60.0).round().max(1.0) * 60.0) as u32,
    })
}

impl World {
    /// The periods of `[from, to)` (simulated) that have a datapoint, oldest first.
    fn series(&self, q: &MetricQuery, from: Millis, to: Millis) -> Vec<(Millis, f64)> {
        let p = Millis(u64::from(q.period_s) * 1000);
        let to = to.min(self.sim.now);
        let mut out = vec![];
        let mut k = from.0.div_ceil(p.0);
        while k * p.0 < to.0 {
            if let Some(v) = self.sim.datapoint(q, Millis(k * p.0), p) {
                out.push((Millis(k * p.0), v));
            }
            k += 1;
        }
        out
    }

    fn window(&self, req: &Value) -> Result<(Millis, Millis), ApiError> {
        let start = time_of(req, "StartTime")?.ok_or_else(|| invalid("StartTime is required"))?;
        let end = time_of(req, "EndTime")?.ok_or_else(|| invalid("EndTime is required"))?;
        if end <= start {
            return Err(invalid("The parameter StartTime must be less than the parameter EndTime."));
        }
        Ok((self.sim_of_epoch(start), self.sim_of_epoch(end)))
    }

    pub(super) fn cloudwatch(&mut self, op: &str, req: &Value) -> Result<Value, ApiError> {
        match op {
            "GetMetricData" => {
                let (from, to) = self.window(req)?;
                let queries = req.get("MetricDataQueries").and_then(Value::as_array).cloned().unwrap_or_default();
                if queries.is_empty() || queries.len() > 500 {
                    return Err(invalid("MetricDataQueries must hold 1 to 500 queries"));
                }
                let ascending = str_of(req, "ScanBy") == Some("TimestampAscending");
                let mut results = vec![];
                let mut messages = vec![];
                for q in &queries {
                    let id = str_of(q, "Id").ok_or_else(|| invalid("every query needs an Id"))?;
                    if q.get("ReturnData").and_then(Value::as_bool) == Some(false)
                        || q.get("ReturnData").and_then(Value::as_str) == Some("false")
                    {
                        continue;
                    }
                    let Some(ms) = q.get("MetricStat") else {
                        messages.push(json!({"Code": "Unsupported", "Value": format!("query {id}: the twin evaluates MetricStat queries, not expressions")}));
                        results.push(json!({"Id": id, "Label": id, "Timestamps": [], "Values": [], "StatusCode": "InternalError"}));
                        continue;
                    };
                    let stat = str_of(ms, "Stat").ok_or_else(|| invalid(format!("query {id} needs a Stat")))?;
                    let period = int_of(ms, "Period")?.ok_or_else(|| invalid(format!("query {id} needs a Period")))?;
                    let m = ms.get("Metric").ok_or_else(|| invalid(format!("query {id} needs a Metric")))?;
                    let mq = metric(m, stat, period, self.speed)?;
                    let mut points = self.series(&mq, from, to);
                    if !ascending {
                        points.reverse();
                    }
                    let label = q.get("Label").and_then(Value::as_str).unwrap_or(&mq.name).to_string();
                    results.push(json!({
                        "Id": id,
                        "Label": label,
                        "Timestamps": points.iter().map(|(t, _)| ts(self.epoch_s(*t))).collect::<Vec<_>>(),
                        "Values": points.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
                        "StatusCode": "Complete",
                    }));
                }
                Ok(json!({"MetricDataResults": results, "Messages": messages}))
            }
            "GetMetricStatistics" => {
                let (from, to) = self.window(req)?;
                let period = int_of(req, "Period")?.ok_or_else(|| invalid("Period is required"))?;
                let stats: Vec<String> = match req.get("Statistics") {
                    Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
                    _ => vec![],
                };
                if stats.is_empty() {
                    return Err(ApiError::client("MissingParameter", "Statistics or ExtendedStatistics is required"));
                }
                let mut by_time: BTreeMap<Millis, serde_json::Map<String, Value>> = BTreeMap::new();
                let mut label = String::new();
                for s in &stats {
                    let mq = metric(req, s, period, self.speed)?;
                    label = mq.name.clone();
                    for (t, v) in self.series(&mq, from, to) {
                        by_time.entry(t).or_default().insert(s.clone(), json!(v));
                    }
                }
                let points: Vec<Value> = by_time
                    .into_iter()
                    .map(|(t, mut m)| {
                        m.insert("Timestamp".into(), ts(self.epoch_s(t)));
                        m.insert("Unit".into(), json!("None"));
                        Value::Object(m)
                    })
                    .collect();
                Ok(json!({"Label": label, "Datapoints": points}))
            }
            "ListMetrics" => Ok(json!({"Metrics": []})),
            _ => Err(unknown_op(op)),
        }
    }
}
