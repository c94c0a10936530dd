//! AWS's wire protocols, both ways: awsJson1_1 (ECS, Application Auto Scaling), awsJson1_0
//! and rpcv2Cbor (CloudWatch, as current SDKs and boto3 speak it), awsQuery (Auto Scaling,
//! and CloudWatch as older SDKs speak it). Requests become one JSON value; answers are
//! rendered from one, where a timestamp is `{"$ts": epoch seconds}`.

use ballast_sim::api::{ApiError, iso8601};
use serde_json::{Map, Value};

/// The protocol a request came in (and its answer goes out) in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `application/x-amz-json-1.1` or `-1.0` with `X-Amz-Target`.
    Json,
    /// `application/x-www-form-urlencoded` with `Action=`; the XML namespace of the answer.
    Query(&'static str),
    /// `smithy-protocol: rpc-v2-cbor`.
    Cbor,
}

// --- JSON ------------------------------------------------------------------------------

/// `{"$ts": s}` → `s` everywhere (JSON protocols carry epoch seconds as numbers).
pub fn plain_timestamps(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(t) = m.get("$ts").cloned()
                && m.len() == 1
            {
                *v = t;
                return;
            }
            m.values_mut().for_each(plain_timestamps);
        }
        Value::Array(a) => a.iter_mut().for_each(plain_timestamps),
        _ => {}
    }
}

// --- awsQuery ----------------------------------------------------------------------------

fn unhex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decoding of a form value (`+` is a space).
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (unhex(b[i + 1]), unhex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn insert(slot: &mut Value, parts: &[&str], val: String) {
    let Some((&first, rest)) = parts.split_first() else {
        *slot = Value::String(val);
        return;
    };
    let index = if first == "member" { rest.first().and_then(|i| i.parse::<usize>().ok()) } else { None };
    match index {
        Some(i) if i >= 1 => {
            if !slot.is_array() {
                *slot = Value::Array(vec![]);
            }
            let a = slot.as_array_mut().expect("an array");
            if a.len() < i {
                a.resize(i, Value::Null);
            }
            insert(&mut a[i - 1], &rest[1..], val);
        }
        _ => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let m = slot.as_object_mut().expect("an object");
            insert(m.entry(first.to_string()).or_insert(Value::Null), rest, val);
        }
    }
}

/// A form body as (Action, arguments): `A.member.1.B=x` → `{"A": [{"B": "x"}]}`.
pub fn parse_query(body: &str) -> (Option<String>, Value) {
    let mut root = Value::Object(Map::new());
    let mut action = None;
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (url_decode(k), url_decode(v));
        match k.as_str() {
            "Action" => action = Some(v),
            "Version" => {}
            _ => {
                let parts: Vec<&str> = k.split('.').collect();
                insert(&mut root, &parts, v);
            }
        }
    }
    (action, root)
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

fn xml(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("$ts") => {
            out.push_str(&iso8601(m["$ts"].as_f64().unwrap_or(0.0)));
        }
        Value::Object(m) => {
            for (k, x) in m {
                if x.is_null() {
                    continue;
                }
                out.push('<');
                out.push_str(k);
                out.push('>');
                xml(x, out);
                out.push_str("</");
                out.push_str(k);
                out.push('>');
            }
        }
        Value::Array(a) => {
            for x in a {
                out.push_str("<member>");
                xml(x, out);
                out.push_str("</member>");
            }
        }
        Value::String(s) => escape(s, out),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => {}
    }
}

/// An awsQuery answer.
pub fn query_answer(ns: &str, op: &str, result: &Value, request_id: &str) -> String {
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{ns}\">");
    if result.as_object().is_some_and(|m| !m.is_empty()) {
        out.push_str(&format!("<{op}Result>"));
        xml(result, &mut out);
        out.push_str(&format!("</{op}Result>"));
    }
    out.push_str(&format!("<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>"));
    out
}

/// An awsQuery error.
pub fn query_error(ns: &str, e: &ApiError, request_id: &str) -> String {
    let mut msg = String::new();
    escape(&e.message, &mut msg);
    let kind = if e.status >= 500 { "Receiver" } else { "Sender" };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{ns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{msg}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        e.code
    )
}

