//! Scenario format v1 (SPEC.md): strict parsing with file:line:col errors, then validation
//! into a typed [`Scenario`].

use std::collections::BTreeMap;
use std::fmt;

use ballast_core::config::RawClusterConfig;
use ballast_core::duration::{Millis, parse_duration};
use ballast_core::model::{Constraint, Strategy};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::catalogue::{self, InstanceType};

type S<T> = Spanned<T>;

/// Container instances per cluster at most (ECS's limit).
pub const MAX_INSTANCES: u32 = 5_000;
/// Tasks per service at most (ECS's quota), also the bound for standalone counts.
pub const MAX_TASKS: u32 = 5_000;

/// A scenario that failed to parse or validate: where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    /// File name as given.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// The key, e.g. `groups[0].instance_type`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: S<String>,
    cluster: Option<S<String>>,
    seed: Option<u64>,
    duration: S<String>,
    azs: Option<Vec<S<String>>>,
    instance_types: Option<BTreeMap<String, RawType>>,
    groups: Vec<RawGroup>,
    #[serde(default)]
    services: Vec<RawService>,
    #[serde(default)]
    standalone: Vec<RawStandalone>,
    #[serde(default)]
    events: Vec<RawEvent>,
    #[serde(default)]
    metrics: Vec<RawMetric>,
    controller: Option<RawController>,
    api: Option<RawApi>,
    scheduler: Option<RawScheduler>,
    cloudwatch: Option<RawCloudWatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    latency: Option<S<String>>,
    throttling: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    placement_retry: Option<RawBackoff>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackoff {
    first: S<String>,
    max: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloudWatch {
    delay: Option<S<String>>,
    missing: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    cpu: i64,
    memory: i64,
    price: f64,
    spot_price: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: S<String>,
    capacity: Option<S<String>>,
    instance_type: Option<S<String>>,
    instance_types: Option<Vec<S<String>>>,
    desired: u32,
    min: Option<u32>,
    max: Option<u32>,
    boot: Option<S<String>>,
    #[serde(default)]
    gpus: u32,
    #[serde(default)]
    eni_trunking: bool,
    cooldown: Option<S<String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: S<String>,
    desired: Option<u32>,
    cpu: i64,
    memory: i64,
    #[serde(default)]
    ports: Vec<u16>,
    #[serde(default)]
    strategy: Vec<S<String>>,
    #[serde(default)]
    constraints: Vec<S<String>>,
    min_healthy_percent: Option<u32>,
    max_percent: Option<u32>,
    #[serde(default)]
    daemon: bool,
    start: Option<S<String>>,
    stop: Option<S<String>>,
    utilization: Option<RawUtil>,
    #[serde(default)]
    gpus: u32,
    #[serde(default)]
    udp_ports: Vec<u16>,
    network_mode: Option<S<String>>,
    #[serde(default)]
    requires_attributes: Vec<S<String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawUtil {
    cpu: f64,
    memory: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStandalone {
    name: S<String>,
    count: u32,
    cpu: i64,
    memory: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: S<String>,
    set_group_desired: Option<RawGroupDesired>,
    set_service_desired: Option<RawServiceDesired>,
    interrupt_spot: Option<RawInterrupt>,
    terminate_instances: Option<RawTerminate>,
    spot_outage: Option<RawOutage>,
    api_faults: Option<RawFaults>,
    set_utilization: Option<RawSetUtil>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupDesired {
    group: S<String>,
    desired: u32,
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceDesired {
    service: S<String>,
    desired: u32,
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterrupt {
    group: S<String>,
    fraction: f64,
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerminate {
    group: S<String>,
    count: u32,
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutage {
    group: S<String>,
    until: S<String>,
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    throttle_rate: Option<f64>,
    error_rate: Option<f64>,
    timeout_rate: Option<f64>,
    until: S<String>,
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetUtil {
    service: S<String>,
    cpu: f64,
    memory: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    source: S<String>,
    namespace: Option<String>,
    name: Option<String>,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
    url: Option<String>,
    field: Option<String>,
    points: Vec<(S<String>, f64)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawController {
    every: Option<S<String>>,
    on_instance_events: Option<bool>,
    config: Option<RawClusterConfig>,
}

/// Capacity kind of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    /// On-demand Auto Scaling group.
    OnDemand,
    /// Spot pool.
    Spot,
}

/// A capacity group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// Name.
    pub name: String,
    /// Capacity kind.
    pub capacity: Capacity,
    /// Instance types, used round-robin.
    pub instance_types: Vec<String>,
    /// Initial desired capacity.
    pub desired: u32,
    /// Minimum.
    pub min: u32,
    /// Maximum.
    pub max: u32,
    /// Launch until registered and ACTIVE.
    pub boot: Millis,
    /// GPUs per instance (extension: `gpus`).
    pub gpus: u32,
    /// ENI trunking on (extension: `eni_trunking`): instances carry `ecs.awsvpc-trunk-id` and
    /// take as many awsvpc tasks as their branch interfaces.
    pub eni_trunking: bool,
    /// The group's DefaultCooldown (extension: `cooldown`, default 300 s as on AWS).
    pub cooldown: Millis,
    /// Tags every instance of the group carries (extension: `tags`, e.g. `ballast:ignore`).
    pub tags: BTreeMap<String, String>,
}

/// A service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Name.
    pub name: String,
    /// Desired count (ignored for daemons).
    pub desired: u32,
    /// CPU units.
    pub cpu: i64,
    /// Memory MiB.
    pub memory: i64,
    /// Host ports.
    pub ports: Vec<u16>,
    /// Strategy (empty: ECS default).
    pub strategy: Vec<Strategy>,
    /// Constraints.
    pub constraints: Vec<Constraint>,
    /// minimumHealthyPercent.
    pub min_healthy_percent: u32,
    /// maximumPercent.
    pub max_percent: u32,
    /// DAEMON.
    pub daemon: bool,
    /// Placed until RUNNING and healthy.
    pub start: Millis,
    /// Stop requested until stopped.
    pub stop: Millis,
    /// Fractions of the reservation in use.
    pub utilization: (f64, f64),
    /// GPUs, UDP ports, awsvpc, required attributes (extensions: `gpus`, `udp_ports`,
    /// `network_mode: awsvpc`, `requires_attributes: [name or name=value]`).
    pub needs: ballast_core::model::TaskNeeds,
    /// The service's tags at the start (extension: `tags`, e.g. `ballast:ignore`).
    pub tags: BTreeMap<String, String>,
}

/// Standalone tasks (RunTask).
#[derive(Debug, Clone, PartialEq)]
pub struct StandaloneSpec {
    /// Family name.
    pub name: String,
    /// How many.
    pub count: u32,
    /// CPU units.
    pub cpu: i64,
    /// Memory MiB.
    pub memory: i64,
}

/// What happens at a scenario event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Set a group's desired capacity.
    SetGroupDesired {
        /// Group index.
        group: usize,
        /// Desired.
        desired: u32,
    },
    /// Set a service's desired count.
    SetServiceDesired {
        /// Service index.
        service: usize,
        /// Desired.
        desired: u32,
    },
    /// Interrupt a fraction of a Spot group (2-minute notice).
    InterruptSpot {
        /// Group index.
        group: usize,
        /// Fraction 0..=1.
        fraction: f64,
    },
    /// Terminate instances of a group at once.
    TerminateInstances {
        /// Group index.
        group: usize,
        /// How many.
        count: u32,
    },
    /// Interrupt all Spot instances of a group and refuse launches until `until`.
    SpotOutage {
        /// Group index.
        group: usize,
        /// End of the outage.
        until: Millis,
    },
    /// API faults until `until`.
    ApiFaults {
        /// Probability a call is throttled.
        throttle_rate: f64,
        /// Probability a call fails with a 5xx.
        error_rate: f64,
        /// Probability a call times out.
        timeout_rate: f64,
        /// End.
        until: Millis,
    },
    /// Change a service's utilisation.
    SetUtilization {
        /// Service index.
        service: usize,
        /// CPU fraction.
        cpu: f64,
        /// Memory fraction.
        memory: f64,
    },
}

/// A timed event.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    /// When.
    pub at: Millis,
    /// What.
    pub kind: EventKind,
}

/// A metric series served by the simulated metric sources (step function).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSeries {
    /// `cloudwatch` or `http`.
    pub source: String,
    /// CloudWatch namespace.
    pub namespace: Option<String>,
    /// CloudWatch metric name.
    pub name: Option<String>,
    /// CloudWatch dimensions.
    pub dimensions: BTreeMap<String, String>,
    /// HTTP URL.
    pub url: Option<String>,
    /// HTTP JSON field.
    pub field: Option<String>,
    /// (time, value) steps.
    pub points: Vec<(Millis, f64)>,
}

/// How ballast is driven in the simulation.
#[derive(Debug, Clone)]
pub struct ControllerSpec {
    /// Scheduled run period.
    pub every: Millis,
    /// Deliver instance state change events.
    pub on_instance_events: bool,
    /// The cluster's configuration entry.
    pub config: RawClusterConfig,
}

/// How the simulated AWS APIs, the ECS scheduler and CloudWatch behave in time. Every knob
/// defaults to ECS's published or observed behaviour (docs/simulator.md, "Timing"); a scenario
/// may turn each off to isolate an effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Every API call attempt takes this long (`api.latency`, default 50 ms).
    pub api_latency: Millis,
    /// Server-side token buckets per ECS throttle category at the published burst and refill
    /// rates (ecs-behaviour.md §7.1) and CloudWatch's GetMetricData quota (`api.throttling`,
    /// default on): a call finding its bucket empty is refused with ThrottlingException.
    pub throttling: bool,
    /// A service task that cannot be placed is retried after `first`, doubling after each
    /// failed attempt up to `max` (`scheduler.placement_retry`, default 10 s and 15 m); a
    /// `first` of 0 retries at every scheduler pass.
    pub placement_retry: (Millis, Millis),
    /// A CloudWatch sample (one a minute) becomes visible this long after it is taken
    /// (`cloudwatch.delay`, default 60 s).
    pub metric_delay: Millis,
    /// The probability that a CloudWatch sample never arrives (`cloudwatch.missing`, default
    /// 0.01).
    pub metric_missing: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            api_latency: Millis(50),
            throttling: true,
            placement_retry: (Millis::secs(10), Millis::mins(15)),
            metric_delay: Millis::secs(60),
            metric_missing: 0.01,
        }
    }
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// ECS cluster name.
    pub cluster: String,
    /// Seed.
    pub seed: u64,
    /// Simulated time.
    pub duration: Millis,
    /// Availability Zones.
    pub azs: Vec<String>,
    /// Instance catalogue (built-in plus overrides).
    pub catalogue: BTreeMap<String, InstanceType>,
    /// Capacity groups.
    pub groups: Vec<GroupSpec>,
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// Standalone tasks.
    pub standalone: Vec<StandaloneSpec>,
    /// Events in time order.
    pub events: Vec<TimedEvent>,
    /// Metric series.
    pub metrics: Vec<MetricSeries>,
    /// Controller.
    pub controller: ControllerSpec,
    /// How the simulated APIs, scheduler and CloudWatch behave in time.
    pub timing: Timing,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, loc: Location, key: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            line: loc.line(),
            column: loc.column(),
            key: key.into(),
            message: message.into(),
        }
    }
    fn dur(&self, s: &S<String>, key: &str) -> Result<Millis, ScenarioError> {
        parse_duration(&s.value).map_err(|m| self.err(s.referenced, key, m))
    }
}

