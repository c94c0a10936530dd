//! Planning on generated snapshots: 500, 2,000 and 5,000 instances with 20 tasks each
//! (5,000 × 20 = 100,000 tasks, ECS's largest cluster), 100 services, a tenth of the
//! instances newly joined and empty. Target (issue [13]): under 100 ms at 5,000, growing no
//! faster than n log n; measured figures in docs/performance.md.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use ballast_core::config::RebalanceConfig;
use ballast_core::model::*;
use ballast_core::planner::plan;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;

fn snapshot(instances: usize, services: usize) -> Snapshot {
    let azs = ["us-east-1a", "us-east-1b", "us-east-1c"];
    let mut snap = Snapshot { cluster: "bench".into(), ..Default::default() };
    let old = instances - instances / 10;
    for i in 0..instances {
        let mut attributes = BTreeMap::new();
        attributes.insert(attr::AZ.to_string(), azs[i % 3].to_string());
        attributes.insert(attr::INSTANCE_TYPE.to_string(), "m5.4xlarge".to_string());
        snap.instances.push(ContainerInstance {
            arn: format!("arn:aws:ecs:us-east-1:1:container-instance/bench/{i:08}"),
            ec2_instance_id: format!("i-{i:08}"),
            status: InstanceStatus::Active,
            agent_connected: true,
            registered: Resources { cpu: 16384, memory: 63000 },
            remaining: Resources { cpu: 16384, memory: 63000 },
            ports_in_use: vec![],
            attributes,
            registered_at: ballast_core::duration::Millis(0),
            running_tasks: 0,
            pending_tasks: 0,
            extra: Default::default(),
        });
    }
    let per_service = instances * 20 / services;
    let strategies = [
        vec![Strategy::Spread("attribute:ecs.availability-zone".into()), Strategy::Spread("instanceId".into())],
        vec![Strategy::Spread("instanceId".into())],
        vec![Strategy::Binpack(BinpackField::Memory)],
        vec![],
    ];
    let mut k = 0;
    for s in 0..services {
        let name = format!("svc{s:03}");
        snap.services.push(Service {
            name: name.clone(),
            arn: format!("arn:aws:ecs:us-east-1:1:service/bench/{name}"),
            daemon: false,
            desired: per_service as u32,
            running: per_service as u32,
            pending: 0,
            strategy: strategies[s % strategies.len()].clone(),
            constraints: vec![],
            min_healthy_percent: 100,
            max_percent: 200,
            task_definition: TaskDefinition {
                arn: format!("{name}:1"),
                cpu: 128,
                memory: 256,
                host_ports: vec![],
                needs: Default::default(),
            },
            deployments: vec![],
            tags: BTreeMap::new(),
            scaled_by: vec![],
        });
        for t in 0..per_service {
            let i = (t * 7 + s) % old;
            let inst = &mut snap.instances[i];
            inst.remaining.cpu -= 128;
            inst.remaining.memory -= 256;
            inst.running_tasks += 1;
            k += 1;
            snap.tasks.push(Task {
                arn: format!("arn:aws:ecs:us-east-1:1:task/bench/{k:032x}"),
                group: format!("service:{name}"),
                started_by: None,
                service: Some(name.clone()),
                instance_arn: inst.arn.clone(),
                last_status: TaskStatus::Running,
                desired_status: TaskStatus::Running,
                cpu: 128,
                memory: 256,
                host_ports: vec![],
                healthy: true,
                protected: false,
                utilization: Some((0.5, 0.5)),
            });
        }
    }
    snap
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    let cfg = RebalanceConfig::defaults();
    for n in [500usize, 2000, 5000] {
        let snap = snapshot(n, 100);
        g.bench_with_input(BenchmarkId::new("100_services", n), &snap, |b, snap| {
            b.iter(|| plan(snap, &cfg).restarts())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
