//! Amazon EC2 Auto Scaling over the simulator's groups: describe (with paging), desired
//! capacity (min/max and the default cooldown with HonorCooldown), limits, and terminating an
//! instance with or without decrementing.

use ballast_core::action::Action;
use ballast_core::backend::BackendError;
use serde_json::{Value, json};

use super::{ApiError, World, bool_of, int_of, list_of, str_of, ts, unknown_op};
use crate::engine::InstState;

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationError", message)
}

fn group_err(e: BackendError) -> ApiError {
    match e {
        BackendError::Conflict { message, .. } => ApiError::client(
            "ScalingActivityInProgress",
            message.strip_prefix("ScalingActivityInProgress: ").unwrap_or(&message).to_string(),
        ),
        BackendError::Invalid { message, .. } => {
            validation(message.strip_prefix("ValidationError: ").unwrap_or(&message).to_string())
        }
        BackendError::NotFound { what, .. } => validation(format!("{what} not found")),
        other => ApiError { status: 500, code: "InternalFailure".into(), message: other.to_string() },
    }
}

impl World {
    pub(super) fn autoscaling(&mut self, op: &str, req: &Value) -> Result<Value, ApiError> {
        match op {
            "DescribeAutoScalingGroups" => {
                let names = list_of(req, "AutoScalingGroupNames");
                let mut all: Vec<usize> = (0..self.sim.sc.groups.len())
                    .filter(|&g| names.is_empty() || names.contains(&self.sim.sc.groups[g].name))
                    .collect();
                all.sort_by(|&a, &b| self.sim.sc.groups[a].name.cmp(&self.sim.sc.groups[b].name));
                let max = int_of(req, "MaxRecords")?.unwrap_or(50);
                if !(1..=100).contains(&max) {
                    return Err(validation("MaxRecords must be between 1 and 100"));
                }
                let after = str_of(req, "NextToken");
                let start = after.map_or(0, |t| all.partition_point(|&g| self.sim.sc.groups[g].name.as_str() <= t));
                let rest = &all[start.min(all.len())..];
                let page: Vec<usize> = rest.iter().copied().take(max as usize).collect();
                let mut v = json!({"AutoScalingGroups": page.iter().map(|&g| self.group_json(g)).collect::<Vec<_>>()});
                if rest.len() > page.len()
                    && let Some(&last) = page.last()
                {
                    v["NextToken"] = json!(self.sim.sc.groups[last].name);
                }
                Ok(v)
            }
            "DescribeAutoScalingInstances" => {
                let ids = list_of(req, "InstanceIds");
                let out: Vec<Value> = (0..self.sim.insts.len())
                    .filter(|&n| self.sim.insts[n].state != InstState::Gone)
                    .filter(|&n| ids.is_empty() || ids.contains(&self.sim.insts[n].ec2_id))
                    .map(|n| {
                        let mut v = self.group_instance_json(n);
                        v["AutoScalingGroupName"] = json!(self.sim.sc.groups[self.sim.insts[n].group].name);
                        v
                    })
                    .collect();
                Ok(json!({"AutoScalingInstances": out}))
            }
            "DescribeScalingActivities" => Ok(json!({"Activities": []})),
            "SetDesiredCapacity" => {
                let group = self.group_name(req)?;
                let desired =
                    int_of(req, "DesiredCapacity")?.ok_or_else(|| validation("DesiredCapacity is required"))?;
                if desired < 0 {
                    return Err(validation("DesiredCapacity must be 0 or more"));
                }
                let a = Action::SetGroupDesired {
                    group,
                    desired: desired as u32,
                    honor_cooldown: bool_of(req, "HonorCooldown").unwrap_or(false),
                    reason: "SetDesiredCapacity (twin)".into(),
                };
                self.sim.apply_action(&a).map_err(group_err)?;
                Ok(json!({}))
            }
            "UpdateAutoScalingGroup" => {
                let group = self.group_name(req)?;
                let g = self.sim.sc.groups.iter().position(|x| x.name == group).expect("checked");
                let min = int_of(req, "MinSize")?.map_or(self.sim.sc.groups[g].min, |v| v.max(0) as u32);
                let max = int_of(req, "MaxSize")?.map_or(self.sim.sc.groups[g].max, |v| v.max(0) as u32);
                self.sim.apply_action(&Action::SetGroupLimits { group: group.clone(), min, max }).map_err(group_err)?;
                if let Some(d) = int_of(req, "DesiredCapacity")? {
                    let a = Action::SetGroupDesired {
                        group,
                        desired: d.max(0) as u32,
                        honor_cooldown: false,
                        reason: "UpdateAutoScalingGroup (twin)".into(),
                    };
                    self.sim.apply_action(&a).map_err(group_err)?;
                }
                Ok(json!({}))
            }
            "TerminateInstanceInAutoScalingGroup" => {
                let id = str_of(req, "InstanceId").ok_or_else(|| validation("InstanceId is required"))?.to_string();
                let decrement = bool_of(req, "ShouldDecrementDesiredCapacity")
                    .ok_or_else(|| validation("ShouldDecrementDesiredCapacity is required"))?;
                let n = self.sim.insts.iter().position(|i| i.ec2_id == id && i.state != InstState::Gone).ok_or_else(
                    || validation(format!("Instance Id not found - No managed instance found for instance ID: {id}")),
                )?;
                let group = self.sim.sc.groups[self.sim.insts[n].group].name.clone();
                let a = Action::TerminateInstance {
                    ec2_instance_id: id.clone(),
                    decrement,
                    reason: "TerminateInstanceInAutoScalingGroup (twin)".into(),
                };
                self.sim.apply_action(&a).map_err(group_err)?;
                let seq = self.sim.mutations + self.sim.acct.api.values().sum::<u64>();
                Ok(json!({"Activity": {
                    "ActivityId": format!("{seq:08x}-0000-4000-8000-{seq:012x}"),
                    "AutoScalingGroupName": group,
                    "Description": format!("Terminating EC2 instance: {id}"),
                    "Cause": format!("At {} instance {id} was taken out of service in response to a user request{}.",
                        super::iso8601(self.epoch_s(self.sim.now)),
                        if decrement { ", shrinking the capacity" } else { "" }),
                    "StartTime": ts(self.epoch_s(self.sim.now)),
                    "StatusCode": "InProgress",
                    "Progress": 0,
                }}))
            }
            _ => Err(unknown_op(op)),
        }
    }

