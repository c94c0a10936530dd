//! Property tests of the simulator on generated scenarios.

use ballast_sim::generate::random_scenario;
use ballast_sim::{Nothing, RunOptions, Scenario, Sim, simulate};
use proptest::prelude::*;

fn run_checked(sc: &Scenario) -> Sim {
    simulate(sc, "none", &mut Nothing, &RunOptions { check_invariants: true, ..RunOptions::default() }).sim
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// No over-commit, constraints hold, daemons everywhere they fit, exact accounting, at
    /// every step; nothing lost; every service whole whenever it can be placed.
    #[test]
    fn invariants_hold_at_every_step(seed in any::<u64>()) {
        let sc = Scenario::parse(&random_scenario(seed), "gen").unwrap();
        let sim = run_checked(&sc);
        prop_assert!(sim.violations.is_empty(), "{:?}", sim.violations);
        prop_assert_eq!(sim.acct.tasks_lost, 0);
        prop_assert_eq!(sim.acct.tasks_restarted, 0);
        let snap = sim.snapshot();
        for svc in sim.svcs.iter().filter(|s| !s.daemon) {
            let live = snap.service_tasks(&svc.name).count() as u32;
            if svc.unplaced == 0 {
                prop_assert!(live >= svc.desired, "{}: {live} of {}", svc.name, svc.desired);
            }
        }
    }

    /// The same seed gives the same report, byte for byte.
    #[test]
    fn same_seed_same_report(seed in any::<u64>()) {
        let sc = Scenario::parse(&random_scenario(seed), "gen").unwrap();
        let a = simulate(&sc, "none", &mut Nothing, &RunOptions::default());
        let b = simulate(&sc, "none", &mut Nothing, &RunOptions::default());
        prop_assert_eq!(format!("{:?}", a.report), format!("{:?}", b.report));
        prop_assert_eq!(format!("{:?}", a.sim.snapshot()), format!("{:?}", b.sim.snapshot()));
    }
}

mod yardstick {
    //! The report's own honesty: every dip seen, bounds never beaten, under a controller that
    //! does anything an API allows (stops, drains, terminations, scale-ins, deployments).

    use ballast_core::action::Action;
    use ballast_core::backend::{Backend, BackendError};
    use ballast_core::event::InstanceStateChange;
    use ballast_core::model::InstanceStatus;
    use ballast_core::rng::Rng;
    use ballast_sim::generate::random_scenario;
    use ballast_sim::{Controller, RunOptions, Scenario, simulate};
    use proptest::prelude::*;

    /// Does one random disruptive thing on every run.
    struct Chaos(Rng);

    impl Controller for Chaos {
        fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
            let snap = b.snapshot(cluster)?;
            let r = &mut self.0;
            let a = match r.below(6) {
                0 if !snap.tasks.is_empty() => Action::StopTask {
                    task_arn: snap.tasks[r.below(snap.tasks.len())].arn.clone(),
                    reason: "chaos".into(),
                },
                1 if !snap.instances.is_empty() => Action::SetInstanceState {
                    instance_arns: vec![snap.instances[r.below(snap.instances.len())].arn.clone()],
                    status: if r.below(2) == 0 { InstanceStatus::Draining } else { InstanceStatus::Active },
                    reason: "chaos".into(),
                },
                2 if !snap.instances.is_empty() => Action::TerminateInstance {
                    ec2_instance_id: snap.instances[r.below(snap.instances.len())].ec2_instance_id.clone(),
                    decrement: r.below(2) == 0,
                    reason: "chaos".into(),
                },
                3 if !snap.services.is_empty() => {
                    let s = &snap.services[r.below(snap.services.len())];
                    if s.daemon {
                        return Ok(());
                    }
                    Action::SetServiceDesired {
                        service: s.name.clone(),
                        desired: r.below(14) as u32,
                        reason: "chaos".into(),
                    }
                }
                4 if !snap.services.is_empty() => Action::ForceNewDeployment {
                    service: snap.services[r.below(snap.services.len())].name.clone(),
                    reason: "chaos".into(),
                },
                _ => Action::SetGroupDesired {
                    group: "g".into(),
                    desired: 1 + r.below(6) as u32,
                    honor_cooldown: false,
                    reason: "chaos".into(),
                },
            };
            match b.apply(cluster, &a) {
                Err(BackendError::Crashed) => Err(BackendError::Crashed),
                _ => Ok(()),
            }
        }

