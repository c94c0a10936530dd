"""Seeds the emulator with a cluster for ballast's integration tests and prints what it made
as JSON. The emulator's scheduler (server.py) places the service tasks.

usage: python3 seed.py ENDPOINT imbalanced|imbalanced-rolling|three-az|constrained|spot|autoscale|large
  cluster "shop" (tagged ballast:enabled=true): one m5.large-sized instance in us-east-1a
  receives service "web" (6 tasks of 256 CPU / 512 MiB, spread over AZ then instance) and a
  standalone task; then two more instances join (us-east-1b, us-east-1a), empty.
"""

import json
import sys
import time

import boto3

endpoint, kind = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **kw)
ec2 = boto3.client("ec2", **kw)
image = ec2.describe_images()["Images"][0]["ImageId"]


def instance(cluster, az):
    i = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.large", Placement={"AvailabilityZone": az})
    iid = i["Instances"][0]["InstanceId"]
    ci = ecs.register_container_instance(
        cluster=cluster,
        instanceIdentityDocument=json.dumps({"instanceId": iid}),
        totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680},
        ],
    )["containerInstance"]
    return {"ec2_instance_id": iid, "container_instance_arn": ci["containerInstanceArn"], "az": az}


def wait_tasks(cluster, group, n):
    for _ in range(600):
        arns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
        if sum(1 for t in tasks if t.get("group") == group) >= n:
            return
        time.sleep(0.1)
    raise SystemExit(f"the emulator's scheduler did not place {n} tasks of {group}")


if kind in ("imbalanced", "imbalanced-rolling"):
    # imbalanced-rolling: maximumPercent 100, so a deployment stops before it starts.
    max_percent = 100 if kind == "imbalanced-rolling" else 200
    cluster = "shop"
    ecs.create_cluster(clusterName=cluster, tags=[{"key": "ballast:enabled", "value": "true"}])
    ecs.create_cluster(clusterName="other")  # not tagged: never discovered
    first = instance(cluster, "us-east-1a")
    ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 256, "memory": 512, "essential": True}],
    )
    ecs.register_task_definition(
        family="batch",
        containerDefinitions=[{"name": "batch", "image": "busybox", "cpu": 128, "memory": 256, "essential": True}],
    )
    ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition="web",
        desiredCount=6,
        placementStrategy=[
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "spread", "field": "instanceId"},
        ],
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": max_percent},
    )
    wait_tasks(cluster, "service:web", 6)
    ecs.start_task(cluster=cluster, taskDefinition="batch", containerInstances=[first["container_instance_arn"]])
    second = instance(cluster, "us-east-1b")
    third = instance(cluster, "us-east-1a")
    print(json.dumps({"cluster": cluster, "instances": [first, second, third]}))
elif kind == "three-az":
    # 5/1/0 tasks over three AZs, no placement strategy (ECS's default for services: spread
    # over AZs, then instances).
    cluster = "shop"
    ecs.create_cluster(clusterName=cluster, tags=[{"key": "ballast:enabled", "value": "true"}])
    first = instance(cluster, "us-east-1a")
    ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 256, "memory": 512, "essential": True}],
    )
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition="web", desiredCount=5,
                       deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200})
    wait_tasks(cluster, "service:web", 5)
    second = instance(cluster, "us-east-1b")
    ecs.update_service(cluster=cluster, service="web", desiredCount=6)
    wait_tasks(cluster, "service:web", 6)
    third = instance(cluster, "us-east-1c")
    print(json.dumps({"cluster": cluster, "instances": [first, second, third]}))
elif kind == "constrained":
    # The task definition's own placement constraint (memberOf attribute:tier == web): two
    # instances carry the attribute, the third does not. Service web's 6 tasks start on the
    # first; the others join afterwards.
    cluster = "shop"
    ecs.create_cluster(clusterName=cluster, tags=[{"key": "ballast:enabled", "value": "true"}])
    first = instance(cluster, "us-east-1a")
    ecs.put_attributes(cluster=cluster, attributes=[{"name": "tier", "value": "web", "targetType": "container-instance",
                                                     "targetId": first["container_instance_arn"].rsplit("/", 1)[1]}])
    ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 256, "memory": 512, "essential": True}],
        placementConstraints=[{"type": "memberOf", "expression": "attribute:tier == web"}],
    )
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition="web", desiredCount=6,
                       deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200})
    wait_tasks(cluster, "service:web", 6)
    second = instance(cluster, "us-east-1b")
    ecs.put_attributes(cluster=cluster, attributes=[{"name": "tier", "value": "web", "targetType": "container-instance",
                                                     "targetId": second["container_instance_arn"].rsplit("/", 1)[1]}])
    third = instance(cluster, "us-east-1c")
    print(json.dumps({"cluster": cluster, "instances": [first, second, third]}))
