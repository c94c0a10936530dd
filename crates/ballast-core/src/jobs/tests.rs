//! The joint decision, without spawning anything: each job's rules, and properties over
//! generated clusters.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::action::Action;
use crate::autoscale::AutoscaleConfig;
use crate::backend::{GroupInfo, GroupInstance, Lifecycle};
use crate::config::RebalanceConfig;
use crate::fixtures::SnapshotBuilder;
use crate::model::ServiceState;
use crate::model::{InstanceStatus, Snapshot};
use crate::plan::Fresh;

fn autoscale_cfg(group: &str) -> AutoscaleConfig {
    AutoscaleConfig { group: group.into(), cpu_buffer: 0, mem_buffer: 0, group_limits: None, services: BTreeMap::new() }
}

fn group(name: &str, snap: &Snapshot, launching: u32) -> GroupInfo {
    let mut instances: Vec<GroupInstance> = snap
        .instances
        .iter()
        .map(|i| GroupInstance { ec2_instance_id: i.ec2_instance_id.clone(), lifecycle: Lifecycle::InService })
        .collect();
    for k in 0..launching {
        instances.push(GroupInstance { ec2_instance_id: format!("i-booting{k}"), lifecycle: Lifecycle::Launching });
    }
    GroupInfo { name: name.into(), desired: instances.len() as u32, min: 1, max: 20, instances, cooldown: None }
}

/// Four instances, the api service piled on the first: rebalance has work to do.
fn piled() -> Snapshot {
    let mut s = SnapshotBuilder::new("c")
        .instance("a1", "us-east-1a", 4096, 16000)
        .instance("b1", "us-east-1b", 4096, 16000)
        .instance("a2", "us-east-1a", 4096, 16000)
        .instance("b2", "us-east-1b", 4096, 16000)
        .service("api", 256, 512, &["spread(attribute:ecs.availability-zone)", "spread(instanceId)"], &[])
        .tasks("api", "a1", 4)
        .tasks("api", "b1", 4)
        .build();
    s.taken_at = crate::duration::Millis::mins(60);
    s
}

fn cfg(autoscale: bool) -> ClusterConfig {
    ClusterConfig {
        rebalance: RebalanceConfig::defaults(),
        spot_fallback: None,
        autoscale: autoscale.then(|| autoscale_cfg("asg")),
    }
}

fn budget() -> Budget {
    Budget { restarts: 50 }
}

#[test]
fn rebalance_acts_on_a_settled_cluster() {
    let v = View::of(piled());
    let (p, _) = decide(&v, &cfg(false), Jobs::ALL, &budget());
    assert!(p.steps.iter().any(|s| s.job == JobKind::Rebalance), "{:?}", p.decisions);
}

#[test]
fn rebalance_waits_while_instances_are_still_launching() {
    let snap = piled();
    let mut v = View::of(snap.clone());
    v.groups.insert("asg".into(), group("asg", &snap, 2));
    let (p, _) = decide(&v, &cfg(true), Jobs::ALL, &budget());
    assert!(p.steps.iter().all(|s| s.job != JobKind::Rebalance), "{:?}", p.steps);
    let d = p.decisions.iter().find(|d| d.job == JobKind::Rebalance).unwrap();
    assert!(d.summary.contains("launching"), "{}", d.summary);
}

#[test]
fn rebalance_waits_while_an_autoscaled_group_settles() {
    let mut snap = piled();
    snap.instances[3].registered_at = snap.taken_at - crate::duration::Millis::mins(3);
    let mut v = View::of(snap.clone());
    v.groups.insert("asg".into(), group("asg", &snap, 0));
    let (p, _) = decide(&v, &cfg(true), Jobs::ALL, &budget());
    assert!(p.steps.iter().all(|s| s.job != JobKind::Rebalance), "{:?}", p.steps);
}

#[test]
fn recovery_comes_first_and_the_other_jobs_wait() {
    let mut snap = piled();
    snap.services[0].desired = 9;
    snap.services[0].tags.insert(SURGE_TAG.into(), "8:9@crashed".into());
    let (p, _) = decide(&View::of(snap), &cfg(false), Jobs::ALL, &budget());
    assert!(!p.steps.is_empty() && p.steps.iter().all(|s| s.job == JobKind::Recovery), "{:?}", p.steps);
}

#[test]
fn a_surge_never_takes_the_room_a_waiting_task_needs() {
    // One free slot of room on the empty instance; a worker task waits for it.
    let mut s = SnapshotBuilder::new("c")
        .instance("a", "us-east-1a", 2048, 2048)
        .instance("b", "us-east-1a", 2048, 1024)
        .service("api", 256, 512, &["spread(instanceId)"], &[])
        .service("worker", 256, 1024, &["binpack(memory)"], &[])
        .tasks("api", "a", 2)
        .tasks("worker", "a", 1)
        .build();
    s.services[1].desired = 2;
    let free = View::of(s.clone());
    let reserve = autoscale::wanted(&free.snapshot, &BTreeMap::new());
    assert_eq!(reserve.len(), 1, "one worker task waits");
    let (with, _) = rebalance::decide(&free.snapshot, &RebalanceConfig::defaults(), &reserve, "t");
    assert!(with.services.is_empty(), "the waiting task keeps its room: {:?}", with.services);
    let (without, _) = rebalance::decide(&free.snapshot, &RebalanceConfig::defaults(), &[], "t");
    assert!(!without.services.is_empty(), "without it, api would have moved");
}

