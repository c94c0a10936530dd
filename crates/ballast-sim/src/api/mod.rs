//! The simulated world as AWS's APIs serve it: the ECS, Auto Scaling, Application Auto
//! Scaling and CloudWatch operations of the twin (`ballast twin`, docs/twin.md), over JSON
//! values in AWS's own shapes. The wire protocols (awsJson1_1, awsQuery, rpcv2Cbor) are the
//! `ballast-twin` crate's; what a call *does* is here, through the same simulator the
//! in-process runs use ([`Sim::apply_action`] for every change a policy could make).
//!
//! Time: the world's simulated clock runs at `speed` × the wall clock from `epoch0_ms`.
//! Everything a client says or sees about time is on *its* clock, the wall clock: timestamps
//! are served as `epoch0_ms` + simulated time ÷ speed, and durations a client gives or reads
//! (a protection's `expiresInMinutes`, a metric `Period`, a group's `DefaultCooldown`) are
//! scaled by `speed`. A client comparing the twin's timestamps with its own clock (a metric
//! period that has ended, a protection that expires when it asked) then agrees with the twin
//! at any speed, while the world's own durations (task starts, drains, boots, cooldowns) pass
//! `speed` times faster.

mod ecs;
mod groups;
mod metrics;
mod shapes;

use std::collections::{BTreeMap, HashMap};

use ballast_core::duration::Millis;
use ballast_core::model::Constraint;
use serde_json::{Value, json};

use crate::engine::Sim;

/// An API error in AWS's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status (400 for a client's fault, 500 for the service's).
    pub status: u16,
    /// The error code (`__type` / `Code`), e.g. `ClusterNotFoundException`.
    pub code: String,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A 400 with this code.
    pub fn client(code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status: 400, code: code.into(), message: message.into() }
    }
    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::client("InvalidParameterException", message)
    }
}

/// A call's answer: a JSON value in AWS's shape, or (the hot ECS describes) that JSON
/// already written.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A value (timestamps as `{"$ts": s}`).
    Json(Value),
    /// Serialised JSON (awsJson only: ECS).
    Raw(String),
}

impl Answer {
    /// As a value (parsing a raw answer).
    pub fn into_value(self) -> Value {
        match self {
            Answer::Json(v) => v,
            Answer::Raw(s) => serde_json::from_str(&s).expect("the twin writes valid JSON"),
        }
    }
}

/// Which AWS service a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Amazon ECS.
    Ecs,
    /// Amazon EC2 Auto Scaling.
    AutoScaling,
    /// Application Auto Scaling.
    AppAutoScaling,
    /// Amazon CloudWatch.
    CloudWatch,
}

/// A task definition the world knows (registered, or a scenario service's `NAME:1`).
#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub arn: String,
    pub family: String,
    pub revision: u32,
    pub cpu: i64,
    pub memory: i64,
    pub host_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    pub gpus: u32,
    pub network_mode: String,
    pub constraints: Vec<Constraint>,
    /// `containerDefinitions` as registered (served back as given).
    pub containers: Value,
    pub registered_at: Millis,
}

/// One simulated world behind the twin's endpoints.
pub struct World {
    /// The simulation.
    pub sim: Sim,
    /// Wall-clock epoch, ms, at simulated time 0.
    pub epoch0_ms: u64,
    /// Simulated time per wall-clock time (1 = real time).
    pub speed: f64,
    pub(crate) defs: BTreeMap<String, Def>,
    pub(crate) latest: BTreeMap<String, u32>,
    /// Task definition ARN of each standalone spec (index = spec index).
    pub(crate) standalone_defs: Vec<String>,
    pub(crate) started_by: HashMap<usize, String>,
    pub(crate) stop_reasons: HashMap<usize, String>,
    /// Instance state change events since the start (time, container instance ARN, status),
    /// for a harness that runs a controller when ECS would have woken it.
    pub events: Vec<(Millis, String, String)>,
    request_seq: u64,
    /// Container instance ARN and id → instance index (instances are only ever appended).
    pub(crate) inst_index: HashMap<String, usize>,
    /// Instances indexed so far.
    indexed: usize,
}

