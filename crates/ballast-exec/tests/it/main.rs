//! Integration tests of the executor and the orchestration on the simulator: ballast's runs and
//! the baselines, in process (no AWS SDK, no binary).

mod all_jobs;
mod dry_run;
mod ignore;
mod jobs;
mod overlap;
mod props;
mod protection;
mod support;
