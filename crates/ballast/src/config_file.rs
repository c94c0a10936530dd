//! `ballast.yaml`: `clusters: {<name>: {rebalance: …, autoscale: …, spot_fallback: …}}`,
//! parsed strictly (unknown keys are errors with file:line:col) and validated per cluster.

use std::collections::BTreeMap;
use std::path::Path;

use ballast_core::autoscale::Substituted;
use ballast_core::config::{ClusterConfig, EnvSettings, RawClusterConfig, validate_cluster};
use serde::Deserialize;

use crate::error::{AppError, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    clusters: BTreeMap<String, RawClusterConfig>,
    discover: Option<Discover>,
}

/// Clusters that opt in with a tag (`discover:` in `ballast.yaml`). They run with the
/// defaults (and seed 000's environment variables).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discover {
    /// The tag key (default `ballast:enabled`).
    #[serde(default = "default_tag")]
    pub tag: String,
    /// The tag value (default `true`; `null` = any value).
    #[serde(default = "default_value")]
    pub value: Option<String>,
}

fn default_tag() -> String {
    DEFAULT_TAG.into()
}

fn default_value() -> Option<String> {
    Some("true".into())
}

/// The opt-in tag key used when no cluster is named anywhere.
pub const DEFAULT_TAG: &str = "ballast:enabled";

impl Default for Discover {
    fn default() -> Self {
        Discover { tag: default_tag(), value: default_value() }
    }
}

/// A validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Per cluster, in name order.
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// Clusters found by tag, if asked for.
    pub discover: Option<Discover>,
}

/// Seed 000's environment variables from the process environment.
pub fn env_settings() -> Result<EnvSettings> {
    EnvSettings::from_lookup(&|k: &str| std::env::var(k).ok()).map_err(AppError::Input)
}

fn position(text: &str, err: &serde_saphyr::Error) -> (u64, u64, String) {
    let loc = err.location();
    let msg = err.without_snippet().to_string();
    let msg = ballast_sim::scenario::with_suggestion(msg.split(" at line ").next().unwrap_or(&msg));
    let (mut line, mut col) = (loc.map_or(0, |l| l.line()), loc.map_or(0, |l| l.column()));
    if let Some(field) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next())
        && let Some((l, c)) = ballast_sim::scenario::locate_key(text, field, line)
    {
        (line, col) = (l, c);
    }
    // A type error names no field: name it from the position (`clusters.prod.min: invalid u32`).
    let field = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()).map(str::to_string);
    let msg = match (ballast_sim::scenario::key_path_at(text, line, col), field) {
        // An unknown key is named by the message; the path is where it stands.
        (Some(path), Some(f)) => match path.rsplit_once('.') {
            Some((parent, last)) if last == f => format!("{parent}: {msg}"),
            _ if path == f => msg,
            _ => format!("{path}: {msg}"),
        },
        (Some(path), None) => format!("{path}: {msg}"),
        (None, _) => msg,
    };
    (line, col, msg)
}

