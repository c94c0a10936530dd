//! Carrying out every action kind against the real APIs, batched at the API's maximum
//! (UpdateContainerInstancesState and UpdateTaskProtection: 10 per call).
//!
//! Safety that belongs at the API edge:
//! - StopTask first reads the task's scale-in protection (GetTaskProtection) and refuses a
//!   protected task: ballast never stops what someone protected;
//! - ECS `failures` entries are errors (`MISSING` → [`BackendError::NotFound`]), never
//!   silently ignored;
//! - the ownership attribute targets the container instance by its short id, which ECS
//!   accepts as well as the ARN (and the emulator accepts only the short id).

use aws_sdk_ecs::types::{Attribute, ContainerInstanceStatus, TargetType};
use ballast_core::action::Action;
use ballast_core::backend::BackendError;
use ballast_core::model::{InstanceStatus, short_id};

use crate::Clients;
use crate::calls::Gate;
use crate::errors::{failure, to};

/// StopTask's reason is limited to 255 characters.
const REASON_MAX: usize = 255;

fn invalid(op: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Invalid { operation: op.to_string(), message: e.to_string() }
}

/// Applies one action. `service_arn`: the ARN a tag action targets (the service's, from the
/// last snapshot, or the cluster's).
pub async fn apply(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
    action: &Action,
    service_arn: Option<String>,
) -> Result<(), BackendError> {
    match action {
        Action::SetInstanceState { instance_arns, status, .. } => {
            set_state(c, gate, cluster, instance_arns, *status).await
        }
        Action::PutAttribute { instance_arn, name, value } => {
            gate.pass("PutAttributes").await;
            let a = attribute("PutAttributes", instance_arn, name, Some(value))?;
            let r = c.ecs.put_attributes().cluster(cluster).attributes(a).send().await;
            r.map(|_| ()).map_err(to("PutAttributes"))
        }
        Action::DeleteAttribute { instance_arn, name } => {
            gate.pass("DeleteAttributes").await;
            let a = attribute("DeleteAttributes", instance_arn, name, None)?;
            let r = c.ecs.delete_attributes().cluster(cluster).attributes(a).send().await;
            r.map(|_| ()).map_err(to("DeleteAttributes"))
        }
        Action::StopTask { task_arn, reason } => stop_task(c, gate, cluster, task_arn, reason).await,
        Action::SetServiceDesired { service, desired, .. } => {
            gate.pass("UpdateService").await;
            let r =
                c.ecs.update_service().cluster(cluster).service(service).desired_count(*desired as i32).send().await;
            r.map(|_| ()).map_err(to("UpdateService"))
        }
        Action::ForceNewDeployment { service, .. } => {
            gate.pass("UpdateService").await;
            // Not idempotent (each call starts a deployment): one attempt, without the SDK's
            // retries, which would resend it after a timeout that may have come after the
            // deployment started; the executor resends it only after throttling.
            let once = aws_sdk_ecs::config::Builder::default()
                .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled());
            let r = c
                .ecs
                .update_service()
                .cluster(cluster)
                .service(service)
                .force_new_deployment(true)
                .customize()
                .config_override(once)
                .send()
                .await;
            r.map(|_| ()).map_err(to("UpdateService"))
        }
        Action::SetTaskProtection { task_arns, protected, expires_in_minutes } => {
            for chunk in task_arns.chunks(10) {
                gate.pass("UpdateTaskProtection").await;
                let mut req = c
                    .ecs
                    .update_task_protection()
                    .cluster(cluster)
                    .set_tasks(Some(chunk.to_vec()))
                    .protection_enabled(*protected);
                if *protected {
                    req = req.expires_in_minutes((*expires_in_minutes).clamp(1, 2880) as i32);
                }
                let r = req.send().await.map_err(to("UpdateTaskProtection"))?;
                // A task that stopped meanwhile needs no protection; anything else is an error.
                if let Some(f) = r.failures().iter().find(|f| f.reason() != Some("MISSING")) {
                    return Err(failure("UpdateTaskProtection", f.arn(), f.reason(), f.detail()));
                }
            }
            Ok(())
        }
        Action::TagService { service, key, value } => {
            let arn = service_arn.ok_or_else(|| no_arn("TagResource", service))?;
            gate.pass("TagResource").await;
            let tag = aws_sdk_ecs::types::Tag::builder().key(key).value(value).build();
            let r = c.ecs.tag_resource().resource_arn(arn).tags(tag).send().await;
            r.map(|_| ()).map_err(to("TagResource"))
        }
        Action::UntagService { service, key } => {
            let arn = service_arn.ok_or_else(|| no_arn("UntagResource", service))?;
            gate.pass("UntagResource").await;
            let r = c.ecs.untag_resource().resource_arn(arn).tag_keys(key).send().await;
            r.map(|_| ()).map_err(to("UntagResource"))
        }
        Action::TagCluster { key, value } => {
            let arn = service_arn.ok_or_else(|| no_arn("TagResource", cluster))?;
            gate.pass("TagResource").await;
            let tag = aws_sdk_ecs::types::Tag::builder().key(key).value(value).build();
            let r = c.ecs.tag_resource().resource_arn(arn).tags(tag).send().await;
            r.map(|_| ()).map_err(to("TagResource"))
        }
        Action::UntagCluster { key } => {
            let arn = service_arn.ok_or_else(|| no_arn("UntagResource", cluster))?;
            gate.pass("UntagResource").await;
            let r = c.ecs.untag_resource().resource_arn(arn).tag_keys(key).send().await;
            r.map(|_| ()).map_err(to("UntagResource"))
        }
        Action::SetGroupDesired { group, desired, honor_cooldown, .. } => {
            gate.pass("SetDesiredCapacity").await;
            let r = c
                .autoscaling
                .set_desired_capacity()
                .auto_scaling_group_name(group)
                .desired_capacity(*desired as i32)
                .honor_cooldown(*honor_cooldown)
                .send()
                .await;
            r.map(|_| ()).map_err(to("SetDesiredCapacity"))
        }
        Action::SetGroupLimits { group, min, max } => {
            gate.pass("UpdateAutoScalingGroup").await;
            let r = c
                .autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(group)
                .min_size(*min as i32)
                .max_size(*max as i32)
                .send()
                .await;
            r.map(|_| ()).map_err(to("UpdateAutoScalingGroup"))
        }
        Action::TerminateInstance { ec2_instance_id, decrement, .. } => {
            gate.pass("TerminateInstanceInAutoScalingGroup").await;
            let r = c
                .autoscaling
                .terminate_instance_in_auto_scaling_group()
                .instance_id(ec2_instance_id)
                .should_decrement_desired_capacity(*decrement)
                .send()
                .await;
            r.map(|_| ()).map_err(to("TerminateInstanceInAutoScalingGroup"))
        }
    }
}

