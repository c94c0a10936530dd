//! ballast on generated scenarios: whatever happens, it loses nothing, leaves nothing
//! DRAINING or surged, costs no service more than its health budget, and the simulator's
//! invariants hold at every step.

use ballast_core::config::{ClusterConfig, RebalanceConfig};
use ballast_exec::policies::Ballast;
use ballast_sim::generate::random_scenario;
use ballast_sim::{RunOptions, Scenario, Sim, simulate};
use proptest::prelude::*;

fn run(sc: &Scenario) -> Sim {
    let mut policy =
        Ballast::new(ClusterConfig { rebalance: RebalanceConfig::defaults(), spot_fallback: None, autoscale: None });
    let opts = RunOptions { check_invariants: true, ..RunOptions::default() };
    simulate(sc, "ballast", &mut policy, &opts).sim
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ballast_never_leaves_a_cluster_worse(seed in any::<u64>()) {
        let sc = Scenario::parse(&random_scenario(seed), "gen").unwrap();
        let sim = run(&sc);
        prop_assert!(sim.violations.is_empty(), "{:?}", sim.violations);
        let r = sim.report("ballast");
        prop_assert_eq!(r.tasks_lost, 0);
        prop_assert_eq!(r.left_draining, 0);
        // Each service's own budget, with availability accounted at every state change.
        for (name, a) in &r.service_availability {
            prop_assert!(a.min_percent + 1e-9 >= a.budget_percent as f64, "{name}: availability {} below its budget {}", a.min_percent, a.budget_percent);
        }
        for svc in sim.svcs.iter().filter(|s| !s.daemon) {
            prop_assert!(!svc.tags.contains_key("ballast:surge"), "{} left surged", svc.name);
            prop_assert_eq!(svc.desired, svc.scenario_desired, "{} desired changed", &svc.name);
        }
        prop_assert!(r.tasks_restarted <= 50 * (r.runs + 1));
    }
}

/// Over many generated clusters, ballast's restarts stay close to the lower bound of the
/// states it acted in (the ratio is reported by `cargo test -- --nocapture`).
#[test]
fn restarts_stay_close_to_the_bound_over_many_clusters() {
    let (mut acted, mut restarts, mut bound) = (0, 0u64, 0u64);
    for seed in 0..150u64 {
        let sc = Scenario::parse(&random_scenario(seed), "gen").unwrap();
        let mut p = Ballast::new(ClusterConfig {
            rebalance: RebalanceConfig::defaults(),
            spot_fallback: None,
            autoscale: None,
        });
        let o = simulate(&sc, "ballast", &mut p, &RunOptions::default());
        if o.report.tasks_restarted > 0 {
            acted += 1;
            restarts += o.report.tasks_restarted;
            bound += o.report.min_moves as u64;
        }
    }
    eprintln!("acted in {acted} of 150 clusters: {restarts} restarts against lower bounds summing to {bound}");
    assert!(acted > 10);
    assert!(restarts as f64 <= 1.5 * bound as f64, "{restarts} restarts vs bound {bound}");
}