    fn group_name(&self, req: &Value) -> Result<String, ApiError> {
        let name = str_of(req, "AutoScalingGroupName").ok_or_else(|| validation("AutoScalingGroupName is required"))?;
        if self.sim.sc.groups.iter().any(|g| g.name == name) {
            Ok(name.to_string())
        } else {
            Err(validation(format!("AutoScalingGroup name not found - AutoScalingGroup {name} not found")))
        }
    }

    fn group_instance_json(&self, n: usize) -> Value {
        let i = &self.sim.insts[n];
        let state = match i.state {
            _ if i.notice => "Terminating",
            InstState::Booting => "Pending",
            InstState::Active | InstState::Draining => "InService",
            InstState::Gone => "Terminated",
        };
        json!({
            "InstanceId": i.ec2_id,
            "InstanceType": i.itype,
            "AvailabilityZone": i.az,
            "LifecycleState": state,
            "HealthStatus": "HEALTHY",
            "ProtectedFromScaleIn": false,
            "LaunchTemplate": {"LaunchTemplateId": "lt-0ba11a5700000001", "LaunchTemplateName": "ballast-twin", "Version": "1"},
        })
    }

    fn group_json(&self, g: usize) -> Value {
        let spec = &self.sim.sc.groups[g];
        let arn = format!(
            "arn:aws:autoscaling:{}:{}:autoScalingGroup:00000000-0000-4000-8000-{g:012x}:autoScalingGroupName/{}",
            self.sim.region,
            crate::engine::ACCOUNT,
            spec.name
        );
        let tags: Vec<Value> = spec
            .tags
            .iter()
            .map(|(k, v)| {
                json!({"Key": k, "Value": v, "ResourceId": spec.name, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": true})
            })
            .collect();
        json!({
            "AutoScalingGroupName": spec.name,
            "AutoScalingGroupARN": arn,
            "MinSize": spec.min,
            "MaxSize": spec.max,
            "DesiredCapacity": self.sim.groups[g].desired,
            // On the client's clock, as every duration served.
            "DefaultCooldown": ((spec.cooldown.0 as f64 / 1000.0) / self.speed).ceil() as u64,
            "AvailabilityZones": self.sim.sc.azs,
            "HealthCheckType": "EC2",
            "HealthCheckGracePeriod": 0,
            "Instances": self.sim.group_members(g).into_iter().map(|n| self.group_instance_json(n)).collect::<Vec<_>>(),
            "CreatedTime": ts(self.epoch_s(ballast_core::duration::Millis(0))),
            "Tags": tags,
            "TerminationPolicies": ["Default"],
            "NewInstancesProtectedFromScaleIn": false,
            "ServiceLinkedRoleARN": format!("arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", crate::engine::ACCOUNT),
            "CapacityRebalance": false,
        })
    }
}