/// A generated cluster: instances (some DRAINING, some marked by ballast or by nobody),
/// services of every strategy, tasks where they fit, perhaps a surge tag and a group.
fn clusters() -> impl proptest::strategy::Strategy<Value = (Snapshot, bool, u32)> {
    (
        proptest::collection::vec((0usize..2, 1i64..6, 0u8..12), 2..7),
        proptest::collection::vec((0usize..4, 1u32..12), 1..4),
        any::<u64>(),
        any::<bool>(),
        0u32..3,
    )
        .prop_map(|(insts, svcs, seed, autoscaled, launching)| {
            let strategies: [&[&str]; 4] = [
                &["spread(attribute:ecs.availability-zone)", "spread(instanceId)"],
                &["spread(instanceId)"],
                &["binpack(memory)"],
                &[],
            ];
            let mut b = SnapshotBuilder::new("c");
            for (n, &(az, size, _)) in insts.iter().enumerate() {
                b = b.instance(&format!("n{n}"), ["us-east-1a", "us-east-1b"][az], 1024 * size, 4096 * size);
            }
            for (k, &(st, _)) in svcs.iter().enumerate() {
                b = b.service(&format!("s{k}"), 256, 512, strategies[st], &[]);
            }
            let mut r = crate::rng::Rng::new(seed);
            let mut room: Vec<i64> = insts.iter().map(|&(_, size, _)| 4 * size).collect();
            for (k, &(_, count)) in svcs.iter().enumerate() {
                for _ in 0..count {
                    let n = r.below(insts.len());
                    if room[n] > 0 {
                        room[n] -= 1;
                        b = b.tasks(&format!("s{k}"), &format!("n{n}"), 1);
                    }
                }
            }
            for (n, &(_, _, state)) in insts.iter().enumerate() {
                let id = format!("n{n}");
                match state {
                    0 => b = b.draining(&id),
                    1 => b = b.draining(&id).attribute(&id, attr::BALLAST_DRAIN, OWNER),
                    2 => b = b.draining(&id).attribute(&id, attr::BALLAST_DRAIN, autoscale::SCALE_IN),
                    _ => {}
                }
            }
            let mut snap = b.build();
            snap.taken_at = crate::duration::Millis::mins(90);
            if seed % 7 == 0 {
                let s = &mut snap.services[0];
                s.tags.insert(SURGE_TAG.into(), format!("{}:{}@gone", s.desired, s.desired + 1));
                s.desired += 1;
            }
            (snap, autoscaled, launching)
        })
}

/// What a guard reads, as the view shows it.
fn fresh_from(v: &View) -> Fresh {
    let mut f = Fresh::default();
    for s in &v.snapshot.services {
        f.services.insert(
            s.name.clone(),
            Some(ServiceState { service: s.clone(), tasks: v.snapshot.service_tasks(&s.name).cloned().collect() }),
        );
    }
    for i in &v.snapshot.instances {
        f.instances.insert(i.arn.clone(), Some(i.clone()));
    }
    for (n, g) in &v.groups {
        f.groups.insert(n.clone(), Some(g.clone()));
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Over generated clusters: the same view gives the same plan; every step's first guard
    /// holds on the view it was decided from; the restarts stay within the budget; no step
    /// touches an instance someone else drained; recovery runs alone; and no move is planned
    /// while capacity changes.
    #[test]
    fn the_joint_decision_is_consistent((snap, autoscaled, launching) in clusters(), restarts in 0u32..20) {
        let mut v = View::of(snap.clone());
        if autoscaled {
            v.groups.insert("asg".into(), group("asg", &snap, launching));
        }
        let c = cfg(autoscaled);
        let b = Budget { restarts };
        let (p, _) = decide(&v, &c, Jobs::ALL, &b);
        let (q, _) = decide(&v, &c, Jobs::ALL, &b);
        prop_assert_eq!(&p, &q);
        prop_assert!(p.restarts() <= restarts as usize, "{} restarts for a budget of {restarts}", p.restarts());
        let fresh = fresh_from(&v);
        for s in &p.steps {
            let baseline: Vec<_> = s.service.as_ref().map(|n| v.snapshot.service_tasks(n).cloned().collect()).unwrap_or_default();
            if let Err(why) = s.phases[0].guard.check(&fresh, &v.snapshot, &baseline) {
                prop_assert!(false, "{}: its guard fails on its own view: {why}", s.reason);
            }
            for a in s.acts() {
                if let crate::plan::Act::Send { action: Action::SetInstanceState { instance_arns, .. } } = a {
                    for arn in instance_arns {
                        let i = v.snapshot.instance(arn).unwrap();
                        let theirs = i.status == InstanceStatus::Draining && i.attr(attr::BALLAST_DRAIN).is_none();
                        prop_assert!(!theirs, "{}: touches {} which someone else drained", s.reason, i.ec2_instance_id);
                    }
                }
            }
        }
        let recovering = p.steps.iter().any(|s| s.job == JobKind::Recovery);
        if recovering {
            prop_assert!(p.steps.iter().all(|s| matches!(s.job, JobKind::Recovery | JobKind::SpotFallback)));
        }
        let moves = p.steps.iter().any(|s| s.job == JobKind::Rebalance);
        if moves {
            prop_assert!(launching == 0 || !autoscaled, "a move planned while instances launch");
            prop_assert!(p.steps.iter().all(|s| !matches!(s.job, JobKind::Recovery)));
        }
    }
}
