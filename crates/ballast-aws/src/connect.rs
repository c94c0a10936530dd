//! Building the clients: the standard credential chain (environment, profile, web identity,
//! the ECS container and EC2 instance metadata endpoints, the Lambda environment), the
//! Region from `--region` or the chain, `--endpoint-url` for any AWS-compatible endpoint (a
//! local emulator), and the retry and timeout settings every call runs under.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::calls::{CallLog, CountCalls};
use crate::{AwsBackend, Clients};

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Region (else `AWS_REGION` / the profile).
    pub region: Option<String>,
    /// Endpoint for every service (else AWS's own).
    pub endpoint_url: Option<String>,
}

/// Attempts per call (the SDK's standard retry mode: exponential backoff with jitter).
pub const MAX_ATTEMPTS: u32 = 3;
/// One attempt may take this long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// One operation, all attempts and backoff included, may take this long.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Opening a connection may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The shared SDK configuration.
pub async fn sdk_config(opts: &AwsOptions) -> SdkConfig {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(u) = &opts.endpoint_url {
        loader = loader.endpoint_url(u.clone());
    }
    loader.load().await
}

/// The three clients, each counting its calls into `log`.
pub fn clients(cfg: &SdkConfig, log: &Arc<CallLog>) -> Clients {
    let count = CountCalls(log.clone());
    Clients {
        ecs: aws_sdk_ecs::Client::from_conf(aws_sdk_ecs::config::Builder::from(cfg).interceptor(count.clone()).build()),
        autoscaling: aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(cfg).interceptor(count.clone()).build(),
        ),
        cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::config::Builder::from(cfg).interceptor(count.clone()).build(),
        ),
        appscaling: aws_sdk_applicationautoscaling::Client::from_conf(
            aws_sdk_applicationautoscaling::config::Builder::from(cfg).interceptor(count).build(),
        ),
    }
}

fn valid_region(r: &str) -> bool {
    !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A backend on a runtime of its own (the CLI). Fails only if no Region can be found.
pub fn connect(opts: &AwsOptions) -> Result<AwsBackend, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    if let Some(r) = &opts.region
        && !valid_region(r)
    {
        return Err(format!("--region {r:?} is not a Region name (like us-east-1)"));
    }
    let cfg = rt.block_on(sdk_config(opts));
    match cfg.region().map(|r| r.as_ref().to_string()) {
        None => return Err("no AWS Region: pass --region or set AWS_REGION (or a region in your AWS profile)".into()),
        Some(r) if r.is_empty() => {
            return Err("no AWS Region: AWS_REGION is empty; pass --region or set AWS_REGION".into());
        }
        Some(r) if !valid_region(&r) => {
            return Err(format!("the AWS Region {r:?} is not a Region name (like us-east-1)"));
        }
        Some(_) => {}
    }
    let log = Arc::new(CallLog::default());
    let clients = clients(&cfg, &log);
    Ok(AwsBackend::with_rt(crate::Rt::Owned(rt), clients, log))
}