// --- CBOR --------------------------------------------------------------------------------

fn from_cbor(v: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => {
            let n: i128 = i.into();
            serde_json::Number::from_i128(n).map_or(Value::Null, Value::Number)
        }
        C::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        C::Text(s) => Value::String(s),
        C::Bytes(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        C::Array(a) => Value::Array(a.into_iter().map(from_cbor).collect()),
        C::Map(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    C::Text(k) => Some((k, from_cbor(v))),
                    _ => None,
                })
                .collect(),
        ),
        // Tag 1 (epoch seconds) is a timestamp; other tags carry their value.
        C::Tag(_, inner) => from_cbor(*inner),
        _ => Value::Null,
    }
}

fn to_cbor(v: &Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        Value::Null => C::Null,
        Value::Bool(b) => C::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => C::Integer(i.into()),
            (_, Some(u)) => C::Integer(u.into()),
            _ => C::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => C::Text(s.clone()),
        Value::Array(a) => C::Array(a.iter().map(to_cbor).collect()),
        Value::Object(m) if m.len() == 1 && m.contains_key("$ts") => {
            C::Tag(1, Box::new(C::Float(m["$ts"].as_f64().unwrap_or(0.0))))
        }
        Value::Object(m) => {
            C::Map(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (C::Text(k.clone()), to_cbor(v))).collect())
        }
    }
}

/// A CBOR request body (empty = no arguments).
pub fn parse_cbor(body: &[u8]) -> Result<Value, String> {
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    ciborium::from_reader::<ciborium::Value, _>(body).map(from_cbor).map_err(|e| format!("not CBOR: {e}"))
}

/// A CBOR answer body.
pub fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&to_cbor(v), &mut out).expect("CBOR into memory");
    out
}

/// CloudWatch's error shape name for an awsQuery error code (JSON and CBOR protocols name
/// the shape; awsQuery-compatible clients read the code from `x-amzn-query-error`).
pub fn cloudwatch_shape(code: &str) -> String {
    match code {
        "InvalidParameterValue" => "InvalidParameterValueException".into(),
        "MissingParameter" => "MissingRequiredParameterException".into(),
        "InvalidParameterCombination" => "InvalidParameterCombinationException".into(),
        "InternalServiceError" => "InternalServiceFault".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_bodies_nest_members() {
        let (a, v) = parse_query(
            "Action=GetMetricData&Version=2010-08-01&MetricDataQueries.member.1.Id=m0&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=ClusterName&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=a%2Fb+c&StartTime=2026-12-03T14%3A00%3A00Z",
        );
        assert_eq!(a.as_deref(), Some("GetMetricData"));
        assert_eq!(v["MetricDataQueries"][0]["Id"], "m0");
        assert_eq!(v["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"], "a/b c");
        assert_eq!(v["StartTime"], "2026-12-03T14:00:00Z");
    }

    #[test]
    fn xml_renders_lists_as_members_and_timestamps_as_iso() {
        let v = json!({"Groups": [{"Name": "a<b", "T": {"$ts": 0.0}}], "Empty": null});
        let s = query_answer("ns", "Op", &v, "rid");
        assert!(s.contains("<OpResult><Groups><member><Name>a&lt;b</Name><T>1970-01-01T00:00:00.000Z</T></member></Groups></OpResult>"), "{s}");
        assert!(!s.contains("Empty"));
        assert!(query_answer("ns", "Op", &json!({}), "r").contains("<OpResponse xmlns=\"ns\"><ResponseMetadata>"));
    }

    #[test]
    fn cbor_round_trips_with_timestamps() {
        let v = json!({"A": [1, -2, 2.5, "x", true], "T": {"$ts": 1.5}});
        let back = parse_cbor(&cbor(&v)).unwrap();
        assert_eq!(back, json!({"A": [1, -2, 2.5, "x", true], "T": 1.5}));
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(url_decode("%E2%9C%93"), "✓");
    }
}