elif kind == "spot":
    # Cluster "shop" on two instances, an empty on-demand backup group "od-backup", and the
    # AWS/EC2Spot metrics of fleet "sfr-test" for the last 25 minutes: target 6, 3 pending.
    import datetime
    cluster = "shop"
    ecs.create_cluster(clusterName=cluster)
    asg = boto3.client("autoscaling", **kw)
    cw = boto3.client("cloudwatch", **kw)
    made = [instance(cluster, "us-east-1a"), instance(cluster, "us-east-1b")]
    asg.create_launch_configuration(LaunchConfigurationName="od", ImageId=image, InstanceType="m5.large")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="od-backup", LaunchConfigurationName="od", MinSize=0, MaxSize=4, DesiredCapacity=0,
        AvailabilityZones=["us-east-1a", "us-east-1b"],
    )
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    for m in range(25, 0, -1):
        t = now - datetime.timedelta(minutes=m)
        cw.put_metric_data(Namespace="AWS/EC2Spot", MetricData=[
            {"MetricName": name, "Dimensions": [{"Name": "FleetRequestId", "Value": "sfr-test"}], "Timestamp": t, "Value": v}
            for name, v in (("TargetCapacity", 6.0), ("FulfilledCapacity", 3.0), ("PendingCapacity", 3.0))
        ])
    print(json.dumps({"cluster": cluster, "instances": made, "group": "od-backup", "fleet": "sfr-test"}))
elif kind == "autoscale":
    # Cluster "shop" on the one instance of Auto Scaling group "asg-main" (min 1, max 3),
    # services "worker" (1 task of 1024 CPU / 2048 MiB) and "web" (1 of 256 / 512), and the
    # custom metric Custom/App RequestRate (web) at 900 for the last 10 minutes.
    import datetime
    cluster = "shop"
    ecs.create_cluster(clusterName=cluster)
    asg = boto3.client("autoscaling", **kw)
    cw = boto3.client("cloudwatch", **kw)
    asg.create_launch_configuration(LaunchConfigurationName="main", ImageId=image, InstanceType="m5.large")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="asg-main", LaunchConfigurationName="main", MinSize=1, MaxSize=3, DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
    )
    iid = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["asg-main"])["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    ci = ecs.register_container_instance(
        cluster=cluster,
        instanceIdentityDocument=json.dumps({"instanceId": iid}),
        totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680},
        ],
    )["containerInstance"]
    for name, cpu, mem in (("worker", 1024, 2048), ("web", 256, 512)):
        ecs.register_task_definition(
            family=name,
            containerDefinitions=[{"name": name, "image": "busybox", "cpu": cpu, "memory": mem, "essential": True}],
        )
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=name, desiredCount=1)
        wait_tasks(cluster, f"service:{name}", 1)
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    for m in range(10, 0, -1):
        cw.put_metric_data(Namespace="Custom/App", MetricData=[{
            "MetricName": "RequestRate", "Dimensions": [{"Name": "Service", "Value": "web"}],
            "Timestamp": now - datetime.timedelta(minutes=m), "Value": 900.0,
        }])
    print(json.dumps({"cluster": cluster, "group": "asg-main", "ec2_instance_id": iid,
                      "container_instance_arn": ci["containerInstanceArn"]}))
elif kind == "large":
    # 100 instances over three AZs, then 10 services of 40 tasks each, spread by the emulator's
    # scheduler (for measuring, not for asserting behaviour).
    cluster = "big"
    ecs.create_cluster(clusterName=cluster, tags=[{"key": "ballast:enabled", "value": "true"}])
    azs = ["us-east-1a", "us-east-1b", "us-east-1c"]
    made = [instance(cluster, azs[i % 3]) for i in range(100)]
    for s in range(10):
        ecs.register_task_definition(
            family=f"svc{s}",
            containerDefinitions=[{"name": "app", "image": "nginx", "cpu": 128, "memory": 256, "essential": True}],
        )
        ecs.create_service(
            cluster=cluster, serviceName=f"svc{s}", taskDefinition=f"svc{s}", desiredCount=40,
            deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200},
        )
    for s in range(10):
        wait_tasks(cluster, f"service:svc{s}", 40)
    print(json.dumps({"cluster": cluster, "instances": len(made), "tasks": 400}))
else:
    raise SystemExit(f"unknown seed {kind}")
