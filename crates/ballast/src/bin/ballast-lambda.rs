//! `ballast-lambda`: the Lambda entry point (custom runtime `provided.al2023`). Builds the
//! clients and reads the configuration once, then serves invocations through the same run
//! as the CLI (`ballast::lambda`, docs/lambda.md).

#![forbid(unsafe_code)]

use std::sync::Arc;

use ballast::lambda::{Function, MalformedGuard};
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    ballast::logging::init_lambda();
    let function = Arc::new(Function::from_env().await);
    let handler = service_fn(move |ev: LambdaEvent<Value>| function.clone().handle(ev));
    Runtime::new(handler).layer(MalformedGuard).run().await
}