        fn on_instance_event(
            &mut self,
            b: &mut dyn Backend,
            cluster: &str,
            _: &InstanceStateChange,
        ) -> Result<(), BackendError> {
            self.on_tick(b, cluster)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// The table's minimum availability is the minimum over the full trace (every state
        /// change), the timeline shows the same minimum, and no policy uses less capacity than
        /// the capacity bound.
        #[test]
        fn the_report_sees_every_dip_and_no_policy_beats_the_capacity_bound(seed in any::<u64>()) {
            let sc = Scenario::parse(&random_scenario(seed), "gen").unwrap();
            let o = simulate(&sc, "chaos", &mut Chaos(Rng::new(seed ^ 7)), &RunOptions { trace: true, ..RunOptions::default() });
            let trace = o.sim.acct.trace.as_ref().unwrap();
            let min = trace.iter().map(|t| t.1).fold(100.0, f64::min);
            let round = |x: f64| (x * 100.0).round() / 100.0;
            prop_assert_eq!(o.report.min_availability_percent, round(min));
            let tl = o.timeline.iter().map(|s| s.availability).fold(100.0, f64::min);
            prop_assert_eq!(tl, round(min), "timeline and table disagree");
            prop_assert!(o.report.instance_hours >= o.report.capacity_bound.instance_hours, "{:?}", o.report);
            prop_assert!(o.report.cost >= o.report.capacity_bound.cost, "{:?}", o.report);
        }
    }

    /// The chaos controller does cost availability (the property above is not vacuous).
    #[test]
    fn chaos_makes_dips() {
        let dips = (0..60u64)
            .filter(|&seed| {
                let sc = Scenario::parse(&random_scenario(seed), "gen").unwrap();
                let o = simulate(&sc, "chaos", &mut Chaos(Rng::new(seed ^ 7)), &RunOptions::default());
                o.report.min_availability_percent < 100.0
            })
            .count();
        assert!(dips >= 15, "only {dips} of 60 runs dipped");
    }

    /// An instance terminated with its tasks, replaced within seconds, is still a dip: the
    /// tasks are missing from the kill until their replacements are healthy.
    #[test]
    fn a_killed_instance_is_a_dip_however_soon_it_is_replaced() {
        let text = "name: kill\nseed: 1\nduration: 10m\ngroups:\n  - {name: g, instance_type: m5.large, desired: 3, min: 1, max: 3}\nservices:\n  - {name: web, desired: 6, cpu: 256, memory: 512, start: 5s, strategy: [\"spread(instanceId)\"]}\ncontroller: {every: 1m, on_instance_events: false}\n";
        struct KillOne(bool);
        impl Controller for KillOne {
            fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
                if std::mem::replace(&mut self.0, true) {
                    return Ok(());
                }
                let snap = b.snapshot(cluster)?;
                let id = snap.instances[0].ec2_instance_id.clone();
                b.apply(
                    cluster,
                    &Action::TerminateInstance { ec2_instance_id: id, decrement: true, reason: "t".into() },
                )
            }
            fn on_instance_event(
                &mut self,
                _: &mut dyn Backend,
                _: &str,
                _: &InstanceStateChange,
            ) -> Result<(), BackendError> {
                Ok(())
            }
        }
        let sc = Scenario::parse(text, "kill.yaml").unwrap();
        let o = simulate(&sc, "kill", &mut KillOne(false), &RunOptions::default());
        // Two of six tasks die with the instance; the other two instances take their
        // replacements at once and they are healthy 5 s later.
        assert_eq!(o.report.tasks_lost, 2);
        assert!((o.report.min_availability_percent - 100.0 * 4.0 / 6.0).abs() < 0.01, "{:?}", o.report);
        let tl = o.timeline.iter().map(|s| s.availability).fold(100.0, f64::min);
        assert_eq!(tl, o.report.min_availability_percent);
    }

    /// A scripted controller: at its n-th run (from 0) it applies the actions listed for n,
    /// with `{task}` and `{instance}` replaced by web's first task and its instance.
    struct Script(usize, Vec<(usize, Vec<&'static str>)>);

    impl Controller for Script {
        fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
            let n = self.0;
            self.0 += 1;
            let Some((_, acts)) = self.1.iter().find(|(k, _)| *k == n) else { return Ok(()) };
            for a in acts.clone() {
                let snap = b.snapshot(cluster)?;
                let t = snap.service_tasks("web").find(|t| t.is_live()).expect("web runs").clone();
                let action = match a {
                    "scale-in" => Action::SetServiceDesired { service: "web".into(), desired: 2, reason: "t".into() },
                    "drain" => Action::SetInstanceState {
                        instance_arns: vec![t.instance_arn.clone()],
                        status: InstanceStatus::Draining,
                        reason: "t".into(),
                    },
                    _ => Action::StopTask { task_arn: t.arn.clone(), reason: "t".into() },
                };
                b.apply(cluster, &action)?;
            }
            Ok(())
        }
        fn on_instance_event(
            &mut self,
            _: &mut dyn Backend,
            _: &str,
            _: &InstanceStateChange,
        ) -> Result<(), BackendError> {
            Ok(())
        }
    }

    /// After the policy scales a service in (3 → 2, surplus: never missing), an instance it
    /// drains costs nothing when ECS starts the replacement before it stops the task
    /// (minimumHealthyPercent 100): the service stays whole at the count the policy chose.
    /// A task it stops outright is a dip (1 of the scenario's 3) that ends when the
    /// replacement is healthy, not when demand brings the count back to 3.
    #[test]
    fn after_a_scale_in_a_drain_costs_nothing_and_a_stop_only_until_its_replacement() {
        let text = "name: lowered\nseed: 1\nduration: 30m\ngroups:\n  - {name: g, instance_type: m5.large, desired: 3, min: 1, max: 3}\nservices:\n  - {name: web, desired: 3, cpu: 256, memory: 512, start: 20s, strategy: [\"spread(instanceId)\"]}\ncontroller: {every: 5m, on_instance_events: false}\n";
        let sc = Scenario::parse(text, "lowered.yaml").unwrap();
        let drained = simulate(
            &sc,
            "drain",
            &mut Script(0, vec![(1, vec!["scale-in"]), (2, vec!["drain"])]),
            &RunOptions::default(),
        );
        assert_eq!(drained.report.min_availability_percent, 100.0, "{:?}", drained.report);
        let stopped = simulate(
            &sc,
            "stop",
            &mut Script(0, vec![(1, vec!["scale-in"]), (2, vec!["stop"])]),
            &RunOptions::default(),
        );
        assert!((stopped.report.min_availability_percent - 100.0 * 2.0 / 3.0).abs() < 0.01, "{:?}", stopped.report);
        let last = stopped.timeline.last().expect("samples").availability;
        assert_eq!(last, 100.0, "the dip ends when the replacement is healthy");
    }
}

