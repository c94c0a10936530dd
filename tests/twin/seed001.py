"""Seed 001's published Python (the article's two code blocks, `../shared/seeds/001_*.txt`)
run against the twin with boto3, its AWS calls exactly as published.

The one change is mechanical: the article is Python 2, whose `print x` statement Python 3
cannot parse, so each such statement becomes a `print(x)` call. `get_cluster_services`,
which the article calls but does not show, is the published repository's: one ListServices
call for the cluster's service ARNs. The event's fields (`containerInstanceArn`,
`agentConnected`) come from the command line, as the Lambda function reads them from the
"ECS Container Instance State Change" event.

Usage: seed001.py URL SEED_FILE CLUSTER CONTAINER_INSTANCE_ARN
Prints JSON: what the function printed, line by line.
"""
import contextlib
import io
import json
import re
import sys
import textwrap

import boto3

url, seed_file, cluster, instance_arn = sys.argv[1:5]
text = open(seed_file, encoding="utf-8").read()
blocks = re.findall(r"~~~python\n(.*?)~~~", text, flags=re.S)
assert len(blocks) == 2, f"the article has two code blocks, found {len(blocks)}"
event_block, rebalance_block = blocks
assert "def rebalance_tasks" in rebalance_block


def py3(block):
    # `print "a", b` → `print("a", b)`; lines already calling print(...) are left alone.
    return re.sub(r"^(\s*)print (?!\()(.*)$", r"\1print(\2)", block, flags=re.M)


body = textwrap.indent(textwrap.dedent(py3(rebalance_block) + "\n" + py3(event_block)), "    ")
source = "def handler(containerInstanceArn, agentConnected):\n" + body
ecs = boto3.client("ecs", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
cluster_name = cluster


def get_cluster_services():
    return ecs.list_services(cluster=cluster_name)["serviceArns"]


scope = {"ecs": ecs, "cluster_name": cluster_name, "get_cluster_services": get_cluster_services}
exec(compile(source, seed_file, "exec"), scope)
captured = io.StringIO()
with contextlib.redirect_stdout(captured):
    scope["handler"](instance_arn, True)
print(json.dumps({"printed": captured.getvalue().splitlines()}))