fn no_arn(op: &str, service: &str) -> BackendError {
    BackendError::NotFound { operation: op.to_string(), what: format!("service {service} (not in the last snapshot)") }
}

fn attribute(op: &str, instance_arn: &str, name: &str, value: Option<&String>) -> Result<Attribute, BackendError> {
    Attribute::builder()
        .name(name)
        .set_value(value.cloned())
        .target_type(TargetType::ContainerInstance)
        .target_id(short_id(instance_arn))
        .build()
        .map_err(|e| invalid(op, e))
}

async fn set_state(
    c: &Clients,
    gate: &Gate,
    cluster: &str,
    arns: &[String],
    status: InstanceStatus,
) -> Result<(), BackendError> {
    let st = match status {
        InstanceStatus::Active => ContainerInstanceStatus::Active,
        InstanceStatus::Draining => ContainerInstanceStatus::Draining,
        other => return Err(invalid("UpdateContainerInstancesState", format!("cannot set {}", other.as_str()))),
    };
    let mut done = 0;
    let mut missing = None;
    for chunk in arns.chunks(10) {
        gate.pass("UpdateContainerInstancesState").await;
        let r = c
            .ecs
            .update_container_instances_state()
            .cluster(cluster)
            .set_container_instances(Some(chunk.to_vec()))
            .status(st.clone())
            .send()
            .await
            .map_err(to("UpdateContainerInstancesState"))?;
        done += r.container_instances().len();
        for f in r.failures() {
            let e = failure("UpdateContainerInstancesState", f.arn(), f.reason(), f.detail());
            match e {
                BackendError::NotFound { .. } => missing = Some(e),
                _ => return Err(e),
            }
        }
    }
    // Some instances vanished: fine if others were set; an error if none was.
    match missing {
        Some(e) if done == 0 => Err(e),
        _ => Ok(()),
    }
}

async fn stop_task(c: &Clients, gate: &Gate, cluster: &str, task_arn: &str, reason: &str) -> Result<(), BackendError> {
    gate.pass("GetTaskProtection").await;
    let p =
        c.ecs.get_task_protection().cluster(cluster).tasks(task_arn).send().await.map_err(to("GetTaskProtection"))?;
    if let Some(f) = p.failures().first() {
        return Err(failure("GetTaskProtection", f.arn(), f.reason(), f.detail()));
    }
    let now = crate::wall_clock().0 as i64;
    let protected = p.protected_tasks().iter().any(|t| {
        t.protection_enabled() && t.expiration_date().and_then(|d| d.to_millis().ok()).is_none_or(|exp| exp > now)
    });
    if protected {
        return Err(invalid(
            "StopTask",
            format!("task {} has scale-in protection; ballast never stops a protected task", short_id(task_arn)),
        ));
    }
    gate.pass("StopTask").await;
    let reason: String = reason.chars().take(REASON_MAX).collect();
    let r = c.ecs.stop_task().cluster(cluster).task(task_arn).reason(reason).send().await;
    r.map(|_| ()).map_err(to("StopTask"))
}
