//! ballast on generated scenarios: whatever happens, it loses nothing, leaves nothing
//! DRAINING or surged, costs no service more than its health budget, and the simulator's
//! invariants hold at every step.

use ballast::policies::Ballast;
use ballast_core::config::{ClusterConfig, RebalanceConfig};
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
        let budget = sc.services.iter().filter(|s| !s.daemon).map(|s| s.min_healthy_percent as f64).fold(100.0, f64::min);
        prop_assert!(r.min_availability_percent + 1e-9 >= budget, "availability {} below budget {budget}", r.min_availability_percent);
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