/// Looks a `%(VAR)` name up (the process environment, or a test's table).
pub type Vars<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The process environment as [`Vars`].
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `%(VAR)` substitution (seed 003's syntax), before parsing.
fn substituted(text: &str, file: &str, vars: &Vars) -> Result<Substituted> {
    ballast_core::autoscale::substitute(text, vars).map_err(|(name, l, c)| {
        AppError::Input(format!(
            "{file}:{l}:{c}: %({name}): the environment variable {name} is not set; set it or remove the reference"
        ))
    })
}

/// An input error whose message carries no substituted value (see [`Substituted::scrub`]).
fn scrubbed(subs: &Substituted, message: String) -> AppError {
    AppError::Input(subs.scrub(&message))
}

fn locate(text: &str, file: &str, anchor: Option<&str>, m: &str) -> String {
    let key = m.split(':').next().unwrap_or("").rsplit('.').next().unwrap_or("");
    let key = key.split('[').next().unwrap_or(key);
    let start = anchor.and_then(|a| ballast_sim::scenario::locate_key(text, a, 1)).map_or(1, |(l, _)| l);
    let (l, c) = ballast_sim::scenario::locate_key(text, key, start).unwrap_or((start, 1));
    format!("{file}:{l}:{c}: {m}")
}

/// At most this many problems are listed in one error.
pub const MAX_PROBLEMS: usize = 20;

/// Problems as one message: one per line, at most [`MAX_PROBLEMS`], with a count of the rest.
fn listed(mut problems: Vec<String>) -> String {
    let more = problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    let mut out = problems.join("\n");
    if more > 0 {
        out.push_str(&format!("\n(and {more} more)"));
    }
    out
}

/// Parses and validates configuration text; `file` names it in errors.
pub fn parse(text: &str, file: &str, env: &EnvSettings) -> Result<Config> {
    parse_with(text, file, env, &process_env)
}

/// [`parse`] with `%(VAR)` values from `vars`.
pub fn parse_with(text: &str, file: &str, env: &EnvSettings, vars: &Vars) -> Result<Config> {
    let subs = substituted(text, file, vars)?;
    let text = &subs.text;
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
        let (l, c, m) = position(text, &e);
        scrubbed(&subs, format!("{file}:{l}:{c}: {m} (see docs/configuration.md)"))
    })?;
    let mut clusters = BTreeMap::new();
    // Every cluster is checked: all their problems at once (up to a limit), not one a run.
    let mut problems = Vec::new();
    for (name, entry) in raw.clusters {
        match validate_cluster(&entry, env) {
            Ok(cfg) => {
                clusters.insert(name, cfg);
            }
            Err(m) => problems.push(subs.scrub(&locate(text, file, Some(&name), &format!("clusters.{name}.{m}")))),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Input(listed(problems)));
    }
    if clusters.is_empty() && raw.discover.is_none() {
        return Err(AppError::Input(format!(
            "{file}: names no cluster and no `discover:` tag; add `clusters: {{<name>: {{}}}}` or `discover: {{tag: {DEFAULT_TAG}}}` (see docs/configuration.md)"
        )));
    }
    Ok(Config { clusters, discover: raw.discover })
}

/// Why the configured clusters could not be found.
#[derive(Debug)]
pub enum ClustersError {
    /// The environment's seed 000 variables are bad.
    Input(String),
    /// Listing the tagged clusters failed.
    Discovery(String),
}

/// Lists the clusters carrying a tag (key, value).
pub type Discoverer<'a> = dyn FnMut(&str, Option<&str>) -> std::result::Result<Vec<String>, String> + 'a;

/// The clusters a configuration (or its absence: every cluster tagged
/// `ballast:enabled=true`) asks for: the named ones with their entries, plus, with a
/// `discover:` section, every tagged cluster with the defaults; only `only`, when given.
/// `discover` lists the clusters carrying a tag (key, value).
pub fn configured_clusters(
    cfg: Option<&Config>,
    only: Option<&str>,
    discover: &mut Discoverer,
) -> std::result::Result<BTreeMap<String, ClusterConfig>, ClustersError> {
    let default_discover = Discover::default();
    let (named, disc) = match cfg {
        Some(c) => (c.clusters.clone(), c.discover.as_ref()),
        None => (BTreeMap::new(), Some(&default_discover)),
    };
    let mut out: BTreeMap<String, ClusterConfig> =
        named.into_iter().filter(|(n, _)| only.is_none_or(|o| o == n)).collect();
    if let Some(d) = disc
        && (only.is_none() || out.is_empty())
    {
        let env = env_settings().map_err(|e| ClustersError::Input(e.to_string()))?;
        let defaults = ClusterConfig::defaults(&env).map_err(ClustersError::Input)?;
        let found = discover(&d.tag, d.value.as_deref())
            .map_err(|e| ClustersError::Discovery(format!("finding clusters tagged {}: {e}", d.tag)))?;
        for n in found.into_iter().filter(|n| only.is_none_or(|o| o == n)) {
            out.entry(n).or_insert_with(|| defaults.clone());
        }
    }
    Ok(out)
}

/// One seed 003 cluster definition (`<cluster>.yml`): the autoscale job alone, as
/// ecs-autoscale ran it (the drop-in: rebalance stays off for these clusters).
pub fn parse_definition(text: &str, file: &str, env: &EnvSettings) -> Result<ClusterConfig> {
    parse_definition_with(text, file, env, &process_env)
}

