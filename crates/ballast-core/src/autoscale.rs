//! The autoscale job's configuration: exactly the keys of a seed 003 (ecs-autoscale) cluster
//! definition, as written (raw), then validated once. `%(VAR)` substitution happens on the
//! text before parsing ([`substitute`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::expr::Expr;

/// A cluster definition as written (seed 003's `<cluster>.yml`, or `autoscale:`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoscale {
    /// The cluster's Auto Scaling group.
    pub autoscale_group: Option<String>,
    /// Off when false.
    pub enabled: Option<bool>,
    /// Spare CPU units to keep (an empty "task").
    pub cpu_buffer: Option<f64>,
    /// Spare memory (MiB) to keep.
    pub mem_buffer: Option<f64>,
    /// The group's minimum instances (changed only when both min and max are set).
    pub min: Option<u32>,
    /// The group's maximum instances.
    pub max: Option<u32>,
    /// Per service.
    pub services: Option<BTreeMap<String, RawService>>,
}

/// One service's scaling, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Off when false.
    pub enabled: Option<bool>,
    /// Fewest tasks.
    pub min: Option<u32>,
    /// Most tasks.
    pub max: Option<u32>,
    /// Where the metrics come from.
    pub metric_sources: Option<RawSources>,
    /// The rules, first match wins.
    pub events: Option<Vec<RawEvent>>,
}

/// `metric_sources:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSources {
    /// HTTP JSON sources.
    pub third_party: Option<Vec<RawThirdParty>>,
    /// CloudWatch sources.
    pub cloudwatch: Option<Vec<RawCloudWatch>>,
}

/// An HTTP JSON source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThirdParty {
    /// URL (credentials in it are never logged).
    pub url: Option<String>,
    /// GET or POST.
    pub method: Option<String>,
    /// Optional JSON payload for POST.
    pub payload: Option<serde_json_like::Value>,
    /// Fields read from the answer.
    pub statistics: Option<Vec<RawStatistic>>,
}

/// A CloudWatch source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloudWatch {
    /// Namespace.
    pub namespace: Option<String>,
    /// Metric name.
    pub metric_name: Option<String>,
    /// Dimensions.
    pub dimensions: Option<Vec<RawDimension>>,
    /// Period, seconds.
    pub period: Option<u32>,
    /// Statistics read.
    pub statistics: Option<Vec<RawStatistic>>,
}

/// `{name, value}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDimension {
    /// Name.
    pub name: Option<String>,
    /// Value.
    pub value: Option<String>,
}

/// `{name, alias}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatistic {
    /// The field (HTTP: a dot path) or the CloudWatch statistic.
    pub name: Option<String>,
    /// The alias rules use.
    pub alias: Option<String>,
}

/// One rule, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    /// The metric arithmetic.
    pub metric: Option<String>,
    /// Tasks to add (negative: remove).
    pub action: Option<i64>,
    /// Applies when the value is at least this (null: no lower bound).
    pub min: Option<f64>,
    /// Applies when the value is at most this (null: no upper bound).
    pub max: Option<f64>,
}

/// A minimal JSON-like value for `payload` (kept as written, sent as JSON).
pub mod serde_json_like {
    use std::collections::BTreeMap;

    /// A YAML/JSON value.
    #[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
    #[serde(untagged)]
    pub enum Value {
        /// null
        Null,
        /// true/false
        Bool(bool),
        /// a number
        Num(f64),
        /// a string
        Str(String),
        /// a list
        List(Vec<Value>),
        /// a map
        Map(BTreeMap<String, Value>),
    }
}

/// Where a metric comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// HTTP JSON: the dot path `field` of the answer.
    Http {
        /// URL.
        url: String,
        /// POST (with `payload`) rather than GET.
        post: bool,
        /// JSON body for POST.
        payload: Option<serde_json_like::Value>,
        /// Dot path with array indices (`data.items.0.count`).
        field: String,
    },
    /// CloudWatch GetMetricData.
    CloudWatch(crate::backend::MetricQuery),
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The expression as written.
    pub text: String,
    /// Parsed.
    pub expr: Expr,
    /// Tasks to add or remove.
    pub action: i64,
    /// Lower bound (inclusive).
    pub min: Option<f64>,
    /// Upper bound (inclusive).
    pub max: Option<f64>,
}

