//! What the emulator cannot show, with `aws-smithy-mocks`: throttling bursts, 5xx, `failures`
//! entries in describe responses, an instance that vanishes between list and describe,
//! protected tasks, denied calls, and that the adapter calls exactly the operations of
//! `calls::OPERATIONS` (and so of the IAM policy), no more and no fewer.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_ecs::operation::delete_attributes::DeleteAttributesOutput;
use aws_sdk_ecs::operation::describe_clusters::DescribeClustersOutput;
use aws_sdk_ecs::operation::describe_container_instances::DescribeContainerInstancesOutput;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::get_task_protection::GetTaskProtectionOutput;
use aws_sdk_ecs::operation::list_clusters::ListClustersOutput;
use aws_sdk_ecs::operation::list_container_instances::ListContainerInstancesOutput;
use aws_sdk_ecs::operation::list_services::ListServicesOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::operation::put_attributes::PutAttributesOutput;
use aws_sdk_ecs::operation::stop_task::StopTaskOutput;
use aws_sdk_ecs::operation::tag_resource::TagResourceOutput;
use aws_sdk_ecs::operation::untag_resource::UntagResourceOutput;
use aws_sdk_ecs::operation::update_container_instances_state::UpdateContainerInstancesStateOutput;
use aws_sdk_ecs::operation::update_service::UpdateServiceOutput;
use aws_sdk_ecs::operation::update_task_protection::UpdateTaskProtectionOutput;
use aws_sdk_ecs::types::{
    Attribute, Cluster, ContainerDefinition, ContainerInstance, Failure, ProtectedTask, Resource, Service, Tag, Task,
    TaskDefinition,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use ballast_aws::calls::{CallLog, CountCalls, OPERATIONS};
use ballast_aws::{AwsBackend, Clients};
use ballast_core::action::Action;
use ballast_core::backend::{Backend, BackendError, MetricQuery};
use ballast_core::model::InstanceStatus;

const CI_A: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/shop/aaaa";
const CI_B: &str = "arn:aws:ecs:us-east-1:123456789012:container-instance/shop/bbbb";
const TASK: &str = "arn:aws:ecs:us-east-1:123456789012:task/shop/t1";
const SVC: &str = "arn:aws:ecs:us-east-1:123456789012:service/shop/web";
const TD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1";

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
const SERVER: &str = r#"{"__type":"ServerException","message":"internal error"}"#;
const DENIED: &str = r#"{"__type":"AccessDeniedException","message":"not authorized to perform ecs:StopTask"}"#;

/// Application Auto Scaling scales service web with target tracking.
fn aas_rules() -> Vec<Rule> {
    use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::DescribeScalableTargetsOutput;
    use aws_sdk_applicationautoscaling::operation::describe_scaling_policies::DescribeScalingPoliciesOutput;
    use aws_sdk_applicationautoscaling::types::{
        PolicyType, ScalableDimension, ScalableTarget, ScalingPolicy, ServiceNamespace,
    };
    let when = aws_smithy_types::DateTime::from_secs(0);
    vec![
        mock!(aws_sdk_applicationautoscaling::Client::describe_scalable_targets).then_output(move || {
            DescribeScalableTargetsOutput::builder()
                .scalable_targets(
                    ScalableTarget::builder()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id("service/shop/web")
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .min_capacity(2)
                        .max_capacity(10)
                        .role_arn("arn:aws:iam::1:role/x")
                        .creation_time(when)
                        .build()
                        .unwrap(),
                )
                .build()
        }),
        mock!(aws_sdk_applicationautoscaling::Client::describe_scaling_policies).then_output(move || {
            DescribeScalingPoliciesOutput::builder()
                .scaling_policies(
                    ScalingPolicy::builder()
                        .policy_arn("arn:p")
                        .policy_name("cpu")
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id("service/shop/web")
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .policy_type(PolicyType::TargetTrackingScaling)
                        .creation_time(when)
                        .build()
                        .unwrap(),
                )
                .build()
        }),
    ]
}

fn backend(ecs: &[&Rule], asg: &[&Rule], cw: &[&Rule]) -> (AwsBackend, Arc<CallLog>) {
    let aas = aas_rules();
    let log = Arc::new(CallLog::default());
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let clients = Clients {
        ecs: mock_client!(aws_sdk_ecs, RuleMode::MatchAny, ecs, |c| c.interceptor(CountCalls(l1.clone()))),
        autoscaling: mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, asg, |c| c
            .interceptor(CountCalls(l2.clone()))),
        cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, cw, |c| c.interceptor(CountCalls(l3.clone()))),
        appscaling: mock_client!(
            aws_sdk_applicationautoscaling,
            RuleMode::MatchAny,
            &aas.iter().collect::<Vec<_>>(),
            |c| c.interceptor(CountCalls(l3.clone()))
        ),
    };
    (AwsBackend::new(clients, log.clone()).expect("runtime"), log)
}

