"""Seeds the emulator with a cluster for ballast's integration tests and prints what it made
as JSON. The emulator's scheduler (server.py) places the service tasks.

usage: python3 seed.py ENDPOINT imbalanced|imbalanced-rolling|three-az|constrained|large
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
