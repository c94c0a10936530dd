//! ballast-twin: one scenario's simulated ECS world served over AWS's wire protocols, so that
//! real clients (the AWS SDKs, boto3, the AWS CLI, ballast itself) meet a cluster that
//! schedules: services start and replace tasks, DRAINING moves them, deployments roll.
//!
//! [`answer`] turns one HTTP request into one reply against a [`World`] (synchronous, so the
//! benchmark and tests call it directly); [`serve`] is the HTTP/1.1 server around it. What a
//! call does is `ballast_sim::api`'s; this crate only speaks the protocols (docs/twin.md):
//!
//! | service | protocol | how a request is recognised |
//! |---|---|---|
//! | ECS | awsJson1_1 | `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Op>` |
//! | Application Auto Scaling | awsJson1_1 | `X-Amz-Target: AnyScaleFrontendService.<Op>` |
//! | CloudWatch | rpcv2Cbor | `POST /service/GraniteServiceVersion20100801/operation/<Op>` |
//! | CloudWatch | awsJson1_0 | `X-Amz-Target: GraniteServiceVersion20100801.<Op>` |
//! | Auto Scaling, CloudWatch | awsQuery | a form body with `Action=<Op>`; the service from the SigV4 credential scope |
//!
//! Any SigV4 signature is accepted and none is checked. `/_twin/…` are the twin's own routes
//! (state, report, advancing the clock), for test harnesses.

pub mod protocol;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use ballast_core::duration::Millis;
use ballast_sim::api::{Answer, ApiError, Service, World};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use serde_json::{Value, json};

use crate::protocol::Protocol;

/// The largest request body accepted (AWS's own limits are far below).
pub const BODY_LIMIT: usize = 16 << 20;

const ECS_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
const APPAS_PREFIX: &str = "AnyScaleFrontendService";
const CW_PREFIX: &str = "GraniteServiceVersion20100801";
const AS_NS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
const CW_NS: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/// One HTTP request, as [`answer`] needs it.
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The query string (after `?`), or empty.
    pub query: &'a str,
    /// Header lookup by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The body.
    pub body: &'a [u8],
}

/// One HTTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers besides Content-Length.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply { status, headers: vec![("content-type", content_type.to_string())], body }
    }
}

const AUTOSCALING_OPS: &[&str] = &[
    "DescribeAutoScalingGroups",
    "DescribeAutoScalingInstances",
    "DescribeScalingActivities",
    "SetDesiredCapacity",
    "UpdateAutoScalingGroup",
    "TerminateInstanceInAutoScalingGroup",
];

/// The service of a query request: the SigV4 credential scope's, or else the action's.
fn query_service(auth: Option<&str>, action: &str) -> Service {
    let scope = auth
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split([',', ' ']).next())
        .and_then(|c| c.split('/').nth(3).map(str::to_string));
    match scope.as_deref() {
        Some("autoscaling") => Service::AutoScaling,
        Some("monitoring") => Service::CloudWatch,
        _ if AUTOSCALING_OPS.contains(&action) => Service::AutoScaling,
        _ => Service::CloudWatch,
    }
}

