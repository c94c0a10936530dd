//! Integration tests: the real `ballast` binary, run as a user would.

mod autoscale;
mod aws;
mod cli;
mod contract;
mod deploy;
mod fuzz;
mod lambda;
mod own;
mod support;
mod twin;
