"""Registers an Application Auto Scaling target tracking policy on a service (as a user with
ECS service auto scaling would), and prints what was registered.

usage: python3 scale_target.py ENDPOINT CLUSTER SERVICE
"""

import json
import sys

import boto3

endpoint, cluster, service = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
aas = boto3.client("application-autoscaling", **kw)
rid = f"service/{cluster}/{service}"
aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension="ecs:service:DesiredCount",
                             MinCapacity=2, MaxCapacity=12)
aas.put_scaling_policy(PolicyName="cpu", ServiceNamespace="ecs", ResourceId=rid,
                       ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
                       TargetTrackingScalingPolicyConfiguration={
                           "TargetValue": 60.0,
                           "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
print(json.dumps({"resource_id": rid}))
