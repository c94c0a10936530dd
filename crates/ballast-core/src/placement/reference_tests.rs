//! A slow oracle for the placement model. The planner and the simulator share
//! [`ClusterState`], so the simulator cannot catch its mistakes; this placer is written
//! straight from `reference/ecs-behaviour.md` §1 (it reads the snapshot, not `ClusterState`)
//! and the two are compared over generated clusters. Where they differ, the documented
//! behaviour decides and the fix goes in `placement.rs`.
//!
//! The pipeline, as §1.1 quotes it: (1) instances that satisfy the CPU, memory and port
//! requirements, ACTIVE with a connected agent; (2) those that satisfy the constraints
//! (`distinctInstance`: no task of the group there; `memberOf`: the expression holds); (3)
//! the strategies in order, each keeping the candidates that score best (§9.1, the chosen
//! reading of "in the order that you want them performed"): `spread(f)` the fewest tasks of
//! the group on instances with the candidate's value of `f` (§9.2: tasks with desiredStatus
//! RUNNING), `binpack(r)` the least remaining `r`, `random` keeps all; a service without a
//! strategy spreads over Availability Zones, then instances (§1.4). Scale-in (§1.5): the
//! unprotected tasks whose removal leaves the best spread (most tasks on their value), or
//! under binpack the instance with the most left; without a strategy, the AZ then the
//! instance with the most tasks of the service.

use std::collections::BTreeSet;

use proptest::prelude::{ProptestConfig, any, prop_assert_eq, proptest};
use proptest::strategy::Strategy as _;

use super::*;
use crate::cql::Subject;
use crate::model::{ContainerInstance, InstanceStatus, Service, Task, TaskDefinition, TaskStatus, attr};

fn live(snap: &Snapshot) -> impl Iterator<Item = &Task> {
    snap.tasks.iter().filter(|t| t.desired_status == TaskStatus::Running)
}

struct Inst<'a> {
    snap: &'a Snapshot,
    i: &'a ContainerInstance,
}

impl Subject for Inst<'_> {
    fn values(&self, subject: &str) -> Vec<String> {
        match subject {
            "ec2InstanceId" => vec![self.i.ec2_instance_id.clone()],
            "agentConnected" => vec![self.i.agent_connected.to_string()],
            "runningTasksCount" => vec![live(self.snap).filter(|t| t.instance_arn == self.i.arn).count().to_string()],
            "task:group" => {
                let g: BTreeSet<String> =
                    live(self.snap).filter(|t| t.instance_arn == self.i.arn).map(|t| t.group.clone()).collect();
                g.into_iter().collect()
            }
            s => s.strip_prefix("attribute:").and_then(|a| self.i.attributes.get(a)).cloned().into_iter().collect(),
        }
    }
}

fn value_of(i: &ContainerInstance, field: &str) -> String {
    match field {
        "instanceId" | "host" => i.arn.clone(),
        f => f.strip_prefix("attribute:").and_then(|a| i.attributes.get(a)).cloned().unwrap_or_default(),
    }
}

fn strategy_of(svc: &Service) -> Vec<Strategy> {
    if svc.strategy.is_empty() {
        vec![Strategy::Spread("attribute:ecs.availability-zone".into()), Strategy::Spread("instanceId".into())]
    } else {
        svc.strategy.clone()
    }
}

/// Tasks of `group` on instances whose `field` value equals `v`.
fn on_value(snap: &Snapshot, group: &str, field: &str, v: &str) -> i64 {
    live(snap)
        .filter(|t| t.group == group)
        .filter(|t| snap.instance(&t.instance_arn).is_some_and(|i| value_of(i, field) == v))
        .count() as i64
}

/// The instances where ECS may place the service's next task (ARNs), per ecs-behaviour.md.
fn reference_ties(snap: &Snapshot, svc: &Service) -> BTreeSet<String> {
    let td = &svc.task_definition;
    let group = format!("service:{}", svc.name);
    let mut cands: Vec<&ContainerInstance> = snap
        .instances
        .iter()
        .filter(|i| i.status == InstanceStatus::Active && i.agent_connected)
        .filter(|i| i.remaining.cpu >= td.cpu && i.remaining.memory >= td.memory)
        .filter(|i| td.host_ports.iter().all(|p| !i.ports_in_use.contains(p)))
        .filter(|i| {
            svc.constraints.iter().all(|c| match c {
                Constraint::DistinctInstance => !live(snap).any(|t| t.group == group && t.instance_arn == i.arn),
                Constraint::MemberOf(e) => crate::cql::Expr::parse(e).expect("valid").eval(&Inst { snap, i }),
            })
        })
        .collect();
    for rule in strategy_of(svc) {
        if cands.len() <= 1 {
            break;
        }
        let score = |i: &ContainerInstance| -> Option<i64> {
            match &rule {
                Strategy::Spread(f) => Some(on_value(snap, &group, f, &value_of(i, f))),
                Strategy::Binpack(crate::model::BinpackField::Cpu) => Some(i.remaining.cpu),
                Strategy::Binpack(crate::model::BinpackField::Memory) => Some(i.remaining.memory),
                Strategy::Random => None,
            }
        };
        let Some(best) = cands.iter().filter_map(|i| score(i)).min() else { continue };
        cands.retain(|i| score(i) == Some(best));
    }
    cands.into_iter().map(|i| i.arn.clone()).collect()
}