/// A validated service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceScaling {
    /// Fewest tasks.
    pub min: u32,
    /// Most tasks.
    pub max: u32,
    /// Alias → source.
    pub metrics: BTreeMap<String, Source>,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// The validated autoscale configuration of one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscaleConfig {
    /// The cluster's Auto Scaling group.
    pub group: String,
    /// Spare CPU units.
    pub cpu_buffer: i64,
    /// Spare memory, MiB.
    pub mem_buffer: i64,
    /// The group's min and max, when both are set.
    pub group_limits: Option<(u32, u32)>,
    /// Enabled services.
    pub services: BTreeMap<String, ServiceScaling>,
}

fn need(v: &Option<String>, key: &str) -> Result<String, String> {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(format!("{key}: required")),
    }
}

fn statistics(list: &Option<Vec<RawStatistic>>, key: &str) -> Result<Vec<(String, String)>, String> {
    let list = list.as_ref().filter(|l| !l.is_empty()).ok_or_else(|| format!("{key}.statistics: required"))?;
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            Ok((
                need(&s.name, &format!("{key}.statistics[{i}].name"))?,
                need(&s.alias, &format!("{key}.statistics[{i}].alias"))?,
            ))
        })
        .collect()
}

const STATISTICS: [&str; 5] = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"];

fn service(name: &str, r: &RawService) -> Result<Option<ServiceScaling>, String> {
    let key = format!("autoscale.services.{name}");
    if r.enabled == Some(false) {
        return Ok(None);
    }
    let (min, max) = (r.min.unwrap_or(0), r.max.ok_or_else(|| format!("{key}.max: required"))?);
    if min > max {
        return Err(format!("{key}.min: {min} is above max {max}"));
    }
    let mut metrics = BTreeMap::new();
    let mut add = |alias: String, src: Source, at: String| -> Result<(), String> {
        if !alias.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || ["min", "max", "abs"].contains(&alias.as_str())
        {
            return Err(format!("{at}.alias: `{alias}` must be a name (letters, digits, _; not min, max or abs)"));
        }
        if metrics.insert(alias.clone(), src).is_some() {
            return Err(format!("{at}.alias: `{alias}` is defined twice"));
        }
        Ok(())
    };
    let sources = r.metric_sources.clone().unwrap_or_default();
    for (i, t) in sources.third_party.iter().flatten().enumerate() {
        let at = format!("{key}.metric_sources.third_party[{i}]");
        let url = need(&t.url, &format!("{at}.url"))?;
        crate::url::check(&url).map_err(|e| format!("{at}.url: {e}"))?;
        let post = match t.method.as_deref().unwrap_or("GET").to_ascii_uppercase().as_str() {
            "GET" => false,
            "POST" => true,
            m => return Err(format!("{at}.method: `{m}` is not GET or POST")),
        };
        for (j, (field, alias)) in statistics(&t.statistics, &at)?.into_iter().enumerate() {
            let src = Source::Http { url: url.clone(), post, payload: t.payload.clone(), field };
            add(alias, src, format!("{at}.statistics[{j}]"))?;
        }
    }
    for (i, c) in sources.cloudwatch.iter().flatten().enumerate() {
        let at = format!("{key}.metric_sources.cloudwatch[{i}]");
        let namespace = need(&c.namespace, &format!("{at}.namespace"))?;
        let metric = need(&c.metric_name, &format!("{at}.metric_name"))?;
        let period = c.period.unwrap_or(60);
        if period < 60 || period % 60 != 0 {
            return Err(format!("{at}.period: {period} must be a multiple of 60 seconds"));
        }
        let mut dims = BTreeMap::new();
        for (j, d) in c.dimensions.iter().flatten().enumerate() {
            dims.insert(
                need(&d.name, &format!("{at}.dimensions[{j}].name"))?,
                need(&d.value, &format!("{at}.dimensions[{j}].value"))?,
            );
        }
        for (j, (stat, alias)) in statistics(&c.statistics, &at)?.into_iter().enumerate() {
            if !STATISTICS.contains(&stat.as_str()) {
                return Err(format!(
                    "{at}.statistics[{j}].name: `{stat}` is not a CloudWatch statistic ({})",
                    STATISTICS.join(", ")
                ));
            }
            let q = crate::backend::MetricQuery {
                namespace: namespace.clone(),
                name: metric.clone(),
                dimensions: dims.clone(),
                statistic: stat,
                period_s: period,
            };
            add(alias, Source::CloudWatch(q), format!("{at}.statistics[{j}]"))?;
        }
    }
    let mut rules = Vec::new();
    for (i, e) in r.events.iter().flatten().enumerate() {
        let at = format!("{key}.events[{i}]");
        let text = need(&e.metric, &format!("{at}.metric"))?;
        let expr = Expr::parse(&text).map_err(|x| format!("{at}.metric: {x}"))?;
        for a in expr.aliases() {
            if !metrics.contains_key(&a) {
                let col = text.find(&a).map_or(1, |p| text[..p].chars().count() + 1);
                return Err(format!(
                    "{at}.metric: column {col}: `{a}` is not an alias of this service's metric_sources"
                ));
            }
        }
        let action = e.action.ok_or_else(|| format!("{at}.action: required"))?;
        if action == 0 || action.abs() > 1000 {
            return Err(format!("{at}.action: {action} must be a non-zero number of tasks up to 1000"));
        }
        if let (Some(lo), Some(hi)) = (e.min, e.max)
            && lo > hi
        {
            return Err(format!("{at}.min: {lo} is above max {hi}"));
        }
        rules.push(Rule { text, expr, action, min: e.min, max: e.max });
    }
    Ok(Some(ServiceScaling { min, max, metrics, rules }))
}