impl World {
    /// The world of a scenario at simulated time 0, `epoch0_ms` on the wall clock.
    pub fn new(sim: Sim, epoch0_ms: u64, speed: f64) -> World {
        let mut w = World {
            sim,
            epoch0_ms,
            speed: if speed > 0.0 { speed } else { 1.0 },
            defs: BTreeMap::new(),
            latest: BTreeMap::new(),
            standalone_defs: vec![],
            started_by: HashMap::new(),
            stop_reasons: HashMap::new(),
            events: vec![],
            request_seq: 0,
            inst_index: HashMap::new(),
            indexed: 0,
        };
        for s in 0..w.sim.svcs.len() {
            let svc = &w.sim.svcs[s];
            let d = Def::of_spec(&svc.task_def, &svc.name, &svc.spec);
            w.latest.insert(d.family.clone(), d.revision);
            w.defs.insert(d.arn.clone(), d);
        }
        for k in 0..w.sim.standalone_specs.len() {
            let name = w.sim.sc.standalone[k].name.clone();
            let arn = w.sim.ecs_arn("task-definition", &format!("{name}:1"));
            let d = Def::of_spec(&arn, &name, &w.sim.standalone_specs[k]);
            w.latest.insert(d.family.clone(), d.revision);
            w.defs.insert(arn.clone(), d);
            w.standalone_defs.push(arn);
        }
        w.drain_triggers();
        w
    }

    /// Simulated time at a wall-clock instant (epoch ms).
    pub fn sim_time(&self, wall_ms: u64) -> Millis {
        Millis((wall_ms.saturating_sub(self.epoch0_ms) as f64 * self.speed) as u64)
    }

    /// A simulated instant as epoch seconds on the wall-clock scale.
    pub fn epoch_s(&self, t: Millis) -> f64 {
        (self.epoch0_ms as f64 + t.0 as f64 / self.speed) / 1000.0
    }

    /// Epoch seconds (wall-clock scale) as a simulated instant.
    pub fn sim_of_epoch(&self, s: f64) -> Millis {
        Millis((((s * 1000.0) - self.epoch0_ms as f64) * self.speed).max(0.0) as u64)
    }

    /// Lets the world run up to the wall-clock instant `wall_ms` (never backwards).
    pub fn advance_wall(&mut self, wall_ms: u64) {
        let t = self.sim_time(wall_ms);
        if t > self.sim.now {
            self.sim.advance_to(t);
        }
        self.drain_triggers();
    }

    /// Lets the world run to simulated time `t`.
    pub fn advance_sim(&mut self, t: Millis) {
        self.sim.advance_to(t);
        self.drain_triggers();
    }

    fn drain_triggers(&mut self) {
        // Nothing runs a controller inside the twin: the wake-ups the in-process driver would
        // answer are kept as events (instance state changes) for whoever drives it.
        while let Some(tr) = self.sim.triggers.pop_front() {
            if let crate::engine::Trigger::Instance(ev) = tr {
                self.events.push((ev.time, ev.container_instance_arn, ev.status));
            }
        }
    }

    /// A request id (AWS's x-amzn-RequestId), deterministic per world.
    pub fn request_id(&mut self) -> String {
        self.request_seq += 1;
        let n = self.request_seq;
        format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", n, n & 0xffff, n & 0xfff, (n >> 12) & 0xfff, n)
    }

