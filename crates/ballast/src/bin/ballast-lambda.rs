//! `ballast-lambda`: the Lambda entry point (custom runtime `provided.al2023`). Builds the
//! clients and reads the configuration once, then serves invocations through the same run
//! as the CLI (`ballast::lambda`, docs/lambda.md).

#![forbid(unsafe_code)]

use std::sync::Arc;

use ballast::lambda::{Function, MalformedGuard};
use clap::Parser;
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;

/// The variables the Lambda service sets for a custom runtime, which the runtime client needs.
const RUNTIME_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// ballast as an AWS Lambda function (custom runtime provided.al2023; package it with
/// scripts/package-lambda, deploy it with the template `ballast template` writes).
///
/// It takes no arguments: the Lambda service starts it as `bootstrap` and hands it events.
/// Configuration: BALLAST_CONFIG (the YAML text), else the file or directory
/// BALLAST_CONFIG_FILE, else ballast.yaml or ballast.d/ beside the binary
/// ($LAMBDA_TASK_ROOT), else every cluster tagged ballast:enabled=true. Seed 000's variables
/// (COV_PERCENT, DRAIN_SLEEP_TIME, DRAIN_TIMEOUT, DRAIN_MAX_INSTANCES, REBALANCE_MAX_RETRY)
/// apply. Events: the schedule, ECS container instance state changes, Spot interruption
/// warnings and rebalance recommendations, Spot PendingCapacity alarms (docs/lambda.md). To
/// run ballast from a shell, use `ballast run`.
#[derive(Debug, Parser)]
#[command(name = "ballast-lambda", version, about, long_about)]
struct Args {}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    Args::parse();
    let missing: Vec<&str> = RUNTIME_VARS.iter().copied().filter(|v| std::env::var_os(v).is_none()).collect();
    if !missing.is_empty() {
        eprintln!(
            "error: ballast-lambda runs inside AWS Lambda, which sets {}; to run ballast from a shell, use `ballast run` (ballast-lambda --help)",
            missing.join(", ")
        );
        std::process::exit(2);
    }
    ballast::logging::init_lambda();
    let function = Arc::new(Function::from_env().await);
    let handler = service_fn(move |ev: LambdaEvent<Value>| function.clone().handle(ev));
    Runtime::new(handler).layer(MalformedGuard).run().await
}
