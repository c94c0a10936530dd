//! `ballast validate`: the configuration (and a scenario), exit 2 with file:line:col.

use crate::cli::ValidateArgs;
use crate::error::{AppError, Result};

/// The command.
pub fn run(a: &ValidateArgs, config: Option<&std::path::Path>) -> Result<()> {
    let env = crate::config_file::env_settings()?;
    let mut checked = Vec::new();
    if let Some(path) = super::config_path(config) {
        let c = crate::config_file::load(&path, &env)?;
        checked.push(format!(
            "{}: {} cluster(s): {}",
            path.display(),
            c.clusters.len(),
            c.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(s) = &a.scenario {
        let sc = super::load_scenario(s)?;
        ballast_core::config::validate_cluster(&sc.controller.config, &env)
            .map_err(|m| AppError::Input(format!("{}: controller.config.{m}", s.display())))?;
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
    Ok(())
}