    /// One call: counted, throttled at the service's published rates when the scenario
    /// throttles, faulted by the scenario's `api_faults`, then answered.
    pub fn call(&mut self, service: Service, op: &str, req: &Value) -> Result<Answer, ApiError> {
        for n in self.indexed..self.sim.insts.len() {
            let arn = self.sim.insts[n].arn.clone();
            let id = arn.rsplit('/').next().unwrap_or("").to_string();
            self.inst_index.insert(arn, n);
            self.inst_index.insert(id, n);
        }
        self.indexed = self.sim.insts.len();
        *self.sim.acct.api.entry(op.to_string()).or_default() += 1;
        let now = self.sim.now;
        if self.sim.sc.timing.throttling && !self.sim.server_buckets.admit(op, now) {
            let code = if service == Service::AutoScaling || service == Service::CloudWatch {
                "Throttling"
            } else {
                "ThrottlingException"
            };
            return Err(ApiError::client(code, "Rate exceeded"));
        }
        if let Some((th, er, to, until)) = self.sim.faults
            && now <= until
        {
            let r = self.sim.fault_rng.unit();
            if r < th {
                return Err(ApiError::client("ThrottlingException", "Rate exceeded (simulated fault)"));
            } else if r < th + er {
                return Err(ApiError {
                    status: 500,
                    code: "ServerException".into(),
                    message: "simulated fault".into(),
                });
            } else if r < th + er + to {
                return Err(ApiError {
                    status: 503,
                    code: "ServiceUnavailableException".into(),
                    message: "the request timed out (simulated fault)".into(),
                });
            }
        }
        match service {
            Service::Ecs => self.ecs(op, req),
            Service::AutoScaling => self.autoscaling(op, req).map(Answer::Json),
            Service::AppAutoScaling => match op {
                // Nothing else scales the simulated services.
                "DescribeScalableTargets" => Ok(Answer::Json(json!({"ScalableTargets": []}))),
                "DescribeScalingPolicies" => Ok(Answer::Json(json!({"ScalingPolicies": []}))),
                _ => Err(unknown_op(op)),
            },
            Service::CloudWatch => self.cloudwatch(op, req).map(Answer::Json),
        }
    }

    /// The simulation report of the world so far (as `simulate --json` prints one row).
    pub fn report(&self, policy: &str) -> crate::report::Report {
        self.sim.report(policy)
    }
}

impl Def {
    fn of_spec(arn: &str, family: &str, spec: &ballast_core::placement::TaskSpec) -> Def {
        let mappings: Vec<Value> = spec
            .host_ports
            .iter()
            .map(|p| json!({"containerPort": p, "hostPort": p, "protocol": "tcp"}))
            .chain(spec.needs.udp_ports.iter().map(|p| json!({"containerPort": p, "hostPort": p, "protocol": "udp"})))
            .collect();
        let mut c = json!({
            "name": family,
            "image": format!("public.ecr.aws/ballast-twin/{family}:latest"),
            "cpu": spec.cpu,
            "memory": spec.memory,
            "essential": true,
            "portMappings": mappings,
        });
        if spec.needs.gpus > 0 {
            c["resourceRequirements"] = json!([{"type": "GPU", "value": spec.needs.gpus.to_string()}]);
        }
        Def {
            arn: arn.to_string(),
            family: family.to_string(),
            revision: arn.rsplit(':').next().and_then(|r| r.parse().ok()).unwrap_or(1),
            cpu: spec.cpu,
            memory: spec.memory,
            host_ports: spec.host_ports.clone(),
            udp_ports: spec.needs.udp_ports.clone(),
            gpus: spec.needs.gpus,
            network_mode: if spec.needs.awsvpc { "awsvpc".into() } else { "bridge".into() },
            constraints: spec.needs.constraints.clone(),
            containers: json!([c]),
            registered_at: Millis(0),
        }
    }
}

pub(crate) fn unknown_op(op: &str) -> ApiError {
    ApiError::client(
        "UnknownOperationException",
        format!("the twin does not serve {op} (docs/twin.md lists what it does)"),
    )
}

// --- request helpers --------------------------------------------------------------------

pub(crate) fn str_of<'a>(req: &'a Value, k: &str) -> Option<&'a str> {
    req.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(crate) fn list_of(req: &Value, k: &str) -> Vec<String> {
    match req.get(k) {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

/// An integer argument (a JSON number, or a string as awsQuery sends it).
pub(crate) fn int_of(req: &Value, k: &str) -> Result<Option<i64>, ApiError> {
    match req.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| ApiError::invalid(format!("{k} must be an integer, not {n}")))
        }
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ApiError::client("ValidationError", format!("{k} must be an integer, not `{s}`"))),
        Some(v) => Err(ApiError::invalid(format!("{k} must be an integer, not {v}"))),
    }
}