impl Scenario {
    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = serde_saphyr::from_str(text).map_err(|e| {
            let loc = e.location();
            let msg = e.without_snippet().to_string();
            let msg = with_suggestion(msg.split(" at line ").next().unwrap_or(&msg));
            let (mut line, mut column) = (loc.map_or(0, |l| l.line()), loc.map_or(0, |l| l.column()));
            let mut key = String::new();
            if let Some(field) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                // The parser reports the enclosing mapping; point at the key itself.
                if let Some((l, c)) = locate_key(text, field, line) {
                    (line, column) = (l, c);
                }
                key = field.to_string();
            }
            // A type error names no field: name it from the position.
            if key.is_empty()
                && let Some(path) = key_path_at(text, line, column)
            {
                key = path;
            }
            ScenarioError {
                file: file.to_string(),
                line,
                column,
                key,
                message: format!("{msg} (see SPEC.md, Scenario format v1)"),
            }
        })?;
        validate(raw, &Ctx { file })
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the scenario: {e}"),
        })?;
        Scenario::parse(&text, &file)
    }

    /// Index of a group by name.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// When the last scenario event happens (0 without events).
    pub fn last_event_at(&self) -> Millis {
        self.events.iter().map(|e| e.at).max().unwrap_or(Millis(0))
    }
}

