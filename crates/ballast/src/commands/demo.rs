//! `ballast demo`: a busy cluster gains an instance; the story before and after, ballast's
//! plan, and the comparison with doing nothing and with the older tools.

use ballast_core::planner;
use ballast_sim::{Scenario, Sim};

use crate::error::{AppError, Result};
use crate::render;
use ballast_exec::baselines::PolicySpec;

/// The bundled scenario.
pub const DEMO: &str = include_str!("../../../../scenarios/demo.yaml");

/// The command.
pub fn run() -> Result<()> {
    let sc = Scenario::parse(DEMO, "scenarios/demo.yaml").map_err(|e| AppError::Runtime(e.to_string()))?;
    let cfg = super::sim_config(&sc, None)?;
    crate::outln!("ballast demo: {}\n", sc.name);
    crate::outln!("A cluster of three m5.xlarge instances, one per zone, runs an API, workers, a cache,");
    crate::outln!("a log agent on every instance and two nightly batch tasks. At 10m the Auto Scaling group");
    crate::outln!("adds an instance. ECS places nothing on it: existing tasks never move by themselves.\n");
    let mut sim = Sim::new(&sc);
    sim.advance_to(sc.last_event_at() + sc.groups[0].boot + ballast_core::duration::Millis::secs(1));
    let snap = sim.snapshot();
    crate::outln!("Before, at {}:", sim.now);
    crate::out!("{}", render::status_text(&snap));
    let p = planner::plan(&snap, &cfg.rebalance);
    crate::outln!("\nballast's plan (replacements predicted with the same placement rules the simulator uses):");
    crate::out!("{}", render::plan_text(&p, &snap));
    let runs: Vec<_> = ["ballast", "none", "drain-cov", "redeploy-on-join"]
        .iter()
        .map(|n| {
            super::simulate::run_policy(
                &sc,
                &PolicySpec::parse(n).expect("a plain name"),
                &cfg,
                None,
                false,
                Default::default(),
            )
        })
        .collect();
    let b = &runs[0];
    crate::outln!("\nAfter {} simulated with ballast:", sc.duration);
    crate::out!("{}", render::status_text(&b.sim.snapshot()));
    crate::outln!("\nThe same scenario under each policy:");
    crate::out!("{}", render::report_table(&runs.iter().map(|o| o.report.clone()).collect::<Vec<_>>()));
    crate::outln!(
        "\nballast restarted {} task(s) (lower bound {}), kept every service at {:.0}% of its desired count,",
        b.report.tasks_restarted,
        b.report.min_moves,
        b.report.min_availability_percent
    );
    crate::outln!(
        "and never touched the daemon or the standalone tasks. Try: ballast simulate --scenario {} --policy ballast,none,drain-cov,redeploy-on-join --report demo.html",
        scenario_path()
    );
    Ok(())
}

/// Where the demo's scenario can be read from wherever the command runs: the repository's
/// `scenarios/demo.yaml` when it is there (next to the sources the binary was built from,
/// or under the working directory), else a copy written to the temporary directory.
fn scenario_path() -> String {
    let here = std::path::Path::new("scenarios/demo.yaml");
    if here.exists() {
        return here.display().to_string();
    }
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/demo.yaml");
    if let Ok(p) = built.canonicalize()
        && std::fs::read_to_string(&p).is_ok_and(|t| t == DEMO)
    {
        return p.display().to_string();
    }
    let copy = std::env::temp_dir().join("ballast-demo.yaml");
    match std::fs::write(&copy, DEMO) {
        Ok(()) => copy.display().to_string(),
        Err(_) => "scenarios/demo.yaml (in the ballast repository)".into(),
    }
}