/// No policy beats the lower bounds (issue [8]): over generated clusters that grow once, every
/// policy that ends at the target `min_moves` was measured against restarted at least that
/// many tasks, and no policy ever uses less capacity than `capacity_bound`. The check of "at
/// the target" is the bound's definition (`ballast_core::planner::objective::at_target`),
/// not its formula.
#[test]
fn no_policy_beats_the_lower_bounds() {
    use ballast_core::planner::objective::at_target;
    use ballast_exec::baselines::PolicySpec;
    use ballast_sim::generate::joining;

    let cfg = ClusterConfig { rebalance: RebalanceConfig::defaults(), spot_fallback: None, autoscale: None };
    let (mut checked, mut acted, mut balanced_checked) = (0, 0, 0);
    for seed in 0..60u64 {
        let sc = Scenario::parse(&joining(seed), "gen").unwrap();
        for p in
            ["ballast", "none", "drain-cov", "drain-cov:every=5m", "redeploy-on-join", "redeploy-on-join:paginate=true"]
        {
            let spec = PolicySpec::parse(p).unwrap();
            let mut ctrl = ballast_exec::policies::make(&spec, &cfg).unwrap();
            let o = simulate(&sc, p, ctrl.as_mut(), &RunOptions::default());
            let r = &o.report;
            assert!(r.instance_hours >= r.capacity_bound.instance_hours, "{p} seed {seed}: {r:?}");
            assert!(r.cost >= r.capacity_bound.cost, "{p} seed {seed}: {r:?}");
            let Some(reference) = &o.sim.acct.min_moves_state else { continue };
            acted += 1;
            if let Some(q) = r.restarts_over_bound {
                // Ended balanced (or at the targets): the bound of what it reached holds.
                assert!(
                    q >= 1.0,
                    "{p} seed {seed}: {} restarts beat the bound of what it reached: {r:?}",
                    r.tasks_restarted
                );
                balanced_checked += 1;
            }
            if r.min_moves > 0 && at_target(reference, &o.sim.snapshot()) {
                checked += 1;
                assert!(
                    r.tasks_restarted >= r.min_moves as u64,
                    "{p} seed {seed}: {} restarts beat the bound {}",
                    r.tasks_restarted,
                    r.min_moves
                );
            }
        }
    }
    eprintln!(
        "{acted} runs acted; {checked} reached the target with a positive bound; {balanced_checked} compared with the bound of what they reached"
    );
    assert!(checked >= 20, "too few runs reached the target to test the bound ({checked})");
}

/// Issue [13]: restarts on generated instance joins (`generate::joining`: 1–3 zones, 2–5
/// instances growing by 1–3, 1–4 services of mixed strategies, constraints and budgets,
/// daemons or not) against the true bound of what ballast reached: the fewest restarts to
/// balanced (`planner::exact`) where it ended balanced, `min_moves` where it ended at the
/// strategy targets only. The bound holds in every join (a ratio below 1 would be a bound
/// beaten); the distribution prints with `--nocapture` and is published in
/// docs/performance.md. Built with optimisations (`--release`, as docs/performance.md
/// measures it), the bound's search gets 20 times its default work, which proves more bounds
/// exact, and the target is asserted: the restarts at most 1.05 × the bounds' sum
/// (1.03 × when it was met). A debug build keeps the default work, so the test stays quick;
/// its bounds are weaker, never wrong, and the target is only reported.
#[test]
fn restarts_on_instance_joins_against_the_bound() {
    use ballast_sim::generate::joining;
    let (mut compared, mut restarts, mut bound, mut scheduled) = (0, 0u64, 0f64, 0f64);
    let mut worst: (f64, u64) = (0.0, 0);
    let mut ratios = Vec::new();
    for seed in 0..40u64 {
        let sc = Scenario::parse(&joining(seed), "gen").unwrap();
        let mut p = Ballast::new(ClusterConfig {
            rebalance: RebalanceConfig::defaults(),
            spot_fallback: None,
            autoscale: None,
        });
        let work = ballast_core::planner::exact::DEFAULT_BUDGET * if cfg!(debug_assertions) { 1 } else { 20 };
        let opts = RunOptions { bound_work: Some(work), scheduler_bound: true, ..RunOptions::default() };
        let r = simulate(&sc, "ballast", &mut p, &opts).report;
        eprintln!(
            "joining-{seed}: {} restarts, min_moves {}, to balanced {}{}, through the scheduler {}{}, ratio {:?}, final COV {}",
            r.tasks_restarted,
            r.min_moves,
            r.min_moves_balanced,
            if r.min_moves_balanced_exact { "" } else { "+" },
            r.min_moves_scheduled.map_or("-".to_string(), |b| b.to_string()),
            if r.min_moves_scheduled_exact || r.min_moves_scheduled.is_none() { "" } else { "+" },
            r.restarts_over_bound,
            r.final_cov_percent.count
        );
        if let Some(q) = r.restarts_over_bound {
            assert!(q >= 1.0, "joining-{seed}: {} restarts beat the bound: {r:?}", r.tasks_restarted);
            ratios.push(q);
            // Where it ended at the targets only, both compare with `min_moves`.
            let qs = r.restarts_over_scheduled_bound.unwrap_or(q);
            assert!(qs >= 1.0, "joining-{seed}: {} restarts beat the scheduler bound: {r:?}", r.tasks_restarted);
            assert!(qs <= q, "joining-{seed}: the scheduler bound is below the balanced one: {r:?}");
            scheduled += r.tasks_restarted as f64 / qs;
            compared += 1;
            restarts += r.tasks_restarted;
            bound += r.tasks_restarted as f64 / q;
            if q > worst.0 {
                worst = (q, seed);
            }
        }
    }
    ratios.sort_by(f64::total_cmp);
    let within = ratios.iter().filter(|&&q| q <= 1.05).count();
    eprintln!(
        "{compared} joins compared: {restarts} restarts against bounds summing to {bound:.0} ({:.2} ×); median {:.2} ×, \
         {within} within 1.05 ×, worst {:.2} × (joining-{}); the scheduler bounds sum to {scheduled:.0} ({:.2} ×)",
        restarts as f64 / bound.max(1.0),
        ratios.get(ratios.len() / 2).copied().unwrap_or(0.0),
        worst.0,
        worst.1,
        restarts as f64 / scheduled.max(1.0)
    );
    assert!(compared >= 20, "too few joins reached a target to compare ({compared})");
    if !cfg!(debug_assertions) {
        assert!(restarts as f64 <= 1.05 * bound, "{restarts} restarts against bounds summing to {bound:.0}");
    }
}

