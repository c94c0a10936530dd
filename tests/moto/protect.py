"""Turns on scale-in protection for one task (as a user or an application would), for 60
minutes or MINUTES, and prints the protection the emulator then reports.

usage: python3 protect.py ENDPOINT CLUSTER TASK_ARN [MINUTES]
"""

import json
import sys

import boto3

endpoint, cluster, task = sys.argv[1:4]
minutes = int(sys.argv[4]) if len(sys.argv) > 4 else 60
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
r = boto3.client("ecs", **kw).update_task_protection(cluster=cluster, tasks=[task], protectionEnabled=True, expiresInMinutes=minutes)
print(json.dumps({
    "protected": [t["taskArn"] for t in r["protectedTasks"] if t["protectionEnabled"]],
    "expires": {t["taskArn"]: t["expirationDate"].isoformat() for t in r["protectedTasks"] if t.get("expirationDate")},
}))
