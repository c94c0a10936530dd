//! SDK errors mapped onto [`BackendError`], so that the executor's retry and safety rules
//! treat a real API exactly as they treat the simulator.
//!
//! The SDK has already retried transient faults (standard mode, 3 attempts with backoff)
//! when an error reaches here. The message keeps the SDK's whole error chain
//! (`DisplayErrorContext`); credentials never appear in SDK error text.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use ballast_core::backend::BackendError;

/// Error codes that mean "slow down".
const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
];

/// Error codes that mean the target is gone.
const NOT_FOUND_CODES: &[&str] = &[
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "TargetNotFoundException",
    "ResourceNotFoundException",
    "ResourceNotFound",
];

/// Error codes that mean the caller may not.
const DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
];

/// Auto Scaling's normal refusals.
const CONFLICT_CODES: &[&str] = &["ScalingActivityInProgress", "ScalingActivityInProgressFault", "ResourceContention"];

/// Maps one SDK error of `operation`.
pub fn map<E>(operation: &str, err: SdkError<E, HttpResponse>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let op = operation.to_string();
    let message = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) => BackendError::Timeout { operation: op },
        SdkError::DispatchFailure(d) if d.is_timeout() => BackendError::Timeout { operation: op },
        SdkError::DispatchFailure(_)
            if message.contains("loading credentials") || message.contains("no credentials") =>
        {
            BackendError::Denied {
                operation: op,
                message: "no usable AWS credentials: the standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
                          AWS_PROFILE and ~/.aws, web identity, the ECS container or EC2 instance role) found none"
                    .into(),
            }
        }
        SdkError::DispatchFailure(d) if d.is_io() || d.is_other() => {
            BackendError::Network { operation: op, message: cause_chain(&err) }
        }
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            BackendError::Server { operation: op, message: cause_chain(&err) }
        }
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("");
            let text = ctx.err().message().unwrap_or("").to_string();
            let status = ctx.raw().status().as_u16();
            let detail = if text.is_empty() { code.to_string() } else { format!("{code}: {text}") };
            if THROTTLE_CODES.contains(&code) || status == 429 {
                BackendError::Throttled { operation: op }
            } else if NOT_FOUND_CODES.contains(&code) || text.to_ascii_lowercase().contains("not found") {
                BackendError::NotFound { operation: op, what: detail }
            } else if DENIED_CODES.contains(&code) || status == 403 {
                BackendError::Denied { operation: op, message: detail }
            } else if CONFLICT_CODES.contains(&code) {
                BackendError::Conflict { operation: op, message: detail }
            } else if status >= 500 || code == "ServerException" || code == "InternalFailure" {
                BackendError::Server { operation: op, message: detail }
            } else {
                BackendError::Invalid { operation: op, message: detail }
            }
        }
        _ => BackendError::Invalid { operation: op, message },
    }
}

/// An error's causes in one line, each once, without the SDK's debug dump: `tcp connect
/// error: Connection refused (os error 111)`.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = at {
        let text = e.to_string();
        // Generic wrappers ("dispatch failure", "io error", "client error (Connect)") say
        // less than what they wrap; keep the innermost few.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        at = e.source();
    }
    let keep = parts.len().saturating_sub(2);
    parts[keep..].join(": ")
}

/// `.map_err(errors::to(OP))`.
pub fn to<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| map(operation, e)
}

/// An ECS `failures` entry turned into an error (`MISSING` means the target vanished).
pub fn failure(operation: &str, arn: Option<&str>, reason: Option<&str>, detail: Option<&str>) -> BackendError {
    let what = format!(
        "{} ({}{})",
        arn.unwrap_or("?"),
        reason.unwrap_or("?"),
        detail.map(|d| format!(": {d}")).unwrap_or_default()
    );
    match reason {
        Some("MISSING") => BackendError::NotFound { operation: operation.to_string(), what },
        _ => BackendError::Invalid { operation: operation.to_string(), message: what },
    }
}
