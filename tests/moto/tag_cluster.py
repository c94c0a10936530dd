"""Tags a cluster (as another ballast run holding the lease would).

usage: python3 tag_cluster.py ENDPOINT CLUSTER KEY VALUE
"""

import json
import sys

import boto3

endpoint, cluster, key, value = sys.argv[1:5]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **kw)
arn = ecs.describe_clusters(clusters=[cluster])["clusters"][0]["clusterArn"]
ecs.tag_resource(resourceArn=arn, tags=[{"key": key, "value": value}])
print(json.dumps({"tagged": arn}))
