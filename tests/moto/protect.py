"""Turns on scale-in protection for one task (as a user or an application would).

usage: python3 protect.py ENDPOINT CLUSTER TASK_ARN
"""

import json
import sys

import boto3

endpoint, cluster, task = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
r = boto3.client("ecs", **kw).update_task_protection(cluster=cluster, tasks=[task], protectionEnabled=True, expiresInMinutes=60)
print(json.dumps({"protected": [t["taskArn"] for t in r["protectedTasks"] if t["protectionEnabled"]]}))