impl AutoscaleConfig {
    /// Validates a definition; `None` when `enabled: false`. Errors name the key.
    pub fn from_raw(r: &RawAutoscale) -> Result<Option<AutoscaleConfig>, String> {
        if r.enabled == Some(false) {
            return Ok(None);
        }
        let group = need(&r.autoscale_group, "autoscale.autoscale_group")?;
        let buf = |v: Option<f64>, key: &str| -> Result<i64, String> {
            let v = v.unwrap_or(0.0);
            if !(0.0..=1_048_576.0).contains(&v) {
                return Err(format!("autoscale.{key}: {v} is out of range; allowed 0 to 1048576"));
            }
            Ok(v as i64)
        };
        let group_limits = match (r.min, r.max) {
            (Some(lo), Some(hi)) if lo > hi => return Err(format!("autoscale.min: {lo} is above max {hi}")),
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        };
        let mut services = BTreeMap::new();
        for (name, s) in r.services.iter().flatten() {
            if let Some(v) = service(name, s)? {
                services.insert(name.clone(), v);
            }
        }
        Ok(Some(AutoscaleConfig {
            group,
            cpu_buffer: buf(r.cpu_buffer, "cpu_buffer")?,
            mem_buffer: buf(r.mem_buffer, "mem_buffer")?,
            group_limits,
            services,
        }))
    }
}

/// The URL fit for a log line ([`crate::url::redact`]): credentials and query values removed.
pub fn redact_url(url: &str) -> String {
    crate::url::redact(url)
}

/// Why an HTTP metric answer gave no number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Longer than [`crate::backend::HTTP_BODY_LIMIT`].
    #[error("the answer is {0} bytes, over the 1 MiB limit")]
    TooLarge(usize),
    /// Not JSON (or nested deeper than the parser's limit).
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    /// The path leads nowhere.
    #[error("`{0}` is not in the answer")]
    Missing(String),
    /// The path leads to something that is not a finite number.
    #[error("`{0}` is {1}, not a number")]
    NotANumber(String, &'static str),
}

/// The number at dot path `path` (`data.items.0.count`: object keys and array indices) of a
/// JSON answer. Only a JSON number (finite) counts: a string, a boolean or null is not read as
/// one, and nothing in the answer is ever evaluated.
pub fn extract_field(body: &[u8], path: &str) -> Result<f64, FieldError> {
    if body.len() > crate::backend::HTTP_BODY_LIMIT {
        return Err(FieldError::TooLarge(body.len()));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        let mut m = e.to_string();
        m.truncate(120);
        FieldError::NotJson(m)
    })?;
    let mut at = &v;
    for part in path.split('.') {
        let next = match at {
            serde_json::Value::Object(m) => m.get(part),
            serde_json::Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        at = next.ok_or_else(|| FieldError::Missing(path.to_string()))?;
    }
    let kind = match at {
        serde_json::Value::Number(n) => match n.as_f64().filter(|x| x.is_finite()) {
            Some(x) => return Ok(x),
            None => "out of range",
        },
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    };
    Err(FieldError::NotANumber(path.to_string(), kind))
}

/// Configuration text after `%(VAR)` substitution, and what was substituted (to keep the
/// values out of error messages: [`Substituted::scrub`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Substituted {
    /// The text with every reference replaced.
    pub text: String,
    /// (name, value), raw and as put into the text (percent-encoded in a URL), longest first.
    pub values: Vec<(String, String)>,
}

