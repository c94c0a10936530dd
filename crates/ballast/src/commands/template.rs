//! `ballast template`: the CloudFormation template of the Lambda deployment for a
//! configuration. The template is `deploy/template.yaml` (compiled in) with three places
//! filled: the role's ballast policy, exactly [`super::aws::policy_for`]'s statements with
//! ARNs through `Fn::Sub` (so the role grants what `ballast iam-policy --config` prints for
//! the same configuration, no more); the CodeKey default (the package's content-named key);
//! and whether Spot warnings reach the function (when a cluster has a spot_fallback section).
//! `deploy/template.yaml` itself is the output for no configuration (clusters found by tag),
//! which a test keeps true.

use crate::cli::{Global, TemplateArgs};
use crate::error::{AppError, Result};

/// The template source.
pub const SOURCE: &str = include_str!("../../../../deploy/template.yaml");

/// Fills the template: `statements` (a YAML list, indented for the policy document),
/// the CodeKey default, and the SpotWarnings default.
pub fn fill(statements: &str, code_key: &str, spot_warnings: bool) -> String {
    let mut out = String::with_capacity(SOURCE.len() + statements.len());
    let mut skipping = false;
    for line in SOURCE.lines() {
        let t = line.trim_start();
        if t == "# BALLAST:END-POLICY" {
            skipping = false;
        }
        if skipping {
            continue;
        }
        if line.ends_with("# BALLAST:CODE-KEY") {
            out.push_str(&format!("    Default: {code_key} # BALLAST:CODE-KEY\n"));
            continue;
        }
        if line.ends_with("# BALLAST:SPOT-WARNINGS") {
            out.push_str(&format!("    Default: \"{spot_warnings}\" # BALLAST:SPOT-WARNINGS\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if t == "# BALLAST:BEGIN-POLICY" {
            out.push_str(statements);
            skipping = true;
        }
    }
    out
}

/// An S3 object key as the template may carry it: 1 to 1024 characters, none of them a
/// blank, `#`, a quote or a control character (they would need YAML quoting or break URLs).
fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && key.chars().all(|c| !c.is_control() && !c.is_whitespace() && !"#'\"{}[],&*!|>%@`".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AppError::Input(format!(
            "--code-key {key:?}: an S3 key of letters, digits and / . _ - (e.g. ballast-lambda-0123abcd.zip)"
        )))
    }
}

/// `ballast template [--config FILE|DIR] [--code-key KEY]`: prints the template.
pub fn run(a: &TemplateArgs, g: &Global) -> Result<()> {
    check_key(&a.code_key)?;
    if g.region.is_some() || g.endpoint_url.is_some() || g.backend.is_some() {
        return Err(AppError::Input(
            "template takes no --region, --endpoint-url or --backend: the template is for any Region (its ARNs use AWS::Region and AWS::Partition)".into(),
        ));
    }
    let cfg = super::load_config(g.config.as_deref())?;
    let p = super::aws::policy_for(cfg.as_ref(), None, None, None).for_template();
    let spot = cfg.as_ref().is_some_and(|c| c.clusters.values().any(|c| c.spot_fallback.is_some()));
    let text = fill(&ballast_aws::iam::template_statements(&p, 14), &a.code_key, spot);
    crate::out!("{text}");
    Ok(())
}
