//! Placement tests, from the documented examples in ecs-behaviour.md §1.

use super::*;
use crate::fixtures::SnapshotBuilder;

fn spec(snap: &Snapshot, name: &str) -> TaskSpec {
    TaskSpec::for_service(snap.service(name).unwrap())
}

fn ids(st: &ClusterState, v: &[usize]) -> Vec<String> {
    v.iter().map(|&i| st.nodes[i].ec2_id.clone()).collect()
}

#[test]
fn default_strategy_spreads_over_azs_then_instances() {
    let snap = SnapshotBuilder::new("c")
        .instance("a1", "us-east-1a", 2048, 4096)
        .instance("a2", "us-east-1a", 2048, 4096)
        .instance("b1", "us-east-1b", 2048, 4096)
        .service("web", 256, 512, &[], &[])
        .tasks("web", "a1", 1)
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    // AZ b has no task of the service: it wins; within the AZ the instance with fewest.
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "web"))), vec!["i-b1"]);
}

#[test]
fn binpack_memory_picks_least_remaining_memory_that_fits() {
    let snap = SnapshotBuilder::new("c")
        .instance("big", "us-east-1a", 8192, 32000)
        .instance("small", "us-east-1a", 2048, 7680)
        .instance("full", "us-east-1a", 2048, 900)
        .service("api", 512, 1024, &["binpack(memory)"], &[])
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "api"))), vec!["i-small"]);
}

#[test]
fn resources_ports_status_and_agent_are_hard_requirements() {
    let mut snap = SnapshotBuilder::new("c")
        .instance("a", "us-east-1a", 2048, 4096)
        .instance("b", "us-east-1a", 2048, 4096)
        .instance("c", "us-east-1a", 2048, 4096)
        .instance("d", "us-east-1a", 100, 4096)
        .draining("b")
        .service("web", 256, 512, &["random"], &[])
        .build();
    snap.instances[2].agent_connected = false;
    snap.instances[0].ports_in_use = vec![80];
    snap.services[0].task_definition.host_ports = vec![80];
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert!(st.best_ties(&spec(&snap, "web")).is_empty());
    snap.services[0].task_definition.host_ports = vec![8080];
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "web"))), vec!["i-a"]);
}

#[test]
fn distinct_instance_and_member_of() {
    let snap = SnapshotBuilder::new("c")
        .instance("a", "us-east-1a", 2048, 4096)
        .instance("b", "us-east-1b", 2048, 4096)
        .instance("c", "us-east-1d", 2048, 4096)
        .attribute("c", "ecs.instance-type", "g2.2xlarge")
        .attribute("b", "ecs.instance-type", "g2.xlarge")
        .service(
            "gpu",
            256,
            512,
            &["random"],
            &[
                "distinctInstance",
                "memberOf(attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d)",
            ],
        )
        .service("one", 256, 512, &["random"], &["distinctInstance"])
        .tasks("one", "a", 1)
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "gpu"))), vec!["i-b"]);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "one"))), vec!["i-b", "i-c"]);
}

#[test]
fn chained_spread_then_binpack_within_the_az() {
    let snap = SnapshotBuilder::new("c")
        .instance("a1", "us-east-1a", 4096, 8000)
        .instance("a2", "us-east-1a", 4096, 6000)
        .instance("b1", "us-east-1b", 4096, 8000)
        .service("w", 256, 512, &["spread(attribute:ecs.availability-zone)", "binpack(memory)"], &[])
        .tasks("w", "b1", 1)
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "w"))), vec!["i-a2"]);
}

#[test]
fn seeded_choice_is_reproducible_and_ties_are_all_candidates() {
    let snap = SnapshotBuilder::new("c")
        .instance("a", "us-east-1a", 2048, 4096)
        .instance("b", "us-east-1a", 2048, 4096)
        .instance("c", "us-east-1a", 2048, 4096)
        .service("r", 256, 512, &["random"], &[])
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    let s = spec(&snap, "r");
    assert_eq!(st.best_ties(&s).len(), 3);
    let a: Vec<_> = (0..20).map(|i| st.choose(&s, &mut Rng::new(i))).collect();
    let b: Vec<_> = (0..20).map(|i| st.choose(&s, &mut Rng::new(i))).collect();
    assert_eq!(a, b);
    assert!(a.iter().any(|x| *x != a[0]), "random should vary with the seed");
}

