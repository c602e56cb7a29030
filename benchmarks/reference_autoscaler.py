"""The reference for kscaler's lean-binary targets (issue 18): the classic Lambda autoscaler a
team writes in Python with boto3, rendered faithfully enough to weigh the same run. One no-op
run: take a lock with a conditional PutItem, read the signals from Prometheus, list the managed
instances, decide nothing, release the lock. bench.py runs it beside `kscaler run` against the
same moto and Prometheus and reports its wall time, CPU and peak RSS.

    python reference_autoscaler.py TABLE CLUSTER PROMETHEUS-URL
(the AWS endpoint, region and credentials come from the environment, as in Lambda)
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

import boto3

QUERIES = [
    "sum(kube_pod_status_unschedulable)",
    'sum(kube_pod_container_resource_requests{resource="cpu"} * on(pod, namespace) group_left() (kube_pod_status_phase{phase="Pending"} == 1))',
    'sum(kube_pod_container_resource_requests{resource="memory"} * on(pod, namespace) group_left() (kube_pod_status_phase{phase="Pending"} == 1))',
    'sum(kube_pod_container_resource_requests{resource="cpu"}) / sum(kube_node_status_allocatable{resource="cpu"})',
    'sum(kube_pod_container_resource_requests{resource="memory"}) / sum(kube_node_status_allocatable{resource="memory"})',
    'sum(kube_node_status_condition{condition="Ready",status="true"})',
]


def main():
    table, cluster, prometheus = sys.argv[1:4]
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    ec2 = boto3.client("ec2", endpoint_url=endpoint)
    key = {"cluster_id": {"S": cluster}, "record": {"S": "reference-lock"}}
    now = int(time.time())
    dynamodb.put_item(TableName=table, Item={**key, "expires": {"N": str(now + 120)}},
                      ConditionExpression="attribute_not_exists(cluster_id) OR expires < :now",
                      ExpressionAttributeValues={":now": {"N": str(now)}})
    try:
        signals = {}
        for query in QUERIES:
            with urllib.request.urlopen(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query}), timeout=10) as answer:
                result = json.load(answer)["data"]["result"]
            signals[query] = float(result[0]["value"][1]) if result else None
        pages = ec2.get_paginator("describe_instances").paginate(Filters=[
            {"Name": "tag:kscaler:cluster", "Values": [cluster]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])
        instances = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
        decision = "nothing" if not signals[QUERIES[0]] else "scale up"
        print(json.dumps({"instances": len(instances), "decision": decision}))
    finally:
        dynamodb.delete_item(TableName=table, Key=key)


if __name__ == "__main__":
    main()
