//! Seed 001 as published (aws-samples/ecs-refarch-task-rebalancing, the article's
//! `ecs-task-rebalancer.py`): a Lambda function on every "ECS Container Instance State
//! Change" event of the cluster.
//!
//! Each event: describe the event's container instance; if it shows 0 running and 0 pending
//! tasks and its agent is connected (its status is not checked), redeploy every service of
//! the cluster at once, daemons included, without waiting. The services are listed once and
//! described in one DescribeServices call, which ECS refuses above 10 services (the run then
//! fails and nothing is redeployed). Deviation, named in docs/baselines.md: each service is
//! redeployed with `forceNewDeployment` (what its users asked for, and the same placement
//! effect) instead of registering a copy of its task definition; `paginate=true` lists and
//! describes services in pages and batches, as the users' fix does. The counts are the
//! event's: the simulated scheduler places a joining instance's daemon task in the instant
//! it registers, so the function's DescribeContainerInstances (made and counted) would always
//! lose a race it wins often on AWS, where the function and the scheduler both take a second
//! or so.

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError};
use ballast_core::event::InstanceStateChange;
use ballast_sim::Controller;

use super::{Tunable, boolean, unknown};

/// The published behaviour (`paginate: false`).
#[derive(Debug, Clone, Default)]
pub struct RedeployOnJoin {
    /// List and describe services in pages and batches of 10 (the users' fix); the
    /// published code fails above 10 services.
    pub paginate: bool,
}

impl Tunable for RedeployOnJoin {
    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "paginate" => self.paginate = boolean(key, v)?,
            _ => return Err(unknown(key, &["paginate"])),
        }
        Ok(())
    }
}

impl Controller for RedeployOnJoin {
    fn on_tick(&mut self, _: &mut dyn Backend, _: &str) -> Result<(), BackendError> {
        Ok(())
    }

    fn on_instance_event(
        &mut self,
        b: &mut dyn Backend,
        cluster: &str,
        ev: &InstanceStateChange,
    ) -> Result<(), BackendError> {
        if b.instance(cluster, &ev.container_instance_arn)?.is_none() {
            return Ok(());
        }
        if ev.running_tasks_count != 0 || ev.pending_tasks_count != 0 || !ev.agent_connected {
            return Ok(());
        }
        let services = b.services(cluster)?;
        if services.len() > 10 && !self.paginate {
            return Err(BackendError::Invalid {
                operation: "DescribeServices".into(),
                message: format!("{} services in one call; ECS takes at most 10", services.len()),
            });
        }
        for s in &services {
            b.apply(
                cluster,
                &Action::ForceNewDeployment { service: s.name.clone(), reason: "redeploy-on-join".into() },
            )?;
        }
        Ok(())
    }
}