/// Answers one request at wall-clock instant `wall_ms` (epoch ms): the world first runs up to
/// it.
pub fn answer(world: &mut World, req: &Request, wall_ms: u64) -> Reply {
    world.advance_wall(wall_ms);
    if let Some(route) = req.path.strip_prefix("/_twin/") {
        return admin(world, req, route, wall_ms);
    }
    let rid = world.request_id();
    let header = |k: &str| (req.header)(k);
    // What is asked, in which protocol.
    let (service, op, proto, args) = if let Some(target) = header("x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or((target.as_str(), ""));
        let service = match prefix {
            ECS_PREFIX => Service::Ecs,
            APPAS_PREFIX => Service::AppAutoScaling,
            CW_PREFIX => Service::CloudWatch,
            _ => {
                let e = ApiError::client("UnknownOperationException", format!("the twin serves no {prefix}"));
                return json_error(&e, &rid, None);
            }
        };
        let args = if req.body.is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_slice::<Value>(req.body).map_err(|e| e.to_string())
        };
        match args {
            Ok(v) if v.is_object() => (service, op.to_string(), Protocol::Json, v),
            Ok(_) | Err(_) => {
                let e = ApiError::client("SerializationException", "the request body is not a JSON object");
                return json_error(&e, &rid, None);
            }
        }
    } else if let Some(op) = req.path.strip_prefix(&format!("/service/{CW_PREFIX}/operation/")) {
        match protocol::parse_cbor(req.body) {
            Ok(v) => (Service::CloudWatch, op.to_string(), Protocol::Cbor, v),
            Err(m) => return cbor_error(&ApiError::client("SerializationException", m), &rid),
        }
    } else if req.method == "POST" || !req.query.is_empty() {
        let text =
            if req.method == "POST" { String::from_utf8_lossy(req.body).into_owned() } else { req.query.to_string() };
        let (action, args) = protocol::parse_query(&text);
        let Some(action) = action else {
            return Reply::new(
                400,
                "text/plain",
                b"ballast twin: not an AWS request (no X-Amz-Target, no Action=); see docs/twin.md\n".to_vec(),
            );
        };
        let service = query_service(header("authorization").as_deref(), &action);
        let ns = if service == Service::AutoScaling { AS_NS } else { CW_NS };
        (service, action, Protocol::Query(ns), args)
    } else {
        let s = world.sim.sc.name.clone();
        let text = format!(
            "ballast twin: scenario {s}, cluster {}, region {}, simulated time {:.1}s, {}x the wall clock\n",
            world.sim.sc.cluster,
            world.sim.region,
            world.sim.now.as_secs_f64(),
            world.speed
        );
        return Reply::new(200, "text/plain", text.into_bytes());
    };
    tracing::debug!(?service, op = %op, "request");
    let result = world.call(service, &op, &args);
    let mut reply = match (proto, result) {
        (Protocol::Json, Ok(answer)) => {
            let ct = if service == Service::CloudWatch {
                "application/x-amz-json-1.0"
            } else {
                "application/x-amz-json-1.1"
            };
            let body = match answer {
                Answer::Raw(s) => s.into_bytes(),
                Answer::Json(mut v) => {
                    protocol::plain_timestamps(&mut v);
                    serde_json::to_vec(&v).expect("JSON")
                }
            };
            Reply::new(200, ct, body)
        }
        (Protocol::Json, Err(e)) => json_error(&e, &rid, (service == Service::CloudWatch).then_some(())),
        (Protocol::Cbor, Ok(v)) => {
            let mut r = Reply::new(200, "application/cbor", protocol::cbor(&v.into_value()));
            r.headers.push(("smithy-protocol", "rpc-v2-cbor".into()));
            r
        }
        (Protocol::Cbor, Err(e)) => cbor_error(&e, &rid),
        (Protocol::Query(ns), Ok(v)) => {
            Reply::new(200, "text/xml", protocol::query_answer(ns, &op, &v.into_value(), &rid).into_bytes())
        }
        (Protocol::Query(ns), Err(e)) => {
            Reply::new(e.status, "text/xml", protocol::query_error(ns, &e, &rid).into_bytes())
        }
    };
    reply.headers.push(("x-amzn-requestid", rid));
    reply
}

fn json_error(e: &ApiError, rid: &str, cloudwatch: Option<()>) -> Reply {
    let shape = if cloudwatch.is_some() { protocol::cloudwatch_shape(&e.code) } else { e.code.clone() };
    let body = json!({"__type": shape, "message": e.message});
    let mut r = Reply::new(e.status, "application/x-amz-json-1.1", serde_json::to_vec(&body).expect("JSON"));
    r.headers.push(("x-amzn-errortype", shape));
    if cloudwatch.is_some() {
        r.headers.push((
            "x-amzn-query-error",
            format!("{};{}", e.code, if e.status >= 500 { "Receiver" } else { "Sender" }),
        ));
    }
    r.headers.push(("x-amzn-requestid", rid.to_string()));
    r
}

fn cbor_error(e: &ApiError, rid: &str) -> Reply {
    let shape = protocol::cloudwatch_shape(&e.code);
    let body = json!({"__type": format!("com.amazonaws.cloudwatch#{shape}"), "message": e.message});
    let mut r = Reply::new(e.status, "application/cbor", protocol::cbor(&body));
    r.headers.push(("smithy-protocol", "rpc-v2-cbor".into()));
    r.headers
        .push(("x-amzn-query-error", format!("{};{}", e.code, if e.status >= 500 { "Receiver" } else { "Sender" })));
    r.headers.push(("x-amzn-requestid", rid.to_string()));
    r
}