/// [`parse_definition`] with `%(VAR)` values from `vars`.
pub fn parse_definition_with(text: &str, file: &str, env: &EnvSettings, vars: &Vars) -> Result<ClusterConfig> {
    let subs = substituted(text, file, vars)?;
    let text = &subs.text;
    let raw: ballast_core::autoscale::RawAutoscale = serde_saphyr::from_str(text).map_err(|e| {
        let (l, c, m) = position(text, &e);
        scrubbed(&subs, format!("{file}:{l}:{c}: {m} (a seed 003 cluster definition; see docs/autoscale.md)"))
    })?;
    let autoscale = ballast_core::autoscale::AutoscaleConfig::from_raw(&raw)
        .map_err(|m| scrubbed(&subs, locate(text, file, None, &m)))?;
    let mut rebalance = ballast_core::config::RebalanceConfig::from_raw(None, env).map_err(AppError::Input)?;
    rebalance.enabled = false;
    Ok(ClusterConfig { rebalance, spot_fallback: None, autoscale })
}

/// Loads `path`: a `ballast.yaml` file, or a directory of seed 003 `<cluster>.yml` files
/// (the file name, less `.yml`/`.yaml`, is the cluster's name).
pub fn load(path: &Path, env: &EnvSettings) -> Result<Config> {
    if path.is_dir() {
        let mut clusters = BTreeMap::new();
        let entries = std::fs::read_dir(path)
            .map_err(|e| AppError::Input(format!("{}: cannot read the directory: {e}", path.display())))?;
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        let mut problems = Vec::new();
        for f in files {
            let (Some(stem), Some(ext)) =
                (f.file_stem().and_then(|s| s.to_str()), f.extension().and_then(|s| s.to_str()))
            else {
                continue;
            };
            if ext != "yml" && ext != "yaml" {
                continue;
            }
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: cannot read: {e}", f.display()));
                    continue;
                }
            };
            match parse_definition(&text, &f.display().to_string(), env) {
                Ok(c) => {
                    clusters.insert(stem.to_string(), c);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        if !problems.is_empty() {
            return Err(AppError::Input(listed(problems)));
        }
        if clusters.is_empty() {
            return Err(AppError::Input(format!(
                "{}: holds no <cluster>.yml definition (seed 003's format; see docs/autoscale.md)",
                path.display()
            )));
        }
        return Ok(Config { clusters, discover: None });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::Input(format!("{}: cannot read the configuration: {e}", path.display())))?;
    parse(&text, &path.display().to_string(), env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_locates_errors() {
        let env = EnvSettings::default();
        let c = parse("clusters:\n  shop:\n    rebalance: {cov_percent: 10, method: drain}\n", "b.yaml", &env).unwrap();
        assert_eq!(c.clusters["shop"].rebalance.cov_percent, 10.0);
        let e = parse("clusters:\n  shop:\n    rebalance:\n      covpercent: 10\n", "b.yaml", &env).unwrap_err();
        assert!(e.to_string().starts_with("b.yaml:4:7:"), "{e}");
        let e = parse("clusters:\n  shop:\n    rebalance:\n      method: shuffle\n", "b.yaml", &env).unwrap_err();
        assert!(e.to_string().starts_with("b.yaml:4:") && e.to_string().contains("rebalance.method"), "{e}");
        let e = parse("clusters:\n  shop:\n    autoscale: {}\n", "b.yaml", &env).unwrap_err();
        assert!(e.to_string().contains("autoscale.autoscale_group: required"), "{e}");
        // Two jobs never size one group.
        let text = "clusters:\n  shop:\n    spot_fallback: {fleet_request_id: spot, on_demand_group: od}\n    autoscale:\n      autoscale_group: od\n";
        let e = parse(text, "b.yaml", &env).unwrap_err().to_string();
        assert!(e.starts_with("b.yaml:5:") && e.contains("also spot_fallback.on_demand_group"), "{e}");
        assert!(parse(&text.replace("group: od\n", "group: spot\n"), "b.yaml", &env).is_ok());
    }
}
