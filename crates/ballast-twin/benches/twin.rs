//! The twin's throughput over real HTTP (issue [11]: ≥ 2,000 describe requests a second on a
//! 1,000-instance twin): a 1,000-instance, 20,000-task world served on loopback, one client
//! on one keep-alive connection sending the describe calls a reader makes — 100 container
//! instances, 10 services, 100 tasks per call — as the SDKs frame them (awsJson1_1 with a
//! SigV4-shaped Authorization header). docs/performance.md has the figures.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use ballast_sim::api::World;
use ballast_sim::{Scenario, Sim};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    host: String,
}

impl Client {
    fn call(&mut self, op: &str, body: &Value) -> Value {
        serde_json::from_slice(&self.raw(op, body)).unwrap()
    }

    /// The answer's body, unparsed (the client's parsing is not the twin's cost).
    fn raw(&mut self, op: &str, body: &Value) -> Vec<u8> {
        let b = serde_json::to_vec(body).unwrap();
        write!(
            self.w,
            "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.{op}\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20261203/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n",
            self.host,
            b.len()
        )
        .unwrap();
        self.w.write_all(&b).unwrap();
        let mut len = 0;
        let mut line = String::new();
        loop {
            line.clear();
            self.r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut out = vec![0; len];
        self.r.read_exact(&mut out).unwrap();
        out
    }
}

fn bench(c: &mut Criterion) {
    let mut sc = Scenario::parse(&ballast_sim::generate::large(1000, 20_000, 30), "large-1000").expect("a scenario");
    // The twin's own speed: with the scenario's throttling on it answers ThrottlingException
    // at ECS's published rates (tens of requests a second), as AWS does.
    sc.timing.throttling = false;
    let world = Arc::new(Mutex::new(World::new(Sim::new(&sc), ballast_twin::wall_ms(), 1.0)));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(ballast_twin::serve(listener, world));
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut cl = Client { r: BufReader::new(s.try_clone().unwrap()), w: s, host: addr.to_string() };
    let cluster = sc.cluster.clone();
    let instances: Vec<Value> =
        cl.call("ListContainerInstances", &json!({"cluster": cluster}))["containerInstanceArns"]
            .as_array()
            .unwrap()
            .clone();
    let services: Vec<Value> = cl.call("ListServices", &json!({"cluster": cluster, "maxResults": 10}))["serviceArns"]
        .as_array()
        .unwrap()
        .clone();
    let tasks: Vec<Value> = cl.call("ListTasks", &json!({"cluster": cluster}))["taskArns"].as_array().unwrap().clone();
    assert_eq!((instances.len(), tasks.len()), (100, 100), "full pages");
    let mut g = c.benchmark_group("twin_1000_instances");
    g.throughput(Throughput::Elements(1));
    g.bench_function("describe_container_instances_100", |b| {
        let req = json!({"cluster": cluster, "containerInstances": instances, "include": ["TAGS"]});
        assert_eq!(cl.call("DescribeContainerInstances", &req)["containerInstances"].as_array().unwrap().len(), 100);
        b.iter(|| assert!(cl.raw("DescribeContainerInstances", &req).starts_with(b"{\"containerInstances\"")))
    });
    g.bench_function("describe_services_10", |b| {
        let req = json!({"cluster": cluster, "services": services, "include": ["TAGS"]});
        assert_eq!(cl.call("DescribeServices", &req)["services"].as_array().unwrap().len(), services.len());
        b.iter(|| assert!(cl.raw("DescribeServices", &req).ends_with(b"}")))
    });
    g.bench_function("describe_tasks_100", |b| {
        let req = json!({"cluster": cluster, "tasks": tasks});
        assert_eq!(cl.call("DescribeTasks", &req)["tasks"].as_array().unwrap().len(), 100);
        b.iter(|| assert!(cl.raw("DescribeTasks", &req).ends_with(b"}")))
    });
    g.bench_function("list_tasks_page", |b| {
        let req = json!({"cluster": cluster, "maxResults": 100});
        assert_eq!(cl.call("ListTasks", &req)["taskArns"].as_array().unwrap().len(), 100);
        b.iter(|| assert!(cl.raw("ListTasks", &req).ends_with(b"}")))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
