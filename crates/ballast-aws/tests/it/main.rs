//! The adapter's integration tests: the HTTP metric client against a real local server, and
//! the SDK calls against `aws-smithy-mocks`.

mod http;
mod mocks;
