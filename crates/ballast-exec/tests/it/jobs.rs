//! The instance half of the job, run by the Ballast policy on the simulator step by step,
//! with the cluster inspected between runs.
use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, GroupInfo};
use ballast_core::config::{EnvSettings, validate_cluster};
use ballast_core::duration::Millis;
use ballast_core::model::{InstanceStatus, Snapshot};
use ballast_exec::policies::Ballast;
use ballast_sim::backend::SimBackend;
use ballast_sim::{Scenario, Sim};

use crate::support::{Hooks, Tap};

/// Checks each termination against the cluster as it is then: ballast terminates only an
/// instance it drained itself that holds no task but daemons, with a decrement.
struct Terminations;

impl Hooks for Terminations {
    fn apply(&mut self, inner: &mut dyn Backend, cluster: &str, a: &Action) -> Result<(), BackendError> {
        if let Action::TerminateInstance { ec2_instance_id, decrement, .. } = a {
            let s = inner.snapshot(cluster)?;
            let inst = s.instances.iter().find(|i| &i.ec2_instance_id == ec2_instance_id).expect("registered");
            assert_eq!(inst.attr("ballast.drained-by"), Some("ballast-autoscale"), "only its own drains");
            assert_eq!(inst.status, InstanceStatus::Draining);
            let on = |t: &&ballast_core::model::Task| t.is_live() && t.instance_arn == inst.arn;
            let left = s.tasks.iter().filter(on).count();
            let daemons = s.tasks.iter().filter(on).filter(|t| s.is_daemon_task(t)).count();
            assert_eq!(left, daemons, "terminated {ec2_instance_id} with {left} task(s) on it");
            assert!(*decrement, "scale-in terminates with a decrement");
        }
        Ok(())
    }
}