/// The tasks ECS may stop when the service's desired count drops by one (task ARNs).
fn reference_scale_in(snap: &Snapshot, svc: &Service) -> BTreeSet<String> {
    let group = format!("service:{}", svc.name);
    let mut cands: Vec<&Task> = live(snap).filter(|t| t.group == group && !t.protected).collect();
    for rule in strategy_of(svc) {
        if cands.len() <= 1 {
            break;
        }
        let score = |t: &Task| -> Option<i64> {
            let i = snap.instance(&t.instance_arn)?;
            match &rule {
                Strategy::Spread(f) => Some(on_value(snap, &group, f, &value_of(i, f))),
                // "The container instance that has the most available resources left after
                // task termination has that task terminated."
                Strategy::Binpack(crate::model::BinpackField::Cpu) => Some(i.remaining.cpu),
                Strategy::Binpack(crate::model::BinpackField::Memory) => Some(i.remaining.memory),
                Strategy::Random => None,
            }
        };
        let Some(best) = cands.iter().filter_map(|t| score(t)).max() else { continue };
        cands.retain(|t| score(t) == Some(best));
    }
    cands.into_iter().map(|t| t.arn.clone()).collect()
}

const STRATEGIES: &[&[&str]] = &[
    &[],
    &["spread(attribute:ecs.availability-zone)", "spread(instanceId)"],
    &["spread(instanceId)"],
    &["binpack(memory)"],
    &["binpack(cpu)"],
    &["random"],
    &["spread(attribute:ecs.availability-zone)", "binpack(memory)"],
    &["spread(attribute:ecs.instance-type)", "spread(attribute:ecs.availability-zone)", "binpack(cpu)"],
    &["binpack(cpu)", "spread(attribute:ecs.availability-zone)"],
];
const CONSTRAINTS: &[&[&str]] = &[
    &[],
    &["distinctInstance"],
    &["memberOf(attribute:ecs.instance-type =~ m5.*)"],
    &["memberOf(attribute:ecs.availability-zone in [us-east-1a, us-east-1b])"],
    &["memberOf(not(task:group == service:s1))"],
    &["memberOf(runningTasksCount <= 3)"],
    &["distinctInstance", "memberOf(attribute:ecs.availability-zone != us-east-1c)"],
];
const TYPES: &[&str] = &["m5.large", "c5.xlarge"];
const AZS: &[&str] = &["us-east-1a", "us-east-1b", "us-east-1c"];

/// A generated cluster: instances of two types in up to three zones (some DRAINING or
/// disconnected), three services, tasks of them (and a standalone one) placed wherever they
/// fit, some protected.
#[derive(Debug, Clone)]
struct Gen {
    instances: Vec<(usize, usize, i64, i64, u8)>,
    services: Vec<(usize, usize, i64, i64, bool)>,
    tasks: Vec<(usize, usize, bool)>,
}

fn clusters() -> impl proptest::strategy::Strategy<Value = Gen> {
    let inst = (0..TYPES.len(), 0..AZS.len(), 1i64..5, 1i64..9, 0u8..10);
    let svc = (0..STRATEGIES.len(), 0..CONSTRAINTS.len(), 0i64..3, 1i64..4, any::<bool>());
    (
        proptest::collection::vec(inst, 1..7),
        proptest::collection::vec(svc, 3..=3),
        proptest::collection::vec((0usize..8, 0usize..4, any::<bool>()), 0..25),
    )
        .prop_map(|(instances, services, tasks)| Gen { instances, services, tasks })
}