/// A boolean argument (JSON, or `true`/`false` as awsQuery sends it).
pub(crate) fn bool_of(req: &Value, k: &str) -> Option<bool> {
    match req.get(k) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

/// A timestamp argument: epoch seconds (JSON, CBOR) or ISO 8601 (awsQuery).
pub(crate) fn time_of(req: &Value, k: &str) -> Result<Option<f64>, ApiError> {
    match req.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::Object(o)) if o.contains_key("$ts") => Ok(o["$ts"].as_f64()),
        Some(Value::String(s)) => parse_iso8601(s)
            .map(Some)
            .ok_or_else(|| ApiError::client("ValidationError", format!("{k}: `{s}` is not an ISO 8601 timestamp"))),
        Some(v) => Err(ApiError::client("ValidationError", format!("{k}: {v} is not a timestamp"))),
    }
}

/// A timestamp in a response: `{"$ts": epoch seconds}`, which each protocol renders its way.
pub fn ts(epoch_s: f64) -> Value {
    json!({ "$ts": epoch_s })
}

/// Pages a sorted list: `maxResults` (1..=`limit`, default `default_max`) after `nextToken`
/// (the last item of the previous page, opaque to the client).
pub(crate) fn page<S: AsRef<str>>(
    items: Vec<S>,
    req: &Value,
    default_max: usize,
    limit: usize,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let max = match int_of(req, "maxResults")? {
        None => default_max,
        Some(m) if m >= 1 && m as usize <= limit => m as usize,
        Some(m) => return Err(ApiError::invalid(format!("maxResults must be between 1 and {limit}, not {m}"))),
    };
    let after = match str_of(req, "nextToken") {
        None => None,
        Some(tok) => Some(decode_token(tok).ok_or_else(|| ApiError::invalid("The nextToken is not valid."))?),
    };
    // The page is the `max` least items after the token: selected, not the whole list sorted
    // (a page of 100 out of 100,000 tasks).
    let mut rest: Vec<&str> =
        items.iter().map(AsRef::as_ref).filter(|x| after.as_deref().is_none_or(|a| *x > a)).collect();
    let more = rest.len() > max;
    if more {
        rest.select_nth_unstable(max);
        rest.truncate(max);
    }
    rest.sort_unstable();
    let out: Vec<String> = rest.into_iter().map(str::to_string).collect();
    let token = if more { out.last().map(|l| encode_token(l)) } else { None };
    Ok((out, token))
}

fn encode_token(last: &str) -> String {
    let mut s = String::from("tw1");
    for b in last.bytes() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn decode_token(tok: &str) -> Option<String> {
    let hex = tok.strip_prefix("tw1")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-03T14:05:00Z`, `…00.123Z` or `…+00:00` as epoch seconds.
pub fn parse_iso8601(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (y, mo, da): (i64, i64, i64) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0.0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1.0 } else { 1.0 };
        let (oh, om) = o[1..].split_once(':').unwrap_or((&o[1..], "0"));
        (c, sign * (oh.parse::<f64>().ok()? * 3600.0 + om.parse::<f64>().ok()? * 60.0))
    } else {
        (time, 0.0)
    };
    let mut c = clock.split(':');
    let (h, mi): (f64, f64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let sec: f64 = c.next().map_or(Some(0.0), |v| v.parse().ok())?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    Some(days_from_civil(y, mo, da) as f64 * 86_400.0 + h * 3600.0 + mi * 60.0 + sec - offset)
}

/// Epoch seconds as ISO 8601 with milliseconds, UTC.
pub fn iso8601(epoch_s: f64) -> String {
    let ms = (epoch_s * 1000.0).round() as i64;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests;