/// A policy that restarts only through the scheduler, at random: for its first runs it stops
/// tasks (most often on the instance running the most replica tasks) and surges services by
/// one, then puts every desired count back and does nothing more. The scheduler bound must
/// hold for it as for any such policy.
struct Shuffle {
    rng: ballast_core::rng::Rng,
    runs: usize,
    desired: std::collections::BTreeMap<String, u32>,
}

impl ballast_sim::Controller for Shuffle {
    fn on_tick(
        &mut self,
        b: &mut dyn ballast_core::backend::Backend,
        cluster: &str,
    ) -> Result<(), ballast_core::backend::BackendError> {
        use ballast_core::action::Action;
        self.runs += 1;
        let snap = b.snapshot(cluster)?;
        let replica: Vec<&ballast_core::model::Service> = snap.services.iter().filter(|s| !s.daemon).collect();
        for s in &replica {
            self.desired.entry(s.name.clone()).or_insert(s.desired);
        }
        if self.runs > 8 {
            for s in &replica {
                if s.desired != self.desired[&s.name] {
                    let desired = self.desired[&s.name];
                    b.apply(
                        cluster,
                        &Action::SetServiceDesired { service: s.name.clone(), desired, reason: "t".into() },
                    )?;
                }
            }
            return Ok(());
        }
        let tasks: Vec<&ballast_core::model::Task> =
            snap.tasks.iter().filter(|t| t.is_live() && replica.iter().any(|s| t.group == s.group())).collect();
        if tasks.is_empty() {
            return Ok(());
        }
        for _ in 0..1 + self.rng.below(2) {
            let action = match self.rng.below(4) {
                0 | 1 => {
                    let busiest = snap
                        .instances
                        .iter()
                        .max_by_key(|i| tasks.iter().filter(|t| t.instance_arn == i.arn).count())
                        .expect("instances");
                    let on: Vec<&&ballast_core::model::Task> =
                        tasks.iter().filter(|t| t.instance_arn == busiest.arn).collect();
                    let Some(t) = on.get(self.rng.below(on.len().max(1))) else { continue };
                    Action::StopTask { task_arn: t.arn.clone(), reason: "t".into() }
                }
                2 => Action::StopTask { task_arn: tasks[self.rng.below(tasks.len())].arn.clone(), reason: "t".into() },
                _ => {
                    let s = replica[self.rng.below(replica.len())];
                    let base = self.desired[&s.name];
                    let desired = if s.desired > base { base } else { base + 1 };
                    Action::SetServiceDesired { service: s.name.clone(), desired, reason: "t".into() }
                }
            };
            b.apply(cluster, &action)?;
        }
        Ok(())
    }

