//! Logs go to stderr through `tracing`: text or JSON (`--log-format`), level from
//! `BALLAST_LOG` (default `warn`; the AWS SDK's own crates log at `error` unless
//! `BALLAST_LOG` names them, since a missing credential source is expected while the chain
//! searches). Nothing secret is ever put in a log field.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

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
