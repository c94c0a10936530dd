//! Seed 000 as published (maginetv/ecs-task-balancer, `ecs_taskbalancer.py` and
//! `lambda.yaml`): a Lambda function on a 20-minute schedule with a 300 s timeout.
//!
//! Each run: set every DRAINING instance of the cluster ACTIVE (one call each, whoever drained
//! it: the published failure); then up to `DRAIN_MAX_INSTANCES` times: count
//! `runningTasksCount + pendingTasksCount` per ACTIVE instance (daemon and standalone tasks
//! included, instance size ignored), stop if at most one instance, at most one task, or the
//! sample COV is at most `COV_PERCENT`; else drain the busiest instance and poll it every
//! `DRAIN_SLEEP_TIME` (the last sleep cut to the time left plus 3 s) until its
//! `runningTasksCount` is at most the mean or more than `DRAIN_TIMEOUT` has passed, set it
//! ACTIVE, halve the timeout and sleep 60 s. `REBALANCE_MAX_RETRY` is counted but never
//! enforced, as published. Settings are clamped as the code does (sleep 10–30 s, timeout at
//! most 60 s, at most 3 instances, COV at most 30). The function is killed at its timeout,
//! leaving whatever it drained DRAINING until the next run.

use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError};
use ballast_core::duration::Millis;
use ballast_core::event::InstanceStateChange;
use ballast_core::metrics::spread;
use ballast_core::model::{ContainerInstance, InstanceStatus};
use ballast_sim::Controller;

use super::{Tunable, duration, number, unknown};

/// The published defaults and the template's schedule.
#[derive(Debug, Clone)]
pub struct DrainCov {
    /// The schedule (`lambda.yaml`: `rate(20 minutes)`).
    pub every: Millis,
    /// `COV_PERCENT` (code default 25; clamped to at most 30).
    pub cov_percent: f64,
    /// `DRAIN_SLEEP_TIME` (default 30 s; clamped to 10–30 s).
    pub sleep: Millis,
    /// `DRAIN_TIMEOUT` (default 45 s; at most 60 s).
    pub timeout: Millis,
    /// `DRAIN_MAX_INSTANCES` (code and template default 2; at most 3).
    pub max_instances: u32,
    /// The function's timeout (`lambda.yaml`: 300 s).
    pub lambda_timeout: Millis,
}

impl Default for DrainCov {
    fn default() -> Self {
        DrainCov {
            every: Millis::mins(20),
            cov_percent: 25.0,
            sleep: Millis::secs(30),
            timeout: Millis::secs(45),
            max_instances: 2,
            lambda_timeout: Millis::secs(300),
        }
    }
}

impl Tunable for DrainCov {
    fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "every" => self.every = duration(key, v)?,
            "cov" => self.cov_percent = number(key, v)?,
            "sleep" => self.sleep = duration(key, v)?,
            "timeout" => self.timeout = duration(key, v)?,
            "max_instances" => self.max_instances = number(key, v)? as u32,
            "lambda_timeout" => self.lambda_timeout = duration(key, v)?,
            _ => return Err(unknown(key, &["every", "cov", "sleep", "timeout", "max_instances", "lambda_timeout"])),
        }
        Ok(())
    }
}

/// The published code's clamps (`main`).
fn clamped(p: &DrainCov) -> (f64, f64, f64, u32) {
    let sleep = p.sleep.as_secs_f64().clamp(10.0, 30.0);
    let timeout = p.timeout.as_secs_f64().min(60.0);
    (sleep, timeout, p.cov_percent.min(30.0), p.max_instances.min(3))
}

fn count(i: &ContainerInstance) -> f64 {
    // runningTasksCount + pendingTasksCount (the model's running count already holds every
    // task with desiredStatus RUNNING, pending ones included, as ECS reports it now).
    i.running_tasks as f64
}

struct Run<'a> {
    b: &'a mut dyn Backend,
    cluster: &'a str,
    killed_at: Millis,
}

impl Run<'_> {
    /// The Lambda runtime kills the function at its timeout.
    fn alive(&self) -> Result<(), BackendError> {
        if self.b.now() >= self.killed_at {
            return Err(BackendError::Timeout { operation: "drain-cov (the Lambda function's 300 s timeout)".into() });
        }
        Ok(())
    }

    fn set_state(&mut self, arn: &str, status: InstanceStatus) -> Result<(), BackendError> {
        self.alive()?;
        let a = Action::SetInstanceState { instance_arns: vec![arn.to_string()], status, reason: "drain-cov".into() };
        self.b.apply(self.cluster, &a)
    }

    fn sleep(&mut self, secs: f64) -> Result<(), BackendError> {
        self.alive()?;
        let left = self.killed_at - self.b.now();
        let d = Millis((secs.max(0.0) * 1000.0) as u64);
        self.b.sleep(d.min(left))?;
        self.alive()
    }

    /// `drain_instance`: drain, poll until at most the mean or past the timeout, activate.
    fn drain(&mut self, arn: &str, mut num: f64, mean: f64, mut sleep: f64, timeout: f64) -> Result<(), BackendError> {
        self.set_state(arn, InstanceStatus::Draining)?;
        let start = self.b.now();
        while num > mean {
            // `datetime.timedelta.seconds`: whole seconds.
            let elapsed = (self.b.now() - start).as_secs() as f64;
            let remaining = timeout - elapsed;
            if sleep > remaining {
                sleep = remaining + 3.0;
            }
            if elapsed > timeout {
                break;
            }
            self.sleep(sleep)?;
            self.alive()?;
            // `describe_container_instances(...)[0]`: a vanished instance raises.
            let Some(i) = self.b.instance(self.cluster, arn)? else {
                return Err(BackendError::NotFound {
                    operation: "DescribeContainerInstances".into(),
                    what: format!("{arn} (IndexError in the published code)"),
                });
            };
            num = i.running_tasks as f64;
        }
        self.set_state(arn, InstanceStatus::Active)
    }
}

impl Controller for DrainCov {
    fn every(&self) -> Option<Millis> {
        Some(self.every)
    }

    fn on_tick(&mut self, b: &mut dyn Backend, cluster: &str) -> Result<(), BackendError> {
        let (sleep, mut timeout, cov_percent, max_instances) = clamped(self);
        let killed_at = b.now() + self.lambda_timeout;
        let mut r = Run { b, cluster, killed_at };
        // "For recovery": every DRAINING instance back to ACTIVE, whoever drained it.
        for i in r.b.instances(cluster, InstanceStatus::Draining)? {
            r.set_state(&i.arn, InstanceStatus::Active)?;
        }
        let mut drained = 0;
        loop {
            r.alive()?;
            let mut dist = r.b.instances(cluster, InstanceStatus::Active)?;
            // `sorted(..., reverse=True)` is stable: ties keep the listing order.
            dist.sort_by(|a, b| count(b).total_cmp(&count(a)));
            let vals: Vec<f64> = dist.iter().map(count).collect();
            if vals.len() <= 1 || vals.iter().sum::<f64>() <= 1.0 {
                return Ok(());
            }
            let s = spread(&vals);
            if s.cov_percent <= cov_percent {
                return Ok(());
            }
            r.drain(&dist[0].arn, vals[0], s.mean, sleep, timeout)?;
            drained += 1;
            if drained >= max_instances {
                return Ok(());
            }
            timeout /= 2.0;
            r.sleep(60.0)?;
        }
    }

    fn on_instance_event(&mut self, _: &mut dyn Backend, _: &str, _: &InstanceStateChange) -> Result<(), BackendError> {
        Ok(())
    }
}
