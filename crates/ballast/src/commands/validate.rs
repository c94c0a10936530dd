//! `ballast validate`: the configuration (and a scenario), exit 2 with file:line:col.

use crate::cli::ValidateArgs;
use crate::error::{AppError, Result};

/// The command.
pub fn run(a: &ValidateArgs, config: Option<&std::path::Path>) -> Result<()> {
    let env = crate::config_file::env_settings()?;
    let mut checked = Vec::new();
    let mut loaded = None;
    if let Some(path) = super::config_path(config) {
        let c = crate::config_file::load(&path, &env)?;
        loaded = Some(c.clone());
        checked.push(format!(
            "{}: {} cluster(s): {}",
            path.display(),
            c.clusters.len(),
            c.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut warnings = Vec::new();
    if let Some(s) = &a.scenario {
        let sc = super::load_scenario(s)?;
        let own = ballast_core::config::validate_cluster(&sc.controller.config, &env)
            .map_err(|m| AppError::Input(format!("{}: controller.config.{m}", s.display())))?;
        // Names that match nothing in the scenario are most likely typos: say so.
        let cfg = match loaded.as_ref() {
            Some(c) => match c.clusters.get(&sc.cluster) {
                Some(entry) => entry.clone(),
                None => {
                    let hint = suggest(&sc.cluster, c.clusters.keys().map(String::as_str));
                    warnings.push(format!(
                        "the configuration names no cluster `{}` (the scenario's), so the scenario's controller.config applies{hint}",
                        sc.cluster
                    ));
                    own
                }
            },
            None => own,
        };
        let services: Vec<&str> = sc.services.iter().map(|x| x.name.as_str()).collect();
        for name in &cfg.rebalance.exclude_services {
            if !services.contains(&name.as_str()) {
                let hint = suggest(name, services.iter().copied());
                warnings.push(format!("rebalance.exclude_services: `{name}` is no service of the scenario{hint}"));
            }
        }
        if let Some(au) = &cfg.autoscale {
            for name in au.services.keys() {
                if !services.contains(&name.as_str()) {
                    let hint = suggest(name, services.iter().copied());
                    warnings.push(format!("autoscale.services: `{name}` is no service of the scenario{hint}"));
                }
            }
            let groups: Vec<&str> = sc.groups.iter().map(|g| g.name.as_str()).collect();
            if !groups.contains(&au.group.as_str()) {
                let hint = suggest(&au.group, groups.iter().copied());
                warnings.push(format!("autoscale_group: `{}` is no group of the scenario{hint}", au.group));
            }
        }
        checked.push(format!(
            "{}: scenario {} ({} groups, {} services, {} events)",
            s.display(),
            sc.name,
            sc.groups.len(),
            sc.services.len(),
            sc.events.len()
        ));
    }
    if checked.is_empty() {
        return Err(AppError::Input(
            "nothing to validate: give --config FILE (or have ./ballast.yaml) and/or --scenario FILE".into(),
        ));
    }
    for c in checked {
        crate::outln!("ok: {c}");
    }
    for w in warnings {
        crate::errln!("warning: {w}");
    }
    Ok(())
}

/// "; did you mean `x`?" when a name close to `name` exists.
fn suggest<'a>(name: &str, among: impl IntoIterator<Item = &'a str>) -> String {
    ballast_sim::scenario::did_you_mean(name, among).map_or(String::new(), |b| format!("; did you mean `{b}`?"))
}