fn scenario(body: &str) -> Scenario {
    Scenario::parse(body, "inline.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// Every scenario here: the autoscale job alone on the group `asg`, every 5 minutes.
const CONTROLLER: &str = "controller:\n  every: 5m\n  config:\n    rebalance: {enabled: false}\n    \
                          autoscale:\n      autoscale_group: asg\n      enabled: true\n";

/// The scenario (`body` and [`CONTROLLER`] with `autoscale_extra` lines), its simulator and
/// the Ballast policy with its configuration.
fn setup(body: &str, autoscale_extra: &str) -> (Scenario, Sim, Ballast) {
    let sc = scenario(&format!("{body}{CONTROLLER}{autoscale_extra}"));
    let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
    let sim = Sim::new(&sc);
    (sc, sim, Ballast::named(cfg, "test"))
}

/// One scheduled run at `at`; returns the mutating calls and the cluster afterwards.
fn run_at(sim: &mut Sim, policy: &mut Ballast, cluster: &str, at: Millis) -> (Vec<Action>, Snapshot, GroupInfo) {
    sim.advance_to(at);
    sim.triggers.clear();
    let mut be = SimBackend::new(sim, None);
    let mut tap = Tap::new(&mut be, Terminations);
    policy.run_once(&mut tap, cluster, ballast_core::view::Trigger::Scheduled).unwrap();
    let applied = tap.applied;
    (applied, be.snapshot(cluster).unwrap(), be.group("asg").unwrap())
}

const CONSOLIDATE: &str = r#"
name: consolidate
seed: 5
duration: 4h
azs: [us-east-1a, us-east-1b]
groups:
  - {name: asg, capacity: on-demand, instance_type: m5.large, desired: 6, min: 1, max: 8, boot: 3m}
services:
  - {name: web, desired: 4, cpu: 256, memory: 512, strategy: ["spread(instanceId)"]}
  - {name: agent, daemon: true, cpu: 64, memory: 128}
standalone:
  - {name: batch, count: 1, cpu: 256, memory: 512}
"#;

/// An over-provisioned group is consolidated: instances whose tasks fit elsewhere are
/// drained (marked) and terminated with a decrement once empty; the instance holding a
/// standalone task is never drained (its task would die), an instance someone else
/// drained is never terminated or re-activated, and the service never drops below its
/// health budget.
#[test]
fn consolidation_spares_standalone_tasks_and_other_peoples_drains() {
    let (sc, mut sim, mut policy) = setup(CONSOLIDATE, "      cpu_buffer: 256\n      mem_buffer: 512\n");
    sim.advance_to(Millis::mins(15));
    let start = Backend::snapshot(&mut SimBackend::new(&mut sim, None), &sc.cluster).unwrap();
    let standalone =
        start.tasks.iter().find(|t| t.is_live() && t.service.is_none()).expect("batch runs").instance_arn.clone();
    let theirs = start.instances.iter().find(|i| i.arn != standalone).unwrap().arn.clone();
    // Someone else drains one instance (an operator, or another tool).
    SimBackend::new(&mut sim, None)
        .apply(
            &sc.cluster,
            &Action::SetInstanceState {
                instance_arns: vec![theirs.clone()],
                status: InstanceStatus::Draining,
                reason: "ops".into(),
            },
        )
        .unwrap();
    let mut terminated = 0;
    let mut t = Millis::mins(20);
    let mut last = None;
    while t <= Millis::mins(180) {
        let (applied, snap, g) = run_at(&mut sim, &mut policy, &sc.cluster, t);
        terminated += applied.iter().filter(|a| matches!(a, Action::TerminateInstance { .. })).count();
        let st = |arn: &str| snap.instances.iter().find(|i| i.arn == arn).map(|i| i.status);
        assert_eq!(st(&standalone), Some(InstanceStatus::Active), "at {t}: the standalone task's instance stays");
        assert_eq!(st(&theirs), Some(InstanceStatus::Draining), "at {t}: someone else's drain is left alone");
        let running = snap.service_tasks("web").filter(|t| t.is_live()).count();
        assert!(running >= 4, "at {t}: web has {running} of 4 running");
        assert!(g.desired >= g.min, "at {t}");
        last = Some(g);
        t = t + Millis::mins(5);
    }
    let g = last.unwrap();
    assert!(terminated >= 3, "consolidated: {terminated} terminated, the group is at {}", g.desired);
    assert_eq!(g.desired, 6 - terminated as u32, "every termination decremented the group");
}

const PORTS: &str = r#"
name: ports
seed: 5
duration: 2h
azs: [us-east-1a, us-east-1b]
groups:
  - {name: asg, capacity: on-demand, instance_type: m5.large, desired: 1, min: 1, max: MAX, boot: 3m}
services:
  - {name: edge, desired: 1, cpu: 256, memory: 512, ports: [80]}
  - {name: cache, desired: 1, cpu: 256, memory: 512, constraints: [distinctInstance]}
events:
  - {at: 10m, set_service_desired: {service: edge, desired: 4}}
  - {at: 10m, set_service_desired: {service: cache, desired: 5}}
"#;

/// Tasks that each need an instance of their own (a host port, distinctInstance) are
/// bin-packed with the placement model: one run asks for every instance they need (not one
/// per run, as ecs-autoscale does), the next counts those booting instead of asking again,
/// and once they have joined every task runs. With the group's max lower than the need,
/// the group stops at its max and says so.
#[test]
fn scale_out_asks_once_for_every_instance_the_constraints_need() {
    let (sc, mut sim, mut policy) = setup(&PORTS.replace("MAX", "10"), "");
    let (_, _, g) = run_at(&mut sim, &mut policy, &sc.cluster, Millis::mins(11));
    assert_eq!(g.desired, 5, "cache's 5 distinct instances cover edge's 4 ports: {g:?}");
    let (applied, _, g) = run_at(&mut sim, &mut policy, &sc.cluster, Millis::mins(12));
    assert!(applied.iter().all(|a| !matches!(a, Action::SetGroupDesired { .. })), "booting counted: {applied:?}");
    assert_eq!(g.desired, 5);
    let (_, snap, _) = run_at(&mut sim, &mut policy, &sc.cluster, Millis::mins(30));
    assert_eq!(snap.service_tasks("edge").filter(|t| t.is_live()).count(), 4);
    assert_eq!(snap.service_tasks("cache").filter(|t| t.is_live()).count(), 5);

    let (sc, mut sim, mut policy) = setup(&PORTS.replace("MAX", "3"), "");
    let (_, _, g) = run_at(&mut sim, &mut policy, &sc.cluster, Millis::mins(11));
    assert_eq!(g.desired, 3, "held at the group's max");
}

/// The definition's `min` and `max` are the group's (seed 003: "We treat the values in the
/// cluster def as the truth"): with a definition's max of 3 on a group of max 10, neither
/// ballast nor the ecs-autoscale baseline grows the group past 3, however many instances the
/// tasks need, and both set the group's limits to the definition's.
#[test]
fn the_definitions_max_holds_for_ballast_and_for_ecs_autoscale() {
    use ballast_sim::Controller;
    let limits = "      min: 1\n      max: 3\n";
    let (sc, mut sim, mut policy) = setup(&PORTS.replace("MAX", "10"), limits);
    let mut baseline_sim = Sim::new(&sc);
    let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
    let mut baseline = ballast_exec::baselines::ecs_autoscale::EcsAutoscale::new(cfg.autoscale.clone());
    for m in (5..=60).step_by(5) {
        let (_, _, g) = run_at(&mut sim, &mut policy, &sc.cluster, Millis::mins(m));
        assert!(g.desired <= 3 && g.max == 3, "ballast at {m} min: {g:?}");
        baseline_sim.advance_to(Millis::mins(m));
        let mut be = SimBackend::new(&mut baseline_sim, None);
        baseline.on_tick(&mut be, &sc.cluster).unwrap();
        let g = be.group("asg").unwrap();
        assert!(g.desired <= 3 && (g.min, g.max) == (1, 3), "ecs-autoscale at {m} min: {g:?}");
    }
}

/// Issue [9]'s over-provisioned group: 8 instances for 2 service tasks and a daemon, with
/// every job on (rebalance too, as by default). The instances to keep are chosen first and
/// the rest drained at once, so each service task moves at most once: at most 2 restarts
/// (the daemon's stops are not restarts), ending on at most 3 instances, nothing lost,
/// nothing left draining, the service never below its budget.
#[test]
fn an_over_provisioned_group_is_consolidated_moving_each_task_at_most_once() {
    let text = r#"
name: over-provisioned
seed: 3
duration: 3h
azs: [us-east-1a, us-east-1b]
groups:
  - {name: asg, capacity: on-demand, instance_type: m5.large, desired: 8, min: 1, max: 8, boot: 3m}
services:
  - {name: web, desired: 2, cpu: 256, memory: 512, strategy: ["spread(attribute:ecs.availability-zone)", "spread(instanceId)"]}
  - {name: agent, daemon: true, cpu: 64, memory: 128}
controller:
  every: 5m
  config:
    autoscale:
      autoscale_group: asg
      enabled: true
      cpu_buffer: 256
      mem_buffer: 512
"#;
    let sc = Scenario::parse(text, "over.yaml").unwrap();
    let cfg = validate_cluster(&sc.controller.config, &EnvSettings::default()).unwrap();
    assert!(cfg.rebalance.enabled, "every job on, as by default");
    let mut policy = Ballast::new(cfg);
    let o = ballast_sim::simulate(&sc, "ballast", &mut policy, &ballast_sim::RunOptions::default());
    let r = &o.report;
    assert!(r.tasks_restarted <= 2, "{} restarts: {:?}", r.tasks_restarted, policy.log);
    assert_eq!((r.tasks_lost, r.left_draining), (0, 0), "{r:?}");
    let web = &r.service_availability["web"];
    assert!(web.min_percent >= web.budget_percent as f64, "{web:?}");
    let left = o.sim.insts.iter().filter(|i| i.state != ballast_sim::engine::InstState::Gone).count();
    assert!(left <= 3, "{left} instances left: {:?}", policy.log);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}