#[test]
fn scale_in_keeps_the_best_spread_and_skips_protected_tasks() {
    let snap = SnapshotBuilder::new("c")
        .instance("a1", "us-east-1a", 4096, 8000)
        .instance("a2", "us-east-1a", 4096, 8000)
        .instance("b1", "us-east-1b", 4096, 8000)
        .service("web", 256, 512, &[], &[])
        .tasks("web", "a1", 2)
        .tasks("web", "a2", 1)
        .tasks("web", "b1", 2)
        .build();
    let (st, idx) = ClusterState::from_snapshot(&snap);
    let s = spec(&snap, "web");
    let tasks: Vec<(usize, bool)> = snap.tasks.iter().map(|t| (idx[&t.instance_arn], false)).collect();
    // AZ a holds 3 of 5: stop there, on the instance with the most (a1).
    let ties = st.scale_in_ties(&s, &tasks);
    assert!(ties.iter().all(|&k| st.nodes[tasks[k].0].ec2_id == "i-a1"), "{ties:?}");
    let protected: Vec<(usize, bool)> = tasks.iter().map(|&(n, _)| (n, st.nodes[n].ec2_id == "i-a1")).collect();
    let ties = st.scale_in_ties(&s, &protected);
    assert!(ties.iter().all(|&k| st.nodes[tasks[k].0].ec2_id == "i-a2"), "{ties:?}");
}

#[test]
fn binpack_scale_in_stops_where_most_remains() {
    let snap = SnapshotBuilder::new("c")
        .instance("full", "us-east-1a", 4096, 4000)
        .instance("roomy", "us-east-1a", 4096, 16000)
        .service("api", 256, 1000, &["binpack(memory)"], &[])
        .tasks("api", "full", 3)
        .tasks("api", "roomy", 1)
        .build();
    let (st, idx) = ClusterState::from_snapshot(&snap);
    let tasks: Vec<(usize, bool)> = snap.tasks.iter().map(|t| (idx[&t.instance_arn], false)).collect();
    let ties = st.scale_in_ties(&spec(&snap, "api"), &tasks);
    assert_eq!(ties.len(), 1);
    assert_eq!(st.nodes[tasks[ties[0]].0].ec2_id, "i-roomy");
}

// Golden cases from the examples AWS documents, each citing its source (quoted in
// reference/ecs-behaviour.md §1). The cases above follow the same pages: the default service
// strategy (ecs_service-options), binpack on memory (API_PlacementStrategy), the failure
// reasons (api_failures_messages), the memberOf example `attribute:ecs.instance-type =~ g2.*
// and attribute:ecs.availability-zone != us-east-1d` (Cluster query language), the "AZ
// Balanced BinPack" template (Creating a service) and the scale-in rules (ecs_service-options).

/// Cluster query language: "`attribute:ecs.availability-zone in [us-east-1a, us-east-1b]`".
#[test]
fn golden_member_of_an_az_list() {
    let snap = SnapshotBuilder::new("c")
        .instance("a", "us-east-1a", 2048, 4096)
        .instance("b", "us-east-1b", 2048, 4096)
        .instance("c", "us-east-1c", 2048, 4096)
        .service("s", 256, 512, &["random"], &["memberOf(attribute:ecs.availability-zone in [us-east-1a, us-east-1b])"])
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "s"))), vec!["i-a", "i-b"]);
}

/// Cluster query language: "`not(task:group == database)`" keeps a task off instances that
/// run the database group, and "`runningTasksCount == 1`" selects by the running count.
#[test]
fn golden_task_group_and_running_count() {
    let snap = SnapshotBuilder::new("c")
        .instance("a", "us-east-1a", 4096, 8192)
        .instance("b", "us-east-1a", 4096, 8192)
        .instance("c", "us-east-1a", 4096, 8192)
        .service("database", 256, 512, &["random"], &[])
        .service("app", 256, 512, &["random"], &["memberOf(not(task:group == service:database))"])
        .service("single", 256, 512, &["random"], &["memberOf(runningTasksCount == 1)"])
        .tasks("database", "a", 1)
        .tasks("database", "b", 2)
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "app"))), vec!["i-c"]);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "single"))), vec!["i-a"]);
}

/// Cluster query language: "`ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']`".
#[test]
fn golden_member_of_instance_ids() {
    let snap = SnapshotBuilder::new("c")
        .instance("abcd1234", "us-east-1a", 2048, 4096)
        .instance("wxyx7890", "us-east-1b", 2048, 4096)
        .instance("other", "us-east-1b", 2048, 4096)
        .service("s", 256, 512, &[], &["memberOf(ec2InstanceId in ['i-abcd1234', 'i-wxyx7890'])"])
        .tasks("s", "abcd1234", 1)
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    // The default strategy then prefers the zone without a task of the service.
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "s"))), vec!["i-wxyx7890"]);
}

