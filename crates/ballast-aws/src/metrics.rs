//! GetMetricData: the latest *complete* datapoint of each query.
//!
//! The window is the last five periods, newest first; a datapoint whose period has not ended
//! yet (timestamp + period > now) is passed over, since CloudWatch still aggregates it. No
//! datapoint in the window is unknown (`None`), never zero. Up to 500 queries per call.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime;
use ballast_core::backend::{BackendError, MetricQuery};
use ballast_core::duration::Millis;

use crate::Clients;
use crate::calls::Gate;
use crate::errors::to;

fn query(i: usize, q: &MetricQuery) -> Result<MetricDataQuery, BackendError> {
    let mut metric = Metric::builder().namespace(&q.namespace).metric_name(&q.name);
    for (k, v) in &q.dimensions {
        metric = metric.dimensions(Dimension::builder().name(k).value(v).build());
    }
    let stat =
        MetricStat::builder().metric(metric.build()).period(q.period_s.max(60) as i32).stat(&q.statistic).build();
    Ok(MetricDataQuery::builder().id(format!("m{i}")).metric_stat(stat).return_data(true).build())
}

/// Reads the queries at `now`.
pub async fn get(
    c: &Clients,
    gate: &Gate,
    queries: &[MetricQuery],
    now: Millis,
) -> Result<Vec<Option<f64>>, BackendError> {
    let mut out = vec![None; queries.len()];
    for (n, chunk) in queries.chunks(500).enumerate() {
        let base = n * 500;
        let longest = chunk.iter().map(|q| q.period_s.max(60) as u64).max().unwrap_or(60);
        let start = now - Millis::secs(longest * 5);
        let mut req = c
            .cloudwatch
            .get_metric_data()
            .start_time(DateTime::from_millis(start.0 as i64))
            .end_time(DateTime::from_millis(now.0 as i64))
            .scan_by(ScanBy::TimestampDescending);
        for (i, q) in chunk.iter().enumerate() {
            req = req.metric_data_queries(query(base + i, q)?);
        }
        let mut next: Option<String> = None;
        loop {
            gate.pass("GetMetricData").await;
            let r = req.clone().set_next_token(next.take()).send().await.map_err(to("GetMetricData"))?;
            for res in r.metric_data_results() {
                let Some(i) = res.id().and_then(|id| id.strip_prefix('m')).and_then(|n| n.parse::<usize>().ok()) else {
                    continue;
                };
                let Some(q) = queries.get(i) else { continue };
                if out[i].is_some() {
                    continue;
                }
                let period_ms = q.period_s.max(60) as i64 * 1000;
                out[i] = res
                    .timestamps()
                    .iter()
                    .zip(res.values())
                    .filter(|(t, v)| v.is_finite() && t.to_millis().is_ok_and(|m| m + period_ms <= now.0 as i64))
                    .max_by_key(|(t, _)| t.to_millis().unwrap_or(0))
                    .map(|(_, v)| *v);
            }
            match r.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
    }
    Ok(out)
}