impl Substituted {
    /// `message` with every substituted value replaced by its `%(NAME)`: a value of four or
    /// more characters wherever it appears, a shorter one where it stands quoted (`"v"`,
    /// `` `v` ``, `'v'`, as parsers quote what they met). Nothing from the environment reaches
    /// an error.
    pub fn scrub(&self, message: &str) -> String {
        let mut m = message.to_string();
        for (name, v) in &self.values {
            if v.is_empty() {
                continue;
            }
            let r = format!("%({name})");
            if v.chars().count() >= 4 {
                m = m.replace(v.as_str(), &r);
            } else {
                for (o, c) in [('"', '"'), ('`', '`'), ('\'', '\'')] {
                    m = m.replace(&format!("{o}{v}{c}"), &format!("{o}{r}{c}"));
                }
            }
        }
        m
    }
}

/// Replaces every `%(NAME)` (letters, digits, `_`) with the variable's value; a missing
/// variable is an error giving its name and 1-based line and column. A value going into a
/// URL's user information or a query value is percent-encoded ([`crate::url::url_part`]), so
/// a password may hold any character (`/`, `#`, `@`, `:` included) and still reach the
/// endpoint intact; elsewhere it goes in as is.
pub fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Substituted, (String, usize, usize)> {
    let mut out = String::with_capacity(text.len());
    let mut values = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("%(") {
        let after = &rest[i + 2..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with(')') {
            out.push_str(&rest[..i + 2]);
            rest = after;
            continue;
        }
        let name = &after[..name_len];
        let at = text.len() - rest.len() + i;
        out.push_str(&rest[..i]);
        match lookup(name) {
            Some(v) => {
                let put = match crate::url::url_part(&text[..at], &after[name_len + 1..]) {
                    crate::url::UrlPart::Other => v.clone(),
                    _ => crate::url::encode_component(&v),
                };
                out.push_str(&put);
                if put != v {
                    values.push((name.to_string(), put));
                }
                values.push((name.to_string(), v));
            }
            None => {
                let line = text[..at].matches('\n').count() + 1;
                let col = text[..at].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                return Err((name.to_string(), line, col));
            }
        }
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    values.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    values.dedup();
    Ok(Substituted { text: out, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_numbers_at_a_dot_path() {
        let b = br#"{"messages_ready": 7, "data": {"items": [{"n": 1.5}, {"n": "2"}]}, "z": null}"#;
        assert_eq!(extract_field(b, "messages_ready"), Ok(7.0));
        assert_eq!(extract_field(b, "data.items.0.n"), Ok(1.5));
        assert_eq!(
            extract_field(b, "data.items.1.n"),
            Err(FieldError::NotANumber("data.items.1.n".into(), "a string"))
        );
        assert_eq!(extract_field(b, "data.items.2.n"), Err(FieldError::Missing("data.items.2.n".into())));
        assert_eq!(extract_field(b, "z"), Err(FieldError::NotANumber("z".into(), "null")));
        assert!(matches!(extract_field(b"<html>", "a"), Err(FieldError::NotJson(_))));
        assert!(matches!(extract_field(b"{\"a\": __import__('os')}", "a"), Err(FieldError::NotJson(_))));
        let deep = "[".repeat(100_000);
        assert!(matches!(extract_field(deep.as_bytes(), "0"), Err(FieldError::NotJson(_))));
        let huge = vec![b' '; crate::backend::HTTP_BODY_LIMIT + 1];
        assert_eq!(extract_field(&huge, "a"), Err(FieldError::TooLarge(huge.len())));
    }

    #[test]
    fn substitutes_variables_and_names_the_missing_one() {
        let env = |k: &str| (k == "USER2" || k == "PW").then(|| format!("<{k}>"));
        assert_eq!(
            substitute("url: https://%(USER2):%(PW)@h/x", &env).unwrap().text,
            "url: https://%3CUSER2%3E:%3CPW%3E@h/x"
        );
        assert_eq!(substitute("a: %(PW)", &env).unwrap().text, "a: <PW>");
        assert_eq!(
            substitute("u: https://h/q?t=%(PW)&x=%(PW)", &env).unwrap().text,
            "u: https://h/q?t=%3CPW%3E&x=%3CPW%3E"
        );
        assert_eq!(substitute("a: 100%(not a var", &env).unwrap().text, "a: 100%(not a var");
        assert_eq!(substitute("a: 1\nb: %(NOPE)\n", &env).unwrap_err(), ("NOPE".to_string(), 2, 4));
    }

    #[test]
    fn scrubs_substituted_values_from_messages() {
        let env = |k: &str| Some(if k == "LONG" { "hunter2".to_string() } else { "ab".to_string() });
        let s = substitute("a: %(LONG)\nb: %(SHORT)\n", &env).unwrap();
        assert_eq!(
            s.scrub("invalid type: string \"hunter2\", expected u32; unknown `ab`; about ab"),
            "invalid type: string \"%(LONG)\", expected u32; unknown `%(SHORT)`; about ab"
        );
    }
}
