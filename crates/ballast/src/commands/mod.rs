//! One function per command; [`dispatch`] picks it.

pub mod aws;
pub mod cluster;
pub mod demo;
pub mod simulate;
pub mod template;
pub mod twin;
pub mod validate;
pub mod variants;

use std::path::{Path, PathBuf};

use ballast_core::config::ClusterConfig;
use ballast_sim::Scenario;

use crate::cli::{BackendKind, Cli, Command};
use crate::config_file::{self, Config};
use crate::error::{AppError, Result};

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    let g = cli.global;
    refuse_inapplicable(&cli.command, &g)?;
    match cli.command {
        Command::Demo => demo::run(),
        Command::Simulate(a) => simulate::run(&a, g.config.as_deref()),
        Command::Status(a) if on_aws(&a, &g)? => aws::status(&a, &g),
        Command::Status(a) => cluster::status(&a, &g),
        Command::Plan(a) if on_aws(&a, &g)? => aws::plan(&a, &g),
        Command::Plan(a) => cluster::plan(&a, &g),
        Command::Run(a) if on_aws(&a.target, &g)? => aws::run(&a, &g),
        Command::Run(a) => cluster::run(&a, &g),
        Command::Validate(a) => validate::run(&a, g.config.as_deref()),
        Command::IamPolicy(a) => aws::iam_policy(&a, &g),
        Command::Template(a) => template::run(&a, &g),
        Command::Twin(a) => twin::run(&a),
    }
}

/// Options that mean nothing to the command are refused (exit 2), never silently ignored: an
/// operator who passes `--region` to the simulator, or `--at` to a real cluster, is told.
fn refuse_inapplicable(c: &Command, g: &crate::cli::Global) -> Result<()> {
    let aws_only = |what: &str| {
        let given: Vec<&str> = [("--region", g.region.is_some()), ("--endpoint-url", g.endpoint_url.is_some())]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect();
        if given.is_empty() {
            Ok(())
        } else {
            Err(AppError::Input(format!(
                "{} do(es) not apply to {what}: it talks to no AWS endpoint",
                given.join(" and ")
            )))
        }
    };
    let no_backend = |what: &str| match g.backend {
        Some(_) => Err(AppError::Input(format!("--backend does not apply to {what}"))),
        None => Ok(()),
    };
    let no_config = |what: &str, why: &str| match g.config {
        Some(_) => Err(AppError::Input(format!("--config does not apply to {what}: {why}"))),
        None => Ok(()),
    };
    match c {
        Command::Demo => {
            aws_only("demo")?;
            no_backend("demo")?;
            no_config("demo", "it runs its own built-in scenario")
        }
        Command::Simulate(_) => {
            aws_only("simulate")?;
            no_backend("simulate (it always runs the simulator)")
        }
        Command::Validate(_) => {
            aws_only("validate")?;
            no_backend("validate")
        }
        Command::IamPolicy(_) => {
            if g.endpoint_url.is_some() {
                return Err(AppError::Input("--endpoint-url does not apply to iam-policy: it calls no API".into()));
            }
            no_backend("iam-policy")
        }
        Command::Status(a) | Command::Plan(a) | Command::Run(crate::cli::RunArgs { target: a, .. }) => {
            let sim = a.scenario.is_some() || g.backend == Some(BackendKind::Sim);
            if sim {
                aws_only("the simulator (--scenario)")
            } else if a.at.is_some() {
                Err(AppError::Input(
                    "--at applies to the simulator (--scenario): a real cluster is read as it is now".into(),
                ))
            } else {
                Ok(())
            }
        }
        Command::Template(_) => Ok(()),
        Command::Twin(_) => {
            aws_only("twin (it serves the AWS APIs; point clients at it)")?;
            no_backend("twin")?;
            no_config("twin", "it serves a scenario, not a configuration")
        }
    }
}

/// Whether a cluster command goes to AWS: `--backend aws`, or no backend and no scenario.
fn on_aws(a: &crate::cli::ClusterArgs, g: &crate::cli::Global) -> Result<bool> {
    match (g.backend, &a.scenario) {
        (Some(BackendKind::Aws), Some(_)) => {
            Err(AppError::Input("--scenario goes with --backend sim, not --backend aws".into()))
        }
        (Some(BackendKind::Aws), None) | (None, None) => Ok(true),
        (Some(BackendKind::Sim), None) => Err(AppError::Input(
            "--backend sim needs --scenario FILE (the simulated cluster; see SPEC.md, Scenario format v1)".into(),
        )),
        (_, Some(_)) => Ok(false),
    }
}

/// Loads a scenario, mapping errors to exit 2.
pub fn load_scenario(path: &Path) -> Result<Scenario> {
    Scenario::load(path).map_err(|e| AppError::Input(e.to_string()))
}

/// The configuration file to use: `--config`, else `./ballast.yaml` if present.
pub fn config_path(given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_path_buf).or_else(|| {
        let p = PathBuf::from("ballast.yaml");
        p.exists().then_some(p)
    })
}

/// The loaded configuration, if any.
pub fn load_config(given: Option<&Path>) -> Result<Option<Config>> {
    let env = config_file::env_settings()?;
    config_path(given).map(|p| config_file::load(&p, &env)).transpose()
}

/// The rebalance configuration for a simulated cluster: the config file's entry for the
/// scenario's cluster if there is one, else the scenario's `controller.config`; seed 000's
/// environment variables apply under both.
pub fn sim_config(sc: &Scenario, given: Option<&Path>) -> Result<ClusterConfig> {
    // A simulation runs the scenario as written unless told otherwise: ./ballast.yaml (meant
    // for real clusters) is read only when --config names it.
    if given.is_none() && Path::new("ballast.yaml").exists() {
        crate::errln!(
            "note: ./ballast.yaml is not read for a simulation (the scenario's controller.config is); pass --config ballast.yaml to use it"
        );
    }
    let cfg = match given {
        Some(p) => load_config(Some(p))?,
        None => None,
    };
    if let Some(cfg) = cfg {
        if let Some(c) = cfg.clusters.get(&sc.cluster) {
            check_against_scenario(sc, c)?;
            return Ok(c.clone());
        }
        crate::errln!(
            "note: --config names no cluster `{}` (the scenario's); the scenario's controller.config is used",
            sc.cluster
        );
    }
    let env = config_file::env_settings()?;
    let c = ballast_core::config::validate_cluster(&sc.controller.config, &env)
        .map_err(|m| AppError::Input(format!("scenario {}: controller.config.{m}", sc.name)))?;
    check_against_scenario(sc, &c)?;
    Ok(c)
}

/// What a simulated cluster can check before it runs: the autoscale group is one of the
/// scenario's groups, and each autoscaled service is a replica service of the scenario (a
/// DAEMON service has no desired count to scale). On AWS the same refusals happen at run
/// time, per service.
fn check_against_scenario(sc: &Scenario, c: &ClusterConfig) -> Result<()> {
    let Some(a) = &c.autoscale else { return Ok(()) };
    let bad = |m: String| Err(AppError::Input(format!("scenario {}: autoscale.{m}", sc.name)));
    if !sc.groups.iter().any(|g| g.name == a.group) {
        return bad(format!("autoscale_group: `{}` is not a group of the scenario", a.group));
    }
    for name in a.services.keys() {
        match sc.services.iter().find(|s| &s.name == name) {
            None => return bad(format!("services.{name}: not a service of the scenario")),
            Some(s) if s.daemon => {
                return bad(format!(
                    "services.{name}: a DAEMON service runs one task per instance and has no desired count to scale"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}
