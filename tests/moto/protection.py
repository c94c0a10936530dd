"""Prints the scale-in protection of tasks as GetTaskProtection reports it:
{"TASK_ARN": {"enabled": bool, "expires": ISO 8601 or null}}.

usage: python3 protection.py ENDPOINT CLUSTER TASK_ARN...
"""

import json
import sys

import boto3

endpoint, cluster, tasks = sys.argv[1], sys.argv[2], sys.argv[3:]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **kw)
out = {}
for i in range(0, len(tasks), 10):
    for t in ecs.get_task_protection(cluster=cluster, tasks=tasks[i:i + 10])["protectedTasks"]:
        exp = t.get("expirationDate")
        out[t["taskArn"]] = {"enabled": t["protectionEnabled"], "expires": exp.isoformat() if exp else None}
print(json.dumps(out))