fn build(g: &Gen) -> Snapshot {
    let mut snap = Snapshot { cluster: "c".into(), ..Default::default() };
    for (n, &(ty, az, cpu, mem, state)) in g.instances.iter().enumerate() {
        let mut attributes = BTreeMap::new();
        attributes.insert(attr::AZ.to_string(), AZS[az].to_string());
        attributes.insert(attr::INSTANCE_TYPE.to_string(), TYPES[ty].to_string());
        let reg = Resources { cpu: cpu * 512, memory: mem * 512 };
        snap.instances.push(ContainerInstance {
            arn: format!("arn:aws:ecs:us-east-1:1:container-instance/c/n{n}"),
            ec2_instance_id: format!("i-{n}"),
            status: if state == 0 { InstanceStatus::Draining } else { InstanceStatus::Active },
            agent_connected: state != 1,
            registered: reg,
            remaining: reg,
            ports_in_use: vec![22, 2375, 2376, 51678, 51679],
            attributes,
            registered_at: Millis(0),
            running_tasks: 0,
            pending_tasks: 0,
            extra: Default::default(),
        });
    }
    for (k, &(st, co, cpu, mem, port)) in g.services.iter().enumerate() {
        snap.services.push(Service {
            name: format!("s{k}"),
            arn: format!("arn:aws:ecs:us-east-1:1:service/c/s{k}"),
            daemon: false,
            desired: 0,
            running: 0,
            pending: 0,
            strategy: STRATEGIES[st].iter().map(|s| Strategy::parse(s).expect("strategy")).collect(),
            constraints: CONSTRAINTS[co].iter().map(|s| Constraint::parse(s).expect("constraint")).collect(),
            min_healthy_percent: 100,
            max_percent: 200,
            task_definition: TaskDefinition {
                arn: format!("s{k}:1"),
                cpu: cpu * 256,
                memory: mem * 256,
                host_ports: if port && k == 2 { vec![8080] } else { vec![] },
                needs: Default::default(),
            },
            deployments: vec![],
            tags: BTreeMap::new(),
            scaled_by: vec![],
        });
    }
    for (n, &(inst, svc, protected)) in g.tasks.iter().enumerate() {
        let Some(i) = snap.instances.get(inst % snap.instances.len().max(1)).map(|i| i.arn.clone()) else { continue };
        let (group, service, cpu, memory, ports) = if svc == 3 {
            ("family:batch".to_string(), None, 256, 256, vec![])
        } else {
            let s = &snap.services[svc];
            (
                s.group(),
                Some(s.name.clone()),
                s.task_definition.cpu,
                s.task_definition.memory,
                s.task_definition.host_ports.clone(),
            )
        };
        let ci = snap.instances.iter_mut().find(|x| x.arn == i).expect("instance");
        if ci.remaining.cpu < cpu || ci.remaining.memory < memory || ports.iter().any(|p| ci.ports_in_use.contains(p)) {
            continue;
        }
        ci.remaining.cpu -= cpu;
        ci.remaining.memory -= memory;
        ci.ports_in_use.extend(ports.iter().copied());
        ci.running_tasks += 1;
        snap.tasks.push(Task {
            arn: format!("arn:aws:ecs:us-east-1:1:task/c/t{n:03}"),
            group,
            started_by: None,
            service,
            instance_arn: i,
            last_status: TaskStatus::Running,
            desired_status: TaskStatus::Running,
            cpu,
            memory,
            host_ports: ports,
            healthy: true,
            protected,
            utilization: None,
        });
    }
    snap
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Where the next task may go: the model's tied best candidates are the reference's.
    #[test]
    fn placement_matches_the_documented_pipeline(g in clusters()) {
        let snap = build(&g);
        let (st, _) = ClusterState::from_snapshot(&snap);
        for svc in &snap.services {
            let model: BTreeSet<String> =
                st.best_ties(&TaskSpec::for_service(svc)).into_iter().map(|i| st.nodes[i].id.clone()).collect();
            prop_assert_eq!(&model, &reference_ties(&snap, svc), "service {} ({:?}, {:?})", svc.name, svc.strategy, svc.constraints);
        }
    }

    /// `best_ties` scores the first rule while it finds the candidates: the same ties, in the
    /// same order (a seeded choice picks among them by position), as ranking every candidate.
    #[test]
    fn best_ties_is_rank_over_the_candidates(g in clusters()) {
        let snap = build(&g);
        let (st, _) = ClusterState::from_snapshot(&snap);
        for svc in &snap.services {
            let spec = TaskSpec::for_service(svc);
            let c = st.candidates(&spec);
            let ranked = if c.is_empty() { c } else { st.rank(&spec, c) };
            prop_assert_eq!(st.best_ties(&spec), ranked, "service {} ({:?})", svc.name, svc.strategy);
        }
    }

    /// Which task goes on scale-in: the model's tied choices are the reference's.
    #[test]
    fn scale_in_matches_the_documented_choice(g in clusters()) {
        let snap = build(&g);
        let (st, idx) = ClusterState::from_snapshot(&snap);
        for svc in &snap.services {
            let tasks: Vec<&Task> = snap.service_tasks(&svc.name).collect();
            let view: Vec<(usize, bool)> = tasks.iter().map(|t| (idx[&t.instance_arn], t.protected)).collect();
            let model: BTreeSet<String> =
                st.scale_in_ties(&TaskSpec::for_service(svc), &view).into_iter().map(|k| tasks[k].arn.clone()).collect();
            prop_assert_eq!(&model, &reference_scale_in(&snap, svc), "service {} ({:?})", svc.name, svc.strategy);
        }
    }
}