/// The first `key:` at or after `from_line` (1-based line and column), for errors the YAML
/// parser reports at the enclosing mapping.
pub fn locate_key(text: &str, key: &str, from_line: u64) -> Option<(u64, u64)> {
    let pat = format!("{key}:");
    for (n, line) in text.lines().enumerate() {
        let ln = n as u64 + 1;
        if ln < from_line.max(1) {
            continue;
        }
        let mut start = 0;
        while let Some(pos) = line[start..].find(&pat) {
            let at = start + pos;
            let before = line[..at].chars().last();
            if before.is_none_or(|c| c == ' ' || c == '{' || c == '-' || c == ',') {
                return Some((ln, at as u64 + 1));
            }
            start = at + pat.len();
        }
    }
    None
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo (at
/// most a third of the word's length, at least 1): `sleep_tme` → `sleep_time`.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let dist = |a: &str, b: &str| -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    };
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (dist(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `message` with "did you mean `x`?" added when it is serde's "unknown field `w`, expected
/// one of a, b, c" (or "unknown variant") and one of the expected names is close to `w`.
pub fn with_suggestion(message: &str) -> String {
    for prefix in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((word, tail)) = rest.split_once('`')
        {
            let expected = tail.split_once("expected one of ").or_else(|| tail.split_once("expected ")).map(|(_, e)| e);
            let names = expected
                .unwrap_or("")
                .split(',')
                .map(|n| n.trim().trim_matches('`').trim_start_matches("or ").trim_matches('`'))
                .filter(|n| !n.is_empty());
            if let Some(best) = did_you_mean(word, names) {
                return format!("{message}; did you mean `{best}`?");
            }
        }
    }
    message.to_string()
}

/// Indentation of a YAML line: (the column of its leading `- `, if it is a list item; the
/// column where its content starts; the content).
fn indents(line: &str) -> (Option<usize>, usize, &str) {
    let lead = line.len() - line.trim_start_matches(' ').len();
    let mut rest = &line[lead..];
    let mut ci = lead;
    let dash = (rest.starts_with("- ") || rest == "-").then_some(lead);
    while rest.starts_with("- ") {
        rest = rest[2..].trim_start_matches(' ');
        ci = line.len() - rest.len();
    }
    (dash, ci, rest)
}

/// The keys a position sits under within one line of flow or block YAML (`a: {b: 1, c: {d: [`
/// gives `a`, `c`, `d`), ignoring quoted text.
fn flow_keys(s: &str) -> Vec<String> {
    let mut levels: Vec<Option<String>> = vec![None];
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let word_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '.';
    for c in s.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            ':' if !word.is_empty() => {
                if let Some(top) = levels.last_mut() {
                    *top = Some(std::mem::take(&mut word));
                }
            }
            '{' | '[' => levels.push(None),
            '}' | ']' if levels.len() > 1 => {
                levels.pop();
            }
            _ => {}
        }
        if word_char(c) {
            word.push(c);
        } else {
            word.clear();
        }
    }
    levels.into_iter().flatten().collect()
}

/// The dotted key path (`clusters.prod.rebalance.drain.timeout`, with `[i]` for list items) of
/// what stands at a 1-based line and column of block or flow YAML, judged from indentation and
/// brackets, for errors a parser reports without naming the field. `None` when nothing can be
/// told (the position is outside the text, or not under a key).
pub fn key_path_at(text: &str, line: u64, column: u64) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = (line as usize).checked_sub(1)?;
    let cur = *lines.get(idx)?;
    let (dash, ci, _) = indents(cur);
    let upto: String = cur.chars().take((column as usize).saturating_sub(1)).collect();
    let mut inner = flow_keys(upto.get(ci..).unwrap_or(""));
    if inner.is_empty() {
        // At the start of a `key: value` line: the key itself.
        let own = cur.get(ci..).unwrap_or("");
        inner = flow_keys(own.find(':').map_or("", |i| &own[..=i]));
    }
    let mut up: Vec<String> = Vec::new();
    let mut want = ci;
    // (the column of the list's dashes, how many items came before ours)
    let mut in_list: Option<(usize, usize)> = dash.map(|d| (d, 0));
    for l in lines[..idx].iter().rev() {
        if want == 0 && in_list.is_none() {
            break;
        }
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (d, c, rest) = indents(l);
        let key = rest.split_once(':').map(|(k, _)| k.trim().trim_matches(['"', '\'']).to_string());
        if let Some((d0, n)) = in_list {
            if d == Some(d0) {
                in_list = Some((d0, n + 1));
                continue;
            }
            let lead = d.unwrap_or(c);
            if lead > d0 {
                continue;
            }
            // The list's own key (`groups:`), at the dashes' column or left of them.
            up.push(format!("[{n}]"));
            in_list = None;
            want = d0 + 1;
        }
        if c < want {
            if let Some(k) = key.filter(|k| !k.is_empty()) {
                up.push(k);
            }
            want = c;
            in_list = d.map(|d| (d, 0));
        } else if c == want && d.is_some() {
            in_list = d.map(|d| (d, 0));
        }
    }
    let mut out = String::new();
    for part in up.iter().rev().chain(inner.iter()) {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    (!out.is_empty()).then_some(out)
}

fn validate(raw: RawScenario, cx: &Ctx) -> Result<Scenario, ScenarioError> {
    let name = raw.name.value.trim().to_string();
    if name.is_empty() {
        return Err(cx.err(raw.name.referenced, "name", "must not be empty"));
    }
    let duration = cx.dur(&raw.duration, "duration")?;
    if duration.0 == 0 || duration > Millis::mins(7 * 24 * 60) {
        return Err(cx.err(raw.duration.referenced, "duration", "must be more than 0 and at most 7 days"));
    }
    let azs: Vec<String> = match &raw.azs {
        Some(v) if v.is_empty() => return Err(cx.err(Location::UNKNOWN, "azs", "needs at least one zone")),
        Some(v) => v.iter().map(|s| s.value.clone()).collect(),
        None => vec!["us-east-1a".into()],
    };
    let mut catalogue = catalogue::builtin();
    for (k, t) in raw.instance_types.unwrap_or_default() {
        if t.cpu <= 0 || t.memory <= 0 || t.price < 0.0 {
            return Err(cx.err(
                Location::UNKNOWN,
                format!("instance_types.{k}"),
                "cpu and memory must be positive, price not negative",
            ));
        }
        catalogue.insert(
            k,
            InstanceType {
                cpu: t.cpu,
                memory: t.memory,
                price: t.price,
                spot_price: t.spot_price.unwrap_or(t.price * 0.37),
                arch: "x86_64",
            },
        );
    }
    let mut groups = Vec::new();
    for (i, g) in raw.groups.iter().enumerate() {
        groups.push(validate_group(g, i, &catalogue, cx)?);
        if groups[..i].iter().any(|x: &GroupSpec| x.name == g.name.value) {
            return Err(cx.err(
                g.name.referenced,
                format!("groups[{i}].name"),
                format!("duplicate group `{}`", g.name.value),
            ));
        }
    }
    if groups.is_empty() {
        return Err(cx.err(Location::UNKNOWN, "groups", "needs at least one capacity group"));
    }
    let mut services = Vec::new();
    for (i, s) in raw.services.iter().enumerate() {
        let spec = validate_service(s, i, cx)?;
        if services.iter().any(|x: &ServiceSpec| x.name == spec.name) {
            return Err(cx.err(
                s.name.referenced,
                format!("services[{i}].name"),
                format!("duplicate service `{}`", spec.name),
            ));
        }
        services.push(spec);
    }
    let mut standalone = Vec::new();
    for (i, s) in raw.standalone.iter().enumerate() {
        if s.cpu < 0 || s.memory <= 0 {
            return Err(cx.err(
                s.name.referenced,
                format!("standalone[{i}]"),
                "cpu must not be negative and memory must be positive",
            ));
        }
        if s.count > MAX_TASKS {
            return Err(cx.err(s.name.referenced, format!("standalone[{i}].count"), format!("at most {MAX_TASKS}")));
        }
        standalone.push(StandaloneSpec { name: s.name.value.clone(), count: s.count, cpu: s.cpu, memory: s.memory });
    }
    let mut events = Vec::new();
    for (i, e) in raw.events.iter().enumerate() {
        events.push(validate_event(e, i, &groups, &services, duration, cx)?);
    }
    events.sort_by_key(|e: &TimedEvent| e.at);
    let mut metrics = Vec::new();
    for (i, m) in raw.metrics.iter().enumerate() {
        metrics.push(validate_metric(m, i, cx)?);
    }
    let (every, on_events, config) = match raw.controller {
        Some(c) => {
            let every = match &c.every {
                Some(e) => {
                    let d = cx.dur(e, "controller.every")?;
                    if d < Millis::secs(10) {
                        return Err(cx.err(e.referenced, "controller.every", "must be at least 10s"));
                    }
                    d
                }
                None => Millis::mins(5),
            };
            (every, c.on_instance_events.unwrap_or(true), c.config.unwrap_or_default())
        }
        None => (Millis::mins(5), true, RawClusterConfig::default()),
    };
    let cluster = raw.cluster.map(|c| c.value).unwrap_or_else(|| name.clone());
    let timing = validate_timing(raw.api.as_ref(), raw.scheduler.as_ref(), raw.cloudwatch.as_ref(), cx)?;
    Ok(Scenario {
        name,
        cluster,
        seed: raw.seed.unwrap_or(0),
        duration,
        azs,
        catalogue,
        groups,
        services,
        standalone,
        events,
        metrics,
        controller: ControllerSpec { every, on_instance_events: on_events, config },
        timing,
    })
}

fn validate_timing(
    api: Option<&RawApi>,
    scheduler: Option<&RawScheduler>,
    cloudwatch: Option<&RawCloudWatch>,
    cx: &Ctx,
) -> Result<Timing, ScenarioError> {
    let mut t = Timing::default();
    if let Some(a) = api {
        if let Some(l) = &a.latency {
            t.api_latency = cx.dur(l, "api.latency")?;
            if t.api_latency > Millis::secs(30) {
                return Err(cx.err(l.referenced, "api.latency", "at most 30s (the SDK's attempt timeout)"));
            }
        }
        t.throttling = a.throttling.unwrap_or(t.throttling);
    }
    if let Some(b) = scheduler.and_then(|s| s.placement_retry.as_ref()) {
        let first = cx.dur(&b.first, "scheduler.placement_retry.first")?;
        let max = cx.dur(&b.max, "scheduler.placement_retry.max")?;
        if max < first {
            return Err(cx.err(b.max.referenced, "scheduler.placement_retry.max", "must be at least `first`"));
        }
        t.placement_retry = (first, max);
    }
    if let Some(c) = cloudwatch {
        if let Some(d) = &c.delay {
            t.metric_delay = cx.dur(d, "cloudwatch.delay")?;
            if t.metric_delay > Millis::mins(15) {
                return Err(cx.err(d.referenced, "cloudwatch.delay", "at most 15m"));
            }
        }
        if let Some(m) = c.missing {
            if !(0.0..=1.0).contains(&m) {
                return Err(cx.err(Location::UNKNOWN, "cloudwatch.missing", "a probability between 0 and 1"));
            }
            t.metric_missing = m;
        }
    }
    Ok(t)
}

fn validate_group(
    g: &RawGroup,
    i: usize,
    cat: &BTreeMap<String, InstanceType>,
    cx: &Ctx,
) -> Result<GroupSpec, ScenarioError> {
    let key = |k: &str| format!("groups[{i}].{k}");
    let capacity = match g.capacity.as_ref().map(|c| c.value.as_str()) {
        None | Some("on-demand") => Capacity::OnDemand,
        Some("spot") => Capacity::Spot,
        Some(o) => {
            return Err(cx.err(
                g.capacity.as_ref().expect("some").referenced,
                key("capacity"),
                format!("`{o}` is not a capacity; use on-demand or spot"),
            ));
        }
    };
    let mut types: Vec<&S<String>> = Vec::new();
    if let Some(t) = &g.instance_type {
        types.push(t);
    }
    if let Some(ts) = &g.instance_types {
        types.extend(ts.iter());
    }
    if types.is_empty() {
        return Err(cx.err(g.name.referenced, key("instance_type"), "a group needs instance_type or instance_types"));
    }
    for t in &types {
        if !cat.contains_key(&t.value) {
            return Err(cx.err(
                t.referenced,
                key("instance_type"),
                format!("unknown instance type `{}`; add it under instance_types: with cpu, memory and price", t.value),
            ));
        }
    }
    let min = g.min.unwrap_or(0);
    let max = g.max.unwrap_or(g.desired.max(min));
    if max > MAX_INSTANCES {
        return Err(cx.err(
            g.name.referenced,
            key("max"),
            format!("at most {MAX_INSTANCES} instances (ECS's limit per cluster)"),
        ));
    }
    if min > max || g.desired < min || g.desired > max {
        return Err(cx.err(
            g.name.referenced,
            key("desired"),
            format!("needs min ≤ desired ≤ max (min {min}, desired {}, max {max})", g.desired),
        ));
    }
    let boot = match &g.boot {
        Some(b) => cx.dur(b, &key("boot"))?,
        None => Millis::mins(2),
    };
    Ok(GroupSpec {
        name: g.name.value.clone(),
        capacity,
        instance_types: types.iter().map(|t| t.value.clone()).collect(),
        desired: g.desired,
        min,
        max,
        boot,
        gpus: g.gpus,
        eni_trunking: g.eni_trunking,
        cooldown: match &g.cooldown {
            Some(c) => cx.dur(c, &format!("groups[{i}].cooldown"))?,
            None => Millis::secs(300),
        },
        tags: g.tags.clone(),
    })
}

fn validate_service(s: &RawService, i: usize, cx: &Ctx) -> Result<ServiceSpec, ScenarioError> {
    let key = |k: &str| format!("services[{i}].{k}");
    if s.cpu < 0 || s.memory <= 0 {
        return Err(cx.err(s.name.referenced, key("memory"), "cpu must not be negative and memory must be positive"));
    }
    let mut strategy = Vec::new();
    for st in &s.strategy {
        strategy.push(Strategy::parse(&st.value).map_err(|m| cx.err(st.referenced, key("strategy"), m))?);
    }
    if strategy.len() > 5 {
        return Err(cx.err(s.name.referenced, key("strategy"), "at most 5 strategy rules per service (ECS's limit)"));
    }
    let mut constraints = Vec::new();
    for c in &s.constraints {
        constraints.push(Constraint::parse(&c.value).map_err(|m| cx.err(c.referenced, key("constraints"), m))?);
    }
    if constraints.len() > 10 {
        return Err(cx.err(s.name.referenced, key("constraints"), "at most 10 constraints per service (ECS's limit)"));
    }
    let (dmin, dmax) = if s.daemon { (0, 100) } else { (100, 200) };
    let min = s.min_healthy_percent.unwrap_or(dmin);
    let max = s.max_percent.unwrap_or(dmax);
    if s.daemon && max != 100 {
        return Err(cx.err(s.name.referenced, key("max_percent"), "a daemon service's maximumPercent must be 100"));
    }
    if min > 100 || !(100..=200).contains(&max) {
        return Err(cx.err(
            s.name.referenced,
            key("max_percent"),
            format!("needs 0 ≤ min_healthy_percent ≤ 100 ≤ max_percent ≤ 200 (got {min}/{max})"),
        ));
    }
    if s.desired.unwrap_or(0) > MAX_TASKS {
        return Err(cx.err(
            s.name.referenced,
            key("desired"),
            format!("at most {MAX_TASKS} tasks per service (ECS's quota)"),
        ));
    }
    if s.daemon && s.desired.is_some() {
        return Err(cx.err(
            s.name.referenced,
            key("desired"),
            "a daemon service runs one task per instance; remove desired",
        ));
    }
    if !s.daemon && s.desired.is_none() {
        return Err(cx.err(s.name.referenced, key("desired"), "a replica service needs desired"));
    }
    let util = s.utilization.unwrap_or(RawUtil { cpu: 0.5, memory: 0.5 });
    if !(0.0..=4.0).contains(&util.cpu) || !(0.0..=4.0).contains(&util.memory) {
        return Err(cx.err(s.name.referenced, key("utilization"), "fractions must be between 0 and 4"));
    }
    Ok(ServiceSpec {
        name: s.name.value.clone(),
        desired: s.desired.unwrap_or(0),
        cpu: s.cpu,
        memory: s.memory,
        ports: s.ports.clone(),
        strategy,
        constraints,
        min_healthy_percent: min,
        max_percent: max,
        daemon: s.daemon,
        start: match &s.start {
            Some(d) => cx.dur(d, &key("start"))?,
            None => Millis::secs(40),
        },
        stop: match &s.stop {
            Some(d) => cx.dur(d, &key("stop"))?,
            None => Millis::secs(30),
        },
        utilization: (util.cpu, util.memory),
        needs: ballast_core::model::TaskNeeds {
            gpus: s.gpus,
            udp_ports: s.udp_ports.clone(),
            awsvpc: match &s.network_mode {
                None => false,
                Some(m) if m.value == "awsvpc" => true,
                Some(m) if m.value == "bridge" || m.value == "host" => false,
                Some(m) => {
                    return Err(cx.err(m.referenced, key("network_mode"), "is awsvpc, bridge or host"));
                }
            },
            requires: s
                .requires_attributes
                .iter()
                .map(|a| match a.value.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (a.value.clone(), None),
                })
                .collect(),
            constraints: vec![],
        },
        tags: s.tags.clone(),
    })
}

