"""Prints the emulator's view of a cluster as JSON (boto3, independent of ballast): the
container instances with their status, attributes, resources and task counts, the tasks
(desiredStatus RUNNING) and the services with their tags.

usage: python3 truth.py ENDPOINT CLUSTER
"""

import json
import sys

import boto3

endpoint, cluster = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **kw)
if cluster.startswith("group:"):
    # usage: python3 truth.py ENDPOINT group:NAME  (an Auto Scaling group's sizes)
    g = boto3.client("autoscaling", **kw).describe_auto_scaling_groups(AutoScalingGroupNames=[cluster[6:]])["AutoScalingGroups"][0]
    print(json.dumps({"desired": g["DesiredCapacity"], "min": g["MinSize"], "max": g["MaxSize"], "instances": len(g["Instances"])}))
    sys.exit(0)


def res(lst, name):
    return next((r.get("integerValue", 0) for r in lst if r["name"] == name), 0)


arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
cis = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"] if arns else []
instances = [
    {
        "container_instance_arn": c["containerInstanceArn"],
        "ec2_instance_id": c["ec2InstanceId"],
        "status": c["status"],
        "attributes": {a["name"]: a.get("value", "") for a in c.get("attributes", [])},
        "registered_cpu": res(c["registeredResources"], "CPU"),
        "registered_memory": res(c["registeredResources"], "MEMORY"),
        "remaining_cpu": res(c["remainingResources"], "CPU"),
        "remaining_memory": res(c["remainingResources"], "MEMORY"),
        "running_tasks": c["runningTasksCount"],
    }
    for c in cis
]
tarns = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
tasks = ecs.describe_tasks(cluster=cluster, tasks=tarns)["tasks"] if tarns else []
tasks = sorted(
    ({"task_arn": t["taskArn"], "group": t.get("group"), "instance": t.get("containerInstanceArn")} for t in tasks),
    key=lambda t: t["task_arn"],
)
sarns = ecs.list_services(cluster=cluster)["serviceArns"]
svcs = ecs.describe_services(cluster=cluster, services=sarns, include=["TAGS"])["services"] if sarns else []
services = [
    {"name": s["serviceName"], "desired": s["desiredCount"], "tags": {t["key"]: t["value"] for t in s.get("tags", [])}}
    for s in svcs
]
print(json.dumps({"instances": instances, "tasks": tasks, "services": services}, default=str))