fn query_arg<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The twin's own routes.
fn admin(world: &mut World, req: &Request, route: &str, wall_ms: u64) -> Reply {
    let ok = |v: Value| Reply::new(200, "application/json", serde_json::to_vec_pretty(&v).expect("JSON"));
    match (req.method, route) {
        ("GET", "state") => ok(state(world)),
        ("GET", "report") => {
            let mut r = serde_json::to_value(world.report("twin")).expect("a report");
            r["simulated_s"] = json!(world.sim.now.as_secs_f64());
            ok(r)
        }
        ("GET", "events") => ok(json!(
            world
                .events
                .iter()
                .map(|(t, arn, status)| json!({"at_s": t.as_secs_f64(), "container_instance_arn": arn, "status": status}))
                .collect::<Vec<_>>()
        )),
        ("POST", "advance") => {
            let num = |k: &str| query_arg(req.query, k).and_then(|s| s.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
            let to = match (num("seconds"), num("to")) {
                (Some(secs), None) => world.sim.now + Millis((secs * 1000.0) as u64),
                (None, Some(at)) => Millis((at * 1000.0) as u64).max(world.sim.now),
                _ => {
                    return Reply::new(
                        400,
                        "text/plain",
                        b"advance needs ?seconds=N (by N simulated seconds) or ?to=T (to simulated second T)\n".to_vec(),
                    );
                }
            };
            world.advance_sim(to);
            // The clock keeps running from the new instant.
            world.epoch0_ms = wall_ms.saturating_sub((world.sim.now.0 as f64 / world.speed) as u64);
            ok(json!({"simulated_s": world.sim.now.as_secs_f64()}))
        }
        _ => Reply::new(404, "text/plain", b"the twin's routes: GET /_twin/state, /_twin/report, /_twin/events; POST /_twin/advance?seconds=N or ?to=T\n".to_vec()),
    }
}

/// Where every task is: what a test compares with an in-process run.
pub fn state(world: &World) -> Value {
    let sim = &world.sim;
    let snap = sim.snapshot();
    let instances: Vec<Value> = snap
        .instances
        .iter()
        .map(|i| {
            let tasks: Vec<&str> = snap
                .tasks
                .iter()
                .filter(|t| t.instance_arn == i.arn && t.is_live())
                .map(|t| t.service.as_deref().unwrap_or(t.group.as_str()))
                .collect();
            json!({
                "arn": i.arn,
                "ec2_instance_id": i.ec2_instance_id,
                "status": if i.status == ballast_core::model::InstanceStatus::Draining { "DRAINING" } else { "ACTIVE" },
                "az": i.attributes.get("ecs.availability-zone"),
                "tasks": tasks,
            })
        })
        .collect();
    let services: Vec<Value> = snap
        .services
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "desired": s.desired,
                "running": s.running,
                "pending": s.pending,
                "task_definition": s.task_definition.arn,
                "tags": s.tags,
            })
        })
        .collect();
    let groups: Vec<Value> = (0..sim.sc.groups.len())
        .map(|g| {
            let spec = &sim.sc.groups[g];
            json!({
                "name": spec.name,
                "desired": sim.groups[g].desired,
                "min": spec.min,
                "max": spec.max,
                "instances": sim.group_members(g).len(),
            })
        })
        .collect();
    json!({
        "scenario": sim.sc.name,
        "cluster": sim.sc.cluster,
        "region": sim.region,
        "simulated_s": sim.now.as_secs_f64(),
        "speed": world.speed,
        "instances": instances,
        "services": services,
        "groups": groups,
        "cluster_tags": sim.cluster_tags,
        "api_calls": sim.acct.api,
    })
}

/// Milliseconds since the epoch, now.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn handle(
    world: Arc<Mutex<World>>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let too_big = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > BODY_LIMIT);
    let reply = if too_big {
        Reply::new(413, "text/plain", b"request body too large\n".to_vec())
    } else {
        match body.collect().await {
            Ok(b) => {
                let bytes = b.to_bytes();
                let header = |k: &str| parts.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
                let r = Request {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    query: parts.uri.query().unwrap_or(""),
                    header: &header,
                    body: &bytes,
                };
                let mut w = world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                answer(&mut w, &r, wall_ms())
            }
            Err(e) => Reply::new(400, "text/plain", format!("could not read the body: {e}\n").into_bytes()),
        }
    };
    let mut b = hyper::Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        b = b.header(*k, v);
    }
    Ok(b.body(Full::new(Bytes::from(reply.body))).expect("a valid response"))
}

/// Serves `world` on `listener` until the process ends (HTTP/1.1, keep-alive).
pub async fn serve(listener: tokio::net::TcpListener, world: Arc<Mutex<World>>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let w = world.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(w.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}
