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