/// Draining: DRAINING "prevents new tasks from being scheduled" (container-instance-draining).
#[test]
fn golden_draining_instances_take_nothing() {
    let snap = SnapshotBuilder::new("c")
        .instance("a", "us-east-1a", 2048, 4096)
        .instance("b", "us-east-1b", 2048, 4096)
        .draining("b")
        .service("s", 256, 512, &[], &[])
        .tasks("s", "a", 3)
        .build();
    let (st, _) = ClusterState::from_snapshot(&snap);
    assert_eq!(ids(&st, &st.best_ties(&spec(&snap, "s"))), vec!["i-a"]);
}

/// Scale-in with no strategy (ecs_service-options): "Give priority to instances that have the
/// largest number of running tasks for this service in their respective Availability Zone …
/// Favoring container instances with the largest number of running tasks for this service."
#[test]
fn golden_scale_in_without_a_strategy() {
    let snap = SnapshotBuilder::new("c")
        .instance("a1", "us-east-1a", 4096, 8000)
        .instance("a2", "us-east-1a", 4096, 8000)
        .instance("b1", "us-east-1b", 4096, 8000)
        .service("web", 256, 512, &[], &[])
        .tasks("web", "a1", 1)
        .tasks("web", "a2", 2)
        .tasks("web", "b1", 2)
        .build();
    let (st, idx) = ClusterState::from_snapshot(&snap);
    let tasks: Vec<(usize, bool)> = snap.tasks.iter().map(|t| (idx[&t.instance_arn], false)).collect();
    let ties = st.scale_in_ties(&spec(&snap, "web"), &tasks);
    assert!(!ties.is_empty() && ties.iter().all(|&k| st.nodes[tasks[k].0].ec2_id == "i-a2"), "{ties:?}");
}

/// Issue [10]: what a task needs beyond CPU, memory and TCP ports decides where it fits:
/// GPUs, UDP ports, an ENI attachment point for awsvpc (with and without trunking), and
/// required attributes.
#[test]
fn gpus_udp_ports_enis_and_required_attributes_decide_fit() {
    use crate::model::TaskNeeds;
    let mut snap = SnapshotBuilder::new("c")
        .instance("a1", "us-east-1a", 4096, 16384)
        .instance("b1", "us-east-1b", 4096, 16384)
        .attribute("b1", "gpu-node", "yes")
        .service("web", 256, 512, &[], &[])
        .build();
    snap.instances[1].extra.gpus = 1;
    snap.instances[1].extra.gpus_free = 1;
    snap.instances[0].extra.udp_ports_in_use = vec![514];
    for i in &mut snap.instances {
        i.extra.awsvpc_limit = awsvpc_task_limit("m5.large", false);
    }
    let (mut st, _) = ClusterState::from_snapshot(&snap);
    let mut spec = TaskSpec::for_service(&snap.services[0]);
    let fits = |st: &ClusterState, spec: &TaskSpec| (st.fits(0, spec), st.fits(1, spec));
    assert_eq!(fits(&st, &spec), (true, true));
    spec.needs = TaskNeeds { gpus: 1, ..Default::default() };
    assert_eq!(fits(&st, &spec), (false, true), "only b1 has a GPU");
    st.place(1, &spec);
    assert_eq!(fits(&st, &spec), (false, false), "and it is taken");
    spec.needs = TaskNeeds { udp_ports: vec![514], ..Default::default() };
    assert_eq!(fits(&st, &spec), (false, true), "UDP 514 is in use on a1");
    spec.needs = TaskNeeds { requires: vec![("gpu-node".into(), Some("yes".into()))], ..Default::default() };
    assert_eq!(fits(&st, &spec), (false, true));
    spec.needs = TaskNeeds { requires: vec![("gpu-node".into(), Some("no".into()))], ..Default::default() };
    assert_eq!(fits(&st, &spec), (false, false));
    // m5.large: 3 network interfaces, the primary one taken: 2 awsvpc tasks; 10 when trunked.
    assert_eq!(awsvpc_task_limit("m5.large", true), Some(10));
    assert_eq!(awsvpc_task_limit("x9.large", false), None);
    spec.needs = TaskNeeds { awsvpc: true, ..Default::default() };
    st.place(0, &spec);
    st.place(0, &spec);
    assert_eq!(fits(&st, &spec), (false, true), "a1 has no ENI left");
    st.remove(0, &spec);
    assert_eq!(fits(&st, &spec), (true, true));
}
