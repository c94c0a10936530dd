"""boto3 against the twin: every call of the issue's list, with paging, and the behaviour
behind each (tasks start, deployments roll, DRAINING moves tasks, protection holds, groups
launch and terminate). Prints one JSON summary; any failed expectation exits non-zero.

Usage: tour.py URL   (a twin of scenarios new-instance-joins at --speed 1; the script moves
its clock with POST /_twin/advance, so nothing waits on the wall clock)
"""
import json
import sys
import urllib.request

import boto3
from botocore.exceptions import ClientError

url = sys.argv[1]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **kw)
asg = boto3.client("autoscaling", **kw)
cw = boto3.client("cloudwatch", **kw)
out = {}


def advance(seconds):
    req = urllib.request.Request(f"{url}/_twin/advance?seconds={seconds}", method="POST")
    return json.load(urllib.request.urlopen(req))


def expect(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def code(fn, **args):
    try:
        fn(**args)
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def pages(op, key, size, **args):
    items, n = [], 0
    for pg in ecs.get_paginator(op).paginate(PaginationConfig={"PageSize": size}, **args):
        items += pg[key]
        n += 1
    return items, n


clusters = ecs.list_clusters()["clusterArns"]
cl = clusters[0].split("/")[-1]
desc = ecs.describe_clusters(clusters=[cl], include=["TAGS"])["clusters"][0]
expect(desc["status"] == "ACTIVE" and desc["registeredContainerInstancesCount"] == 3, f"cluster {desc}")
out["cluster_arn"] = clusters[0]

# Paging: one instance a page, two services a page, ten tasks a page.
cis, n = pages("list_container_instances", "containerInstanceArns", 1, cluster=cl)
expect(len(cis) == 3 and n == 3, f"3 instances in 3 pages, got {len(cis)} in {n}")
insts = ecs.describe_container_instances(cluster=cl, containerInstances=cis)["containerInstances"]
for i in insts:
    reg = {r["name"]: r for r in i["registeredResources"]}
    rem = {r["name"]: r for r in i["remainingResources"]}
    expect(reg["CPU"]["integerValue"] == 4096 and 0 <= rem["CPU"]["integerValue"] < 4096, "m5.xlarge has 4096 CPU, some reserved")
svcs, n = pages("list_services", "serviceArns", 2, cluster=cl)
expect(len(svcs) == 4 and n == 2, f"4 services in 2 pages, got {len(svcs)} in {n}")
expect(len(ecs.list_services(cluster=cl)["serviceArns"]) == 4, "ListServices' default page is 10")
tasks, n = pages("list_tasks", "taskArns", 10, cluster=cl)
expect(len(tasks) == 35 and n == 4, f"35 tasks in 4 pages, got {len(tasks)} in {n}")
described = ecs.describe_tasks(cluster=cl, tasks=tasks)["tasks"]
expect(all(t["lastStatus"] == "RUNNING" for t in described), "every task runs")
out["paging"] = {"instances": len(cis), "services": len(svcs), "tasks": len(tasks)}
api_tasks = ecs.list_tasks(cluster=cl, serviceName="api")["taskArns"]
expect(len(api_tasks) == 18, "ListTasks filters by service")

# Errors in AWS's shapes.
errors = {
    "cluster": code(ecs.describe_services, cluster="nope", services=["api"]),
    "service": code(ecs.update_service, cluster=cl, service="nope", desiredCount=1),
    "too_many": code(ecs.describe_services, cluster=cl, services=["api"] * 11),
    "token": code(ecs.list_tasks, cluster=cl, nextToken="not-a-token"),
    "expiry": code(ecs.update_task_protection, cluster=cl, tasks=api_tasks[:1], protectionEnabled=True, expiresInMinutes=5000),
    "group_max": code(asg.set_desired_capacity, AutoScalingGroupName="asg-main", DesiredCapacity=99),
    "task_def": code(ecs.describe_task_definition, taskDefinition="nope:9"),
}
expect(errors == {
    "cluster": "ClusterNotFoundException",
    "service": "ServiceNotFoundException",
    "too_many": "InvalidParameterException",
    "token": "InvalidParameterException",
    "expiry": "InvalidParameterException",
    "group_max": "ValidationError",
    "task_def": "ClientException",
}, f"errors {errors}")
out["errors"] = errors

# Task definitions, standalone tasks.
container = {"name": "tour", "image": "public.ecr.aws/docker/library/busybox:latest", "cpu": 128, "memory": 256}
r1 = ecs.register_task_definition(family="tour", containerDefinitions=[container])["taskDefinition"]
r2 = ecs.register_task_definition(family="tour", containerDefinitions=[dict(container, memory=384)])["taskDefinition"]
expect((r1["revision"], r2["revision"]) == (1, 2), "revisions count up")
expect(ecs.describe_task_definition(taskDefinition="tour")["taskDefinition"]["revision"] == 2, "a family names its latest")
run = ecs.run_task(cluster=cl, taskDefinition="tour:1", count=2, startedBy="tour")
expect(len(run["tasks"]) == 2 and run["failures"] == [], f"RunTask places 2: {run['failures']}")
expect(all(t["lastStatus"] == "PENDING" for t in run["tasks"]), "new tasks are PENDING")
start = ecs.start_task(cluster=cl, taskDefinition="tour:1", containerInstances=[cis[0]], startedBy="tour")
expect(start["tasks"][0]["containerInstanceArn"] == cis[0], "StartTask places on the instance asked")
advance(60)
mine = ecs.list_tasks(cluster=cl, startedBy="tour")["taskArns"]
expect(len(mine) == 3, f"3 tasks started by tour, got {len(mine)}")
expect(all(t["lastStatus"] == "RUNNING" for t in ecs.describe_tasks(cluster=cl, tasks=mine)["tasks"]), "they start")
stopped = ecs.stop_task(cluster=cl, task=mine[0], reason="tour")["task"]
expect(stopped["desiredStatus"] == "STOPPED", "StopTask stops")
expect(mine[0] in ecs.list_tasks(cluster=cl, desiredStatus="STOPPED", family="tour")["taskArns"], "listed as STOPPED")
huge = ecs.register_task_definition(family="huge", containerDefinitions=[dict(container, name="huge", memory=60000)])
fail = ecs.run_task(cluster=cl, taskDefinition="huge", count=1)
expect(fail["tasks"] == [] and fail["failures"][0]["reason"] == "RESOURCE:MEMORY", f"no room: {fail['failures']}")
out["standalone"] = {"run": 2, "started": 1, "stopped": 1, "no_room": fail["failures"][0]["reason"]}

# A service: created, placed by its strategy, rolled to a new task definition.
ecs.create_service(cluster=cl, serviceName="tour-svc", taskDefinition="tour:1", desiredCount=3,
                   placementStrategy=[{"type": "spread", "field": "instanceId"}])
advance(60)
s = ecs.describe_services(cluster=cl, services=["tour-svc"])["services"][0]
expect(s["runningCount"] == 3, f"the service starts its tasks: {s['runningCount']}")
where = {t["containerInstanceArn"] for t in ecs.describe_tasks(cluster=cl, tasks=ecs.list_tasks(cluster=cl, serviceName="tour-svc")["taskArns"])["tasks"]}
expect(len(where) == 3, "spread(instanceId) puts one on each instance")
before = set(ecs.list_tasks(cluster=cl, serviceName="tour-svc")["taskArns"])
ecs.update_service(cluster=cl, service="tour-svc", taskDefinition="tour:2")
s = ecs.describe_services(cluster=cl, services=["tour-svc"])["services"][0]
expect(len(s["deployments"]) == 2 and s["deployments"][0]["taskDefinition"].endswith("tour:2"), "a new PRIMARY deployment")
advance(300)
s = ecs.describe_services(cluster=cl, services=["tour-svc"])["services"][0]
now = ecs.list_tasks(cluster=cl, serviceName="tour-svc")["taskArns"]
defs = {t["taskDefinitionArn"].split("/")[-1] for t in ecs.describe_tasks(cluster=cl, tasks=now)["tasks"]}
expect(len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED", f"rolled: {s['deployments']}")
expect(defs == {"tour:2"} and not (set(now) & before), f"every task replaced with tour:2: {defs}")
out["rolling_update"] = {"replaced": len(before), "task_definition": "tour:2"}

# forceNewDeployment replaces every task of a service.
api_before = set(ecs.list_tasks(cluster=cl, serviceName="api")["taskArns"])
ecs.update_service(cluster=cl, service="api", forceNewDeployment=True)
advance(600)
api_after = set(ecs.list_tasks(cluster=cl, serviceName="api")["taskArns"])
s = ecs.describe_services(cluster=cl, services=["api"])["services"][0]
expect(len(api_after) == 18 and not (api_after & api_before) and s["runningCount"] == 18, "forceNewDeployment replaced all 18")
out["force_new_deployment"] = len(api_before)

# DRAINING moves the service tasks off an instance; ACTIVE takes it back.
victim = cis[1]
ecs.update_container_instances_state(cluster=cl, containerInstances=[victim], status="DRAINING")
advance(600)
on_victim = ecs.list_tasks(cluster=cl, containerInstance=victim)["taskArns"]
left = [t["group"] for t in ecs.describe_tasks(cluster=cl, tasks=on_victim)["tasks"]] if on_victim else []
services = ecs.describe_services(cluster=cl, services=["api", "worker", "cache"])["services"]
expect(all(g.startswith("family:") for g in left), f"only standalone tasks stay on a DRAINING instance: {left}")
expect(all(x["runningCount"] == x["desiredCount"] for x in services if x["serviceName"] != "cache"), "replaced elsewhere")
ecs.update_container_instances_state(cluster=cl, containerInstances=[victim], status="ACTIVE")
out["drained_left"] = left

# Task scale-in protection survives a scale-in.
keep = ecs.list_tasks(cluster=cl, serviceName="worker")["taskArns"][:2]
p = ecs.update_task_protection(cluster=cl, tasks=keep, protectionEnabled=True, expiresInMinutes=60)
expect(all(t["protectionEnabled"] for t in p["protectedTasks"]), "protection on")
got = ecs.get_task_protection(cluster=cl, tasks=keep)["protectedTasks"]
expect(all(t["protectionEnabled"] and "expirationDate" in t for t in got), "GetTaskProtection shows it")
ecs.update_service(cluster=cl, service="worker", desiredCount=2)
advance(120)
left = set(ecs.list_tasks(cluster=cl, serviceName="worker")["taskArns"])
expect(left == set(keep), f"scale-in stops the unprotected: {len(left)} left")
out["protected_kept"] = len(left)

# Auto Scaling: a launch that registers, a termination that deregisters.
ecs.update_service(cluster=cl, service="worker", desiredCount=9)
# (The scenario's own event at 10 minutes has taken the group to 4 already.)
d0 = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["asg-main"])["AutoScalingGroups"][0]["DesiredCapacity"]
asg.set_desired_capacity(AutoScalingGroupName="asg-main", DesiredCapacity=d0 + 1)
g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["asg-main"])["AutoScalingGroups"][0]
expect(g["DesiredCapacity"] == d0 + 1 and len(g["Instances"]) == d0 + 1, "one more instance launches")
expect(any(i["LifecycleState"] == "Pending" for i in g["Instances"]), "it is Pending while it boots")
expect(code(asg.set_desired_capacity, AutoScalingGroupName="asg-main", DesiredCapacity=d0 + 2, HonorCooldown=True) == "ScalingActivityInProgress", "the cooldown holds")
advance(300)
expect(len(ecs.list_container_instances(cluster=cl)["containerInstanceArns"]) == d0 + 1, "it registers with the cluster")
newest = [i for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=["asg-main"])["AutoScalingGroups"][0]["Instances"]]
target = newest[-1]["InstanceId"]
act = asg.terminate_instance_in_auto_scaling_group(InstanceId=target, ShouldDecrementDesiredCapacity=True)["Activity"]
expect(act["StatusCode"] == "InProgress", "an activity")
advance(60)
g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["asg-main"])["AutoScalingGroups"][0]
expect(g["DesiredCapacity"] == d0 and target not in [i["InstanceId"] for i in g["Instances"]], "terminated, desired back")
expect(len(ecs.list_container_instances(cluster=cl)["containerInstanceArns"]) == d0, "and deregistered")
out["groups"] = {"launched": 1, "terminated": target}

# CloudWatch GetMetricData (boto3 speaks rpcv2Cbor to CloudWatch).
import time
r = cw.get_metric_data(
    MetricDataQueries=[{"Id": "m0", "MetricStat": {"Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUReservation",
                        "Dimensions": [{"Name": "ClusterName", "Value": cl}]}, "Period": 60, "Stat": "Average"}}],
    StartTime=time.time() - 7200, EndTime=time.time() + 60)
vals = r["MetricDataResults"][0]["Values"]
expect(len(vals) >= 10 and all(0 < v <= 100 for v in vals), f"CPUReservation datapoints: {vals[:5]}")
out["metric_datapoints"] = len(vals)
print(json.dumps(out))