/// Issue [10]: the scenario extensions reach placement: GPU tasks only where GPUs are free,
/// awsvpc tasks only while an instance has an ENI attachment point (m5.large: 2 without
/// trunking), UDP ports never twice on one instance, required attributes only where present.
#[test]
fn gpus_enis_udp_ports_and_required_attributes_limit_placement() {
    let text = "name: facts\nduration: 10m\ngroups:\n  - {name: gpu, instance_type: m5.large, desired: 1, gpus: 2}\n  - {name: plain, instance_type: m5.large, desired: 2}\nservices:\n  - {name: ml, desired: 3, cpu: 256, memory: 512, gpus: 1}\n  - {name: vpc, desired: 6, cpu: 128, memory: 128, network_mode: awsvpc}\n  - {name: dns, desired: 4, cpu: 128, memory: 128, udp_ports: [53]}\n  - {name: picky, desired: 2, cpu: 128, memory: 128, requires_attributes: [\"ecs.instance-type=m5.large\", no-such-attribute]}\n";
    let sc = Scenario::parse(text, "facts.yaml").unwrap();
    let sim = run_checked(&sc);
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    let snap = sim.snapshot();
    let gpu_node = &snap.instances.iter().find(|i| i.extra.gpus == 2).expect("the GPU instance").arn;
    let on = |svc: &str| -> Vec<String> { snap.service_tasks(svc).map(|t| t.instance_arn.clone()).collect() };
    let ml = on("ml");
    assert_eq!(ml.len(), 2, "two GPUs, three GPU tasks: one waits");
    assert!(ml.iter().all(|a| a == gpu_node));
    let vpc = on("vpc");
    assert_eq!(vpc.len(), 6, "three instances, two ENI attachment points each");
    for i in &snap.instances {
        assert!(vpc.iter().filter(|a| **a == i.arn).count() <= 2);
    }
    let dns = on("dns");
    assert_eq!(dns.len(), 3, "UDP 53 once per instance");
    assert!(on("picky").is_empty(), "no instance has no-such-attribute");
}