fn find<T>(
    items: &[T],
    name: &S<String>,
    get: impl Fn(&T) -> &str,
    key: String,
    what: &str,
    cx: &Ctx,
) -> Result<usize, ScenarioError> {
    items.iter().position(|x| get(x) == name.value).ok_or_else(|| {
        let known: Vec<&str> = items.iter().map(&get).collect();
        cx.err(name.referenced, key, format!("unknown {what} `{}`; known: {}", name.value, known.join(", ")))
    })
}

fn validate_event(
    e: &RawEvent,
    i: usize,
    groups: &[GroupSpec],
    services: &[ServiceSpec],
    duration: Millis,
    cx: &Ctx,
) -> Result<TimedEvent, ScenarioError> {
    let at = cx.dur(&e.at, &format!("events[{i}].at"))?;
    if at > duration {
        return Err(cx.err(
            e.at.referenced,
            format!("events[{i}].at"),
            format!("{at} is after the scenario's duration ({duration})"),
        ));
    }
    let g = |n: &S<String>, k: &str| find(groups, n, |g| &g.name, format!("events[{i}].{k}.group"), "group", cx);
    let s = |n: &S<String>, k: &str| find(services, n, |s| &s.name, format!("events[{i}].{k}.service"), "service", cx);
    let spot = |n: &S<String>, k: &str| -> Result<usize, ScenarioError> {
        let group = g(n, k)?;
        if groups[group].capacity != Capacity::Spot {
            return Err(cx.err(
                n.referenced,
                format!("events[{i}].{k}.group"),
                format!("`{}` is not a spot group", n.value),
            ));
        }
        Ok(group)
    };
    let mut kinds = Vec::new();
    if let Some(x) = &e.set_group_desired {
        let group = g(&x.group, "set_group_desired")?;
        let gs = &groups[group];
        if x.desired < gs.min || x.desired > gs.max {
            return Err(cx.err(
                x.group.referenced,
                format!("events[{i}].set_group_desired.desired"),
                format!("{} is outside the group's min {} and max {}", x.desired, gs.min, gs.max),
            ));
        }
        kinds.push(EventKind::SetGroupDesired { group, desired: x.desired });
    }
    if let Some(x) = &e.set_service_desired {
        let service = s(&x.service, "set_service_desired")?;
        if services[service].daemon {
            return Err(cx.err(
                x.service.referenced,
                format!("events[{i}].set_service_desired.service"),
                "a daemon service has no desired count",
            ));
        }
        if x.desired > MAX_TASKS {
            return Err(cx.err(
                x.service.referenced,
                format!("events[{i}].set_service_desired.desired"),
                format!("at most {MAX_TASKS} tasks per service"),
            ));
        }
        kinds.push(EventKind::SetServiceDesired { service, desired: x.desired });
    }
    if let Some(x) = &e.interrupt_spot {
        let group = spot(&x.group, "interrupt_spot")?;
        if !(0.0..=1.0).contains(&x.fraction) {
            return Err(cx.err(
                x.group.referenced,
                format!("events[{i}].interrupt_spot.fraction"),
                "must be between 0 and 1",
            ));
        }
        kinds.push(EventKind::InterruptSpot { group, fraction: x.fraction });
    }
    if let Some(x) = &e.terminate_instances {
        kinds.push(EventKind::TerminateInstances { group: g(&x.group, "terminate_instances")?, count: x.count });
    }
    if let Some(x) = &e.spot_outage {
        let group = spot(&x.group, "spot_outage")?;
        let until = cx.dur(&x.until, &format!("events[{i}].spot_outage.until"))?;
        if until < at {
            return Err(cx.err(x.until.referenced, format!("events[{i}].spot_outage.until"), "ends before it starts"));
        }
        kinds.push(EventKind::SpotOutage { group, until });
    }
    if let Some(x) = &e.api_faults {
        let until = cx.dur(&x.until, &format!("events[{i}].api_faults.until"))?;
        let rates = [x.throttle_rate.unwrap_or(0.0), x.error_rate.unwrap_or(0.0), x.timeout_rate.unwrap_or(0.0)];
        if rates.iter().any(|r| !(0.0..=1.0).contains(r)) || rates.iter().sum::<f64>() > 1.0 {
            return Err(cx.err(
                x.until.referenced,
                format!("events[{i}].api_faults"),
                "rates must be between 0 and 1 and sum to at most 1",
            ));
        }
        if until < at {
            return Err(cx.err(x.until.referenced, format!("events[{i}].api_faults.until"), "ends before it starts"));
        }
        kinds.push(EventKind::ApiFaults {
            throttle_rate: rates[0],
            error_rate: rates[1],
            timeout_rate: rates[2],
            until,
        });
    }
    if let Some(x) = &e.set_utilization {
        let service = s(&x.service, "set_utilization")?;
        if !(0.0..=4.0).contains(&x.cpu) || !(0.0..=4.0).contains(&x.memory) {
            return Err(cx.err(
                x.service.referenced,
                format!("events[{i}].set_utilization"),
                "fractions must be between 0 and 4",
            ));
        }
        kinds.push(EventKind::SetUtilization { service, cpu: x.cpu, memory: x.memory });
    }
    match kinds.len() {
        1 => Ok(TimedEvent { at, kind: kinds.pop().expect("one") }),
        0 => Err(cx.err(e.at.referenced, format!("events[{i}]"), "needs one of set_group_desired, set_service_desired, interrupt_spot, terminate_instances, spot_outage, api_faults, set_utilization")),
        _ => Err(cx.err(e.at.referenced, format!("events[{i}]"), "has more than one action; write one event per action")),
    }
}

fn validate_metric(m: &RawMetric, i: usize, cx: &Ctx) -> Result<MetricSeries, ScenarioError> {
    let key = format!("metrics[{i}]");
    match m.source.value.as_str() {
        "cloudwatch" if m.namespace.is_none() || m.name.is_none() => {
            return Err(cx.err(m.source.referenced, key, "a cloudwatch series needs namespace and name"));
        }
        "http" if m.url.is_none() || m.field.is_none() => {
            return Err(cx.err(m.source.referenced, key, "an http series needs url and field"));
        }
        "cloudwatch" | "http" => {}
        o => return Err(cx.err(m.source.referenced, key, format!("`{o}` is not a source; use cloudwatch or http"))),
    }
    let mut points = Vec::new();
    for (t, v) in &m.points {
        points.push((cx.dur(t, &format!("metrics[{i}].points"))?, *v));
    }
    points.sort_by_key(|p| p.0);
    Ok(MetricSeries {
        source: m.source.value.clone(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        dimensions: m.dimensions.clone(),
        url: m.url.clone(),
        field: m.field.clone(),
        points,
    })
}

#[cfg(test)]
mod tests;