fn instance(arn: &str) -> ContainerInstance {
    ContainerInstance::builder()
        .container_instance_arn(arn)
        .ec2_instance_id("i-0123456789abcdef0")
        .status("ACTIVE")
        .agent_connected(true)
        .registered_resources(Resource::builder().name("CPU").r#type("INTEGER").integer_value(2048).build())
        .registered_resources(Resource::builder().name("MEMORY").r#type("INTEGER").integer_value(7680).build())
        .remaining_resources(Resource::builder().name("CPU").r#type("INTEGER").integer_value(1792).build())
        .remaining_resources(Resource::builder().name("MEMORY").r#type("INTEGER").integer_value(7168).build())
        .attributes(Attribute::builder().name("ecs.availability-zone").value("us-east-1a").build().unwrap())
        .running_tasks_count(1)
        .build()
}

/// Rules that serve a one-instance, one-service, one-task cluster.
fn cluster_rules() -> Vec<Rule> {
    vec![
        mock!(aws_sdk_ecs::Client::list_container_instances)
            .then_output(|| ListContainerInstancesOutput::builder().container_instance_arns(CI_A).build()),
        mock!(aws_sdk_ecs::Client::describe_container_instances)
            .then_output(|| DescribeContainerInstancesOutput::builder().container_instances(instance(CI_A)).build()),
        mock!(aws_sdk_ecs::Client::list_services)
            .then_output(|| ListServicesOutput::builder().service_arns(SVC).build()),
        mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_arn(SVC)
                        .service_name("web")
                        .status("ACTIVE")
                        .desired_count(1)
                        .running_count(1)
                        .task_definition(TD)
                        .tags(Tag::builder().key("team").value("shop").build())
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_ecs::Client::list_tasks).then_output(|| ListTasksOutput::builder().task_arns(TASK).build()),
        mock!(aws_sdk_ecs::Client::describe_tasks).then_output(|| {
            DescribeTasksOutput::builder()
                .tasks(
                    Task::builder()
                        .task_arn(TASK)
                        .group("service:web")
                        .container_instance_arn(CI_A)
                        .last_status("RUNNING")
                        .desired_status("RUNNING")
                        .task_definition_arn(TD)
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .task_definition_arn(TD)
                        .container_definitions(ContainerDefinition::builder().cpu(256).memory_reservation(512).build())
                        .build(),
                )
                .build()
        }),
    ]
}

fn refs(rules: &[Rule]) -> Vec<&Rule> {
    rules.iter().collect()
}

#[test]
fn reads_a_cluster_with_task_definition_resources() {
    let rules = cluster_rules();
    let (mut b, log) = backend(&refs(&rules), &[], &[]);
    let s = b.snapshot("shop").unwrap();
    assert_eq!(s.instances.len(), 1);
    assert_eq!(s.instances[0].registered.cpu, 2048);
    assert_eq!(s.instances[0].remaining.memory, 7168);
    assert_eq!(s.instances[0].az(), "us-east-1a");
    assert_eq!(s.services[0].task_definition.cpu, 256);
    assert_eq!(s.services[0].task_definition.memory, 512);
    assert_eq!(s.services[0].tags["team"], "shop");
    assert_eq!(s.tasks[0].service.as_deref(), Some("web"));
    assert_eq!((s.tasks[0].cpu, s.tasks[0].memory), (256, 512));
    // A second snapshot describes no task definition again.
    b.snapshot("shop").unwrap();
    assert_eq!(log.counts()["DescribeTaskDefinition"], 1);
    assert_eq!(log.counts()["ListTasks"], 2);
}

/// Issue [10]: the placement facts ECS checks are read: the task definition's memberOf
/// constraints (joined to the service's), requiresAttributes, GPUs, UDP host ports and the
/// awsvpc network mode; the instance's GPUs, UDP ports in use, agent version, registration
/// time and (from its type and trunk attribute) its awsvpc task limit.
#[test]
fn reads_the_placement_facts_ecs_checks() {
    use aws_sdk_ecs::types::{
        NetworkMode, PortMapping, ResourceRequirement, ResourceType, TaskDefinitionPlacementConstraint,
        TaskDefinitionPlacementConstraintType, TransportProtocol, VersionInfo,
    };
    let mut rules = cluster_rules();
    rules[1] = mock!(aws_sdk_ecs::Client::describe_container_instances).then_output(|| {
        let mut ci = instance(CI_A);
        ci.registered_resources.get_or_insert_with(Vec::new).push(
            Resource::builder().name("GPU").r#type("STRINGSET").string_set_value("g0").string_set_value("g1").build(),
        );
        let rem = ci.remaining_resources.get_or_insert_with(Vec::new);
        rem.push(Resource::builder().name("GPU").r#type("STRINGSET").string_set_value("g1").build());
        rem.push(Resource::builder().name("PORTS_UDP").r#type("STRINGSET").string_set_value("514").build());
        let attrs = ci.attributes.get_or_insert_with(Vec::new);
        attrs.push(Attribute::builder().name("ecs.instance-type").value("m5.xlarge").build().unwrap());
        attrs.push(Attribute::builder().name("ecs.awsvpc-trunk-id").value("eni-1").build().unwrap());
        ci.version_info = Some(VersionInfo::builder().agent_version("1.71.0").build());
        ci.registered_at = Some(aws_smithy_types::DateTime::from_secs(1_514_764_800));
        DescribeContainerInstancesOutput::builder().container_instances(ci).build()
    });
    rules[6] = mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(|| {
        DescribeTaskDefinitionOutput::builder()
            .task_definition(
                TaskDefinition::builder()
                    .task_definition_arn(TD)
                    .network_mode(NetworkMode::Awsvpc)
                    .container_definitions(
                        ContainerDefinition::builder()
                            .cpu(256)
                            .memory_reservation(512)
                            .port_mappings(
                                PortMapping::builder()
                                    .container_port(53)
                                    .host_port(53)
                                    .protocol(TransportProtocol::Udp)
                                    .build(),
                            )
                            .port_mappings(PortMapping::builder().container_port(80).host_port(8080).build())
                            .resource_requirements(
                                ResourceRequirement::builder().r#type(ResourceType::Gpu).value("1").build().unwrap(),
                            )
                            .build(),
                    )
                    .placement_constraints(
                        TaskDefinitionPlacementConstraint::builder()
                            .r#type(TaskDefinitionPlacementConstraintType::MemberOf)
                            .expression("attribute:tier == web")
                            .build(),
                    )
                    .requires_attributes(
                        Attribute::builder()
                            .name("com.amazonaws.ecs.capability.docker-remote-api.1.19")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    });
    let (mut b, _) = backend(&refs(&rules), &[], &[]);
    let s = b.snapshot("shop").unwrap();
    let i = &s.instances[0];
    assert_eq!((i.extra.gpus, i.extra.gpus_free), (2, 1));
    assert_eq!(i.extra.udp_ports_in_use, vec![514]);
    assert_eq!(i.extra.agent_version.as_deref(), Some("1.71.0"));
    assert_eq!(i.extra.awsvpc_limit, Some(20), "m5.xlarge with trunking: 20 branch interfaces");
    assert_eq!(i.registered_at.0, 1_514_764_800_000);
    let svc = &s.services[0];
    let n = &svc.task_definition.needs;
    assert!(n.awsvpc);
    assert_eq!(n.gpus, 1);
    assert_eq!(n.udp_ports, vec![53]);
    assert_eq!(svc.task_definition.host_ports, vec![8080], "TCP only");
    assert_eq!(n.requires, vec![("com.amazonaws.ecs.capability.docker-remote-api.1.19".to_string(), None)]);
    assert!(
        svc.constraints.iter().any(|c| c.to_string() == "memberOf(attribute:tier == web)"),
        "{:?}",
        svc.constraints
    );
}

#[test]
fn a_throttling_burst_is_retried_and_counted() {
    let throttled = mock!(aws_sdk_ecs::Client::list_container_instances)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(|| ListContainerInstancesOutput::builder().container_instance_arns(CI_A).build())
        .build();
    let mut rules = cluster_rules();
    rules.remove(0);
    let mut all = refs(&rules);
    all.insert(0, &throttled);
    let (mut b, log) = backend(&all, &[], &[]);
    let s = b.snapshot("shop").unwrap();
    assert_eq!(s.instances.len(), 1);
    assert_eq!(throttled.num_calls(), 3);
    assert_eq!(log.counts()["ListContainerInstances"], 3, "every attempt is counted");
}

#[test]
fn persistent_5xx_fails_after_bounded_attempts() {
    let broken =
        mock!(aws_sdk_ecs::Client::list_tasks).sequence().http_status(500, Some(SERVER.into())).repeatedly().build();
    // Every rule of the cluster but its ListTasks (the fifth).
    let rules: Vec<Rule> = cluster_rules().into_iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, r)| r).collect();
    let mut all = refs(&rules);
    all.push(&broken);
    let (mut b, log) = backend(&all, &[], &[]);
    let e = b.snapshot("shop").unwrap_err();
    assert!(matches!(e, BackendError::Server { .. }), "{e:?}");
    assert!(e.retryable(), "the executor may try the whole read once more");
    assert_eq!(log.counts()["ListTasks"], ballast_aws::connect::MAX_ATTEMPTS as u64);
}

/// A 5xx may come after the change took effect. A desired count is sent again (the SDK's
/// bounded retries); a forced deployment, which would start a second deployment, is sent once.
#[test]
fn a_forced_deployment_is_never_resent_by_the_sdk() {
    let broken = mock!(aws_sdk_ecs::Client::update_service)
        .sequence()
        .http_status(500, Some(SERVER.into()))
        .repeatedly()
        .build();
    let (mut b, log) = backend(&refs(&[broken]), &[], &[]);
    let desired = Action::SetServiceDesired { service: "web".into(), desired: 3, reason: "t".into() };
    assert!(matches!(b.apply("shop", &desired), Err(BackendError::Server { .. })));
    assert_eq!(log.counts()["UpdateService"], ballast_aws::connect::MAX_ATTEMPTS as u64);
    let deploy = Action::ForceNewDeployment { service: "web".into(), reason: "t".into() };
    assert!(matches!(b.apply("shop", &deploy), Err(BackendError::Server { .. })));
    assert_eq!(log.counts()["UpdateService"], ballast_aws::connect::MAX_ATTEMPTS as u64 + 1, "one attempt");
}

#[test]
fn an_instance_that_vanishes_between_list_and_describe_is_left_out() {
    let list = mock!(aws_sdk_ecs::Client::list_container_instances).then_output(|| {
        ListContainerInstancesOutput::builder().container_instance_arns(CI_A).container_instance_arns(CI_B).build()
    });
    let describe = mock!(aws_sdk_ecs::Client::describe_container_instances).then_output(|| {
        DescribeContainerInstancesOutput::builder()
            .container_instances(instance(CI_A))
            .failures(Failure::builder().arn(CI_B).reason("MISSING").build())
            .build()
    });
    let rules: Vec<Rule> = cluster_rules().into_iter().skip(2).collect();
    let mut all = refs(&rules);
    all.extend([&list, &describe]);
    let (mut b, _) = backend(&all, &[], &[]);
    let s = b.snapshot("shop").unwrap();
    assert_eq!(s.instances.iter().map(|i| i.arn.as_str()).collect::<Vec<_>>(), [CI_A]);
}

#[test]
fn failures_in_a_state_change_are_errors_not_silence() {
    let all_missing = mock!(aws_sdk_ecs::Client::update_container_instances_state).then_output(|| {
        UpdateContainerInstancesStateOutput::builder()
            .failures(Failure::builder().arn(CI_B).reason("MISSING").build())
            .build()
    });
    let (mut b, _) = backend(&[&all_missing], &[], &[]);
    let a = Action::SetInstanceState {
        instance_arns: vec![CI_B.into()],
        status: InstanceStatus::Active,
        reason: "test".into(),
    };
    assert!(matches!(b.apply("shop", &a), Err(BackendError::NotFound { .. })));
    let refused = mock!(aws_sdk_ecs::Client::update_container_instances_state).then_output(|| {
        UpdateContainerInstancesStateOutput::builder()
            .failures(Failure::builder().arn(CI_A).reason("INVALID").detail("bad state").build())
            .build()
    });
    let (mut b, _) = backend(&[&refused], &[], &[]);
    let a = Action::SetInstanceState {
        instance_arns: vec![CI_A.into()],
        status: InstanceStatus::Draining,
        reason: "t".into(),
    };
    let e = b.apply("shop", &a).unwrap_err();
    assert!(matches!(e, BackendError::Invalid { .. }) && e.to_string().contains("bad state"), "{e}");
}

#[test]
fn a_protected_task_is_never_stopped() {
    let protection = mock!(aws_sdk_ecs::Client::get_task_protection).then_output(|| {
        GetTaskProtectionOutput::builder()
            .protected_tasks(ProtectedTask::builder().task_arn(TASK).protection_enabled(true).build())
            .build()
    });
    let stop = mock!(aws_sdk_ecs::Client::stop_task).then_output(|| StopTaskOutput::builder().build());
    let (mut b, _) = backend(&[&protection, &stop], &[], &[]);
    let e = b.apply("shop", &Action::StopTask { task_arn: TASK.into(), reason: "rebalance".into() }).unwrap_err();
    assert!(e.to_string().contains("scale-in protection"), "{e}");
    assert_eq!(stop.num_calls(), 0);
}

#[test]
fn denied_and_throttled_writes_map_to_their_kinds() {
    let denied = mock!(aws_sdk_ecs::Client::update_service).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(DENIED),
        )
    });
    let (mut b, _) = backend(&[&denied], &[], &[]);
    let a = Action::SetServiceDesired { service: "web".into(), desired: 3, reason: "t".into() };
    let e = b.apply("shop", &a).unwrap_err();
    assert!(matches!(e, BackendError::Denied { .. }) && !e.retryable(), "{e:?}");
    let flaky = mock!(aws_sdk_ecs::Client::update_service)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .output(|| UpdateServiceOutput::builder().build())
        .build();
    let (mut b, log) = backend(&[&flaky], &[], &[]);
    b.apply("shop", &a).unwrap();
    assert_eq!(log.counts()["UpdateService"], 2);
}

/// Drives every path (snapshot, discovery, every action kind, metrics) and checks that the
/// operations the SDK really called are exactly `calls::OPERATIONS` — the IAM policy's list.
#[test]
fn the_adapter_calls_exactly_the_listed_operations() {
    let mut rules = cluster_rules();
    // The service runs on a capacity provider with managed scaling (issue [12]): read, and
    // said, so that rebalance leaves it alone.
    rules[3] = mock!(aws_sdk_ecs::Client::describe_services).then_output(|| {
        use aws_sdk_ecs::types::CapacityProviderStrategyItem;
        DescribeServicesOutput::builder()
            .services(
                Service::builder()
                    .service_arn(SVC)
                    .service_name("web")
                    .status("ACTIVE")
                    .desired_count(1)
                    .running_count(1)
                    .task_definition(TD)
                    .capacity_provider_strategy(
                        CapacityProviderStrategyItem::builder().capacity_provider("cp-shop").weight(1).build().unwrap(),
                    )
                    .build(),
            )
            .build()
    });
    rules.push(mock!(aws_sdk_ecs::Client::describe_capacity_providers).then_output(|| {
        use aws_sdk_ecs::types::{AutoScalingGroupProvider, CapacityProvider, ManagedScaling, ManagedScalingStatus};
        aws_sdk_ecs::operation::describe_capacity_providers::DescribeCapacityProvidersOutput::builder()
            .capacity_providers(
                CapacityProvider::builder()
                    .name("cp-shop")
                    .auto_scaling_group_provider(
                        AutoScalingGroupProvider::builder()
                            .auto_scaling_group_arn(
                                "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:x:autoScalingGroupName/asg",
                            )
                            .managed_scaling(ManagedScaling::builder().status(ManagedScalingStatus::Enabled).build())
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    }));
    rules.extend([
        mock!(aws_sdk_ecs::Client::list_clusters)
            .then_output(|| ListClustersOutput::builder().cluster_arns("arn:aws:ecs:us-east-1:1:cluster/shop").build()),
        mock!(aws_sdk_ecs::Client::describe_clusters).then_output(|| {
            DescribeClustersOutput::builder()
                .clusters(
                    Cluster::builder()
                        .cluster_name("shop")
                        .status("ACTIVE")
                        .tags(Tag::builder().key("ballast:enabled").value("true").build())
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_ecs::Client::update_container_instances_state)
            .then_output(|| UpdateContainerInstancesStateOutput::builder().container_instances(instance(CI_A)).build()),
        mock!(aws_sdk_ecs::Client::put_attributes).then_output(|| PutAttributesOutput::builder().build()),
        mock!(aws_sdk_ecs::Client::delete_attributes).then_output(|| DeleteAttributesOutput::builder().build()),
        mock!(aws_sdk_ecs::Client::get_task_protection).then_output(|| GetTaskProtectionOutput::builder().build()),
        mock!(aws_sdk_ecs::Client::stop_task).then_output(|| StopTaskOutput::builder().build()),
        mock!(aws_sdk_ecs::Client::update_service).then_output(|| UpdateServiceOutput::builder().build()),
        mock!(aws_sdk_ecs::Client::update_task_protection)
            .then_output(|| UpdateTaskProtectionOutput::builder().build()),
        mock!(aws_sdk_ecs::Client::tag_resource).then_output(|| TagResourceOutput::builder().build()),
        mock!(aws_sdk_ecs::Client::untag_resource).then_output(|| UntagResourceOutput::builder().build()),
    ]);
    let asg = [
        mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups).then_output(|| {
            use aws_sdk_autoscaling::types::{AutoScalingGroup, Instance, LifecycleState};
            aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(
                    AutoScalingGroup::builder()
                        .auto_scaling_group_name("asg")
                        .desired_capacity(2)
                        .min_size(0)
                        .max_size(5)
                        .instances(Instance::builder().instance_id("i-1").lifecycle_state(LifecycleState::InService).build())
                        .instances(Instance::builder().instance_id("i-2").lifecycle_state(LifecycleState::Pending).build())
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_autoscaling::Client::set_desired_capacity).then_output(|| {
            aws_sdk_autoscaling::operation::set_desired_capacity::SetDesiredCapacityOutput::builder().build()
        }),
        mock!(aws_sdk_autoscaling::Client::terminate_instance_in_auto_scaling_group).then_output(|| {
            aws_sdk_autoscaling::operation::terminate_instance_in_auto_scaling_group::TerminateInstanceInAutoScalingGroupOutput::builder().build()
        }),
        mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group).then_output(|| {
            aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupOutput::builder().build()
        }),
    ];
    let cw = [mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .then_output(|| aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput::builder().build())];
    let (mut b, log) = backend(&refs(&rules), &refs(&asg), &refs(&cw));
    assert_eq!(b.discover("ballast:enabled", Some("true")).unwrap(), ["shop"]);
    let snap = b.snapshot("shop").unwrap();
    assert_eq!(snap.services[0].scaled_by, ["capacity provider cp-shop (managed scaling)"]);
    let aas = b.scaled_by("shop", &["web".to_string()]).unwrap();
    assert_eq!(aas["web"], ["Application Auto Scaling (TargetTrackingScaling; min 2, max 10)"]);
    let s = |x: &str| x.to_string();
    let actions = [
        Action::SetInstanceState { instance_arns: vec![s(CI_A)], status: InstanceStatus::Draining, reason: s("t") },
        Action::PutAttribute { instance_arn: s(CI_A), name: s("ballast.drained-by"), value: s("ballast") },
        Action::DeleteAttribute { instance_arn: s(CI_A), name: s("ballast.drained-by") },
        Action::StopTask { task_arn: s(TASK), reason: s("t") },
        Action::SetServiceDesired { service: s("web"), desired: 2, reason: s("t") },
        Action::ForceNewDeployment { service: s("web"), reason: s("t") },
        Action::SetTaskProtection { task_arns: vec![s(TASK)], protected: true, expires_in_minutes: 10 },
        Action::TagService { service: s("web"), key: s("ballast:surge"), value: s("1") },
        Action::UntagService { service: s("web"), key: s("ballast:surge") },
        Action::SetGroupDesired { group: s("asg"), desired: 3, honor_cooldown: true, reason: s("t") },
        Action::SetGroupLimits { group: s("asg"), min: 1, max: 4 },
        Action::TerminateInstance { ec2_instance_id: s("i-0123456789abcdef0"), decrement: true, reason: s("t") },
    ];
    for a in &actions {
        b.apply("shop", a).unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    let q = MetricQuery {
        namespace: s("AWS/EC2Spot"),
        name: s("PendingCapacity"),
        dimensions: [(s("FleetRequestId"), s("sfr-1"))].into_iter().collect(),
        statistic: s("Maximum"),
        period_s: 60,
    };
    assert_eq!(b.metric_data(&[q]).unwrap(), [None], "no datapoint is unknown, never zero");
    let g = b.group("asg").unwrap();
    assert_eq!((g.desired, g.min, g.max), (2, 0, 5));
    assert_eq!(g.count(ballast_core::backend::Lifecycle::InService), 1);
    assert_eq!(g.count(ballast_core::backend::Lifecycle::Launching), 1);
    let called: BTreeSet<String> = log.counts().into_keys().collect();
    let listed: BTreeSet<String> = OPERATIONS.iter().map(|o| o.name.to_string()).collect();
    assert_eq!(called, listed);
}

/// Lists are followed to the last page and describes batched at 100: 250 tasks take three
/// ListTasks pages and three DescribeTasks calls, as `snapshot_calls` says.
#[test]
fn every_list_is_paginated_to_the_end_and_describes_are_batched() {
    let arns: Vec<String> = (0..250).map(|i| format!("arn:aws:ecs:us-east-1:123456789012:task/shop/t{i:03}")).collect();
    let page = |from: usize, to: usize, next: Option<&str>| {
        let mut b = ListTasksOutput::builder().set_task_arns(Some(arns[from..to].to_vec()));
        if let Some(n) = next {
            b = b.next_token(n);
        }
        b.build()
    };
    let (p1, p2, p3) = (page(0, 100, Some("p2")), page(100, 200, Some("p3")), page(200, 250, None));
    let list = mock!(aws_sdk_ecs::Client::list_tasks)
        .sequence()
        .output(move || p1.clone())
        .output(move || p2.clone())
        .output(move || p3.clone())
        .build();
    let describe = mock!(aws_sdk_ecs::Client::describe_tasks)
        .match_requests(|r| r.tasks().len() <= 100)
        .then_compute_output(|r| {
            let tasks = r.tasks().iter().map(|a| {
                Task::builder()
                    .task_arn(a)
                    .group("family:batch")
                    .container_instance_arn(CI_A)
                    .last_status("RUNNING")
                    .desired_status("RUNNING")
                    .cpu("10")
                    .memory("10")
                    .build()
            });
            DescribeTasksOutput::builder().set_tasks(Some(tasks.collect())).build()
        });
    let rules: Vec<Rule> =
        cluster_rules().into_iter().enumerate().filter(|(i, _)| !matches!(i, 4 | 5)).map(|(_, r)| r).collect();
    let mut all = refs(&rules);
    all.extend([&list, &describe]);
    let (mut b, log) = backend(&all, &[], &[]);
    let s = b.snapshot("shop").unwrap();
    assert_eq!(s.tasks.len(), 250);
    let c = log.counts();
    assert_eq!((c["ListTasks"], c["DescribeTasks"]), (3, 3));
    let want = ballast_core::backend::snapshot_calls(1, 1, 250, 1);
    for (op, n) in want {
        assert_eq!(c[op], n, "{op}");
    }
}
