//! Logs go to stderr through `tracing`: text or JSON (`--log-format`), level from
//! `BALLAST_LOG` (default `warn`; the AWS SDK's own crates log at `error` unless
//! `BALLAST_LOG` names them, since a missing credential source is expected while the chain
//! searches). Nothing secret is ever put in a log field.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// The Lambda function's logs: JSON lines, at the level of the function's logging settings
/// (`AWS_LAMBDA_LOG_LEVEL`: TRACE, DEBUG, INFO, WARN, ERROR, FATAL), else `BALLAST_LOG`, else
/// `info`. `AWS_LAMBDA_LOG_FORMAT=Text` gives text lines instead.
pub fn init_lambda() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().map(|l| match l.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => "info",
    });
    let filter = match level {
        Some(l) => EnvFilter::new(format!("{l},aws_config=error,aws_runtime=error,aws_smithy_runtime=error")),
        None => EnvFilter::try_from_env("BALLAST_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,aws_config=error,aws_runtime=error,aws_smithy_runtime=error")),
    };
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false);
    let _ = if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text")) {
        b.try_init()
    } else {
        b.json().with_current_span(false).try_init()
    };
}

/// Installs the subscriber once.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("BALLAST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error,aws_runtime=error,aws_smithy_runtime=error"));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().try_init(),
    };
}