    fn on_instance_event(
        &mut self,
        _: &mut dyn ballast_core::backend::Backend,
        _: &str,
        _: &ballast_core::event::InstanceStateChange,
    ) -> Result<(), ballast_core::backend::BackendError> {
        Ok(())
    }
}

/// Issue [13]: the bound for policies that restart only through the scheduler
/// (`planner::exact::scheduler_bound`) holds for every such policy that ended balanced:
/// ballast's stop method, the redeploy baselines, and a policy that stops and surges at
/// random. It is at least the balanced bound wherever both were proved.
#[test]
fn no_policy_that_restarts_through_the_scheduler_beats_its_bound() {
    use ballast_exec::baselines::PolicySpec;
    use ballast_sim::generate::joining;

    let cfg = ClusterConfig { rebalance: RebalanceConfig::defaults(), spot_fallback: None, autoscale: None };
    // An eighth of the default work in debug builds: weaker bounds, never wrong ones.
    let work = ballast_core::planner::exact::DEFAULT_BUDGET / if cfg!(debug_assertions) { 8 } else { 1 };
    let opts = RunOptions { bound_work: Some(work), scheduler_bound: true, ..RunOptions::default() };
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    for seed in 0..32u64 {
        let sc = Scenario::parse(&joining(seed), "gen").unwrap();
        let mut runs: Vec<(String, ballast_sim::report::Report)> = Vec::new();
        for p in ["ballast", "redeploy-on-join", "redeploy-on-join:paginate=true"] {
            let spec = PolicySpec::parse(p).unwrap();
            let mut ctrl = ballast_exec::policies::make(&spec, &cfg).unwrap();
            runs.push((p.to_string(), simulate(&sc, p, ctrl.as_mut(), &opts).report));
        }
        let mut shuffle =
            Shuffle { rng: ballast_core::rng::Rng::new(seed ^ 0x5eed), runs: 0, desired: Default::default() };
        runs.push(("shuffle".into(), simulate(&sc, "shuffle", &mut shuffle, &opts).report));
        for (p, r) in runs {
            let Some(b) = r.min_moves_scheduled else { continue };
            assert!(b >= r.min_moves_balanced, "{p} seed {seed}: {r:?}");
            if let Some(q) = r.restarts_over_scheduled_bound {
                assert!(
                    q >= 1.0,
                    "{p} seed {seed}: {} restarts beat the scheduler bound {b}: {r:?}",
                    r.tasks_restarted
                );
                *checked.entry(p).or_default() += 1;
            }
        }
    }
    eprintln!("ended balanced and checked against the scheduler bound: {checked:?}");
    assert!(checked.get("ballast").copied().unwrap_or(0) >= 10, "{checked:?}");
    assert!(checked.get("shuffle").copied().unwrap_or(0) >= 3, "{checked:?}");
}

/// Issue [13]: on joining-1 the surges run one service after another, and in name order s1's
/// scale-in frees room in zone a that ECS then gives s2's new task, a move balance does not
/// need (7 restarts). Planned most constrained first, s2 surges onto the new instance first:
/// 5 restarts, the fewest to balanced (exact with 20 times the default work; the debug
/// build's default work proves at least 4).
#[test]
fn the_plan_order_lets_a_constrained_service_take_the_new_room_first() {
    let sc = Scenario::parse(&ballast_sim::generate::joining(1), "gen").unwrap();
    let mut p =
        Ballast::new(ClusterConfig { rebalance: RebalanceConfig::defaults(), spot_fallback: None, autoscale: None });
    let r = simulate(&sc, "ballast", &mut p, &RunOptions::default()).report;
    assert!(r.restarts_over_bound.is_some(), "ended balanced: {r:?}");
    assert!(r.tasks_restarted >= r.min_moves_balanced as u64 && r.tasks_restarted <= 5, "{r:?}");
}
