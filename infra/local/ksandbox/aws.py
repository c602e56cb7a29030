"""What the sandbox does in moto besides kscaler: the table and parameters kscaler expects,
the network it launches into, the initial workers, and reading the managed fleet back."""
from dataclasses import dataclass
from datetime import datetime

import boto3
from botocore.config import Config

from .peers import REGION

CLUSTER_TAG = "kscaler:cluster"
POOL_TAG = "kscaler:pool"
LAUNCH_ID_TAG = "kscaler:launch-id"


@dataclass(frozen=True)
class Instance:
    id: str
    instance_type: str
    availability_zone: str
    private_ip: str
    state: str
    launch_time: datetime
    # Its kscaler:pool tag, and EC2's InstanceLifecycle ("spot"; None: on-demand, or not reported).
    pool: str | None = None
    lifecycle: str | None = None


class MotoAccount:
    """boto3 clients signed with the sandbox user's key (moto checks every signature)."""

    def __init__(self, endpoint, credentials):
        self.endpoint = endpoint
        self.credentials = credentials

    def client(self, service):
        # One client per caller and thread: boto3 clients must not be shared across threads
        # while being created, and a fresh one costs a few milliseconds.
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=self.credentials.access_key_id,
            aws_secret_access_key=self.credentials.secret_access_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10))

    def create_table(self, name):
        """The layout kscaler uses (docs/architecture.md "The state document"): cluster_id + record."""
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "cluster_id", "AttributeType": "S"},
                                  {"AttributeName": "record", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "cluster_id", "KeyType": "HASH"},
                       {"AttributeName": "record", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST")
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})

    def put_join_parameters(self, cluster_id, server_url):
        """The parameters a worker's user data reads at boot (kscaler's defaults for their names)."""
        ssm = self.client("ssm")
        ssm.put_parameter(Name=f"/kscaler/{cluster_id}/join-token", Value="sandbox-join-token", Type="SecureString")
        ssm.put_parameter(Name=f"/kscaler/{cluster_id}/server-url", Value=server_url, Type="String")

    def default_network(self, zones=3):
        """The default VPC's subnets (one per zone, first `zones` zones) and default security group."""
        ec2 = self.client("ec2")
        subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        subnets = sorted(subnets, key=lambda s: s["AvailabilityZone"])[:zones]
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
        return [s["SubnetId"] for s in subnets], groups[0]["GroupId"]

    def launch_initial_workers(self, cluster_id, pool, count, image_id, instance_type, subnet_id, spot=False):
        """Workers that exist before the sandbox starts (a cluster is never created empty);
        `spot`: as Spot instances, as kscaler launches a Spot pool's."""
        if count <= 0:
            return []
        market = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
        answer = self.client("ec2").run_instances(
            ImageId=image_id, InstanceType=instance_type, MinCount=count, MaxCount=count, SubnetId=subnet_id,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": CLUSTER_TAG, "Value": cluster_id}, {"Key": POOL_TAG, "Value": pool},
                {"Key": LAUNCH_ID_TAG, "Value": "sandbox-initial"}, {"Key": "Name", "Value": f"kscaler-{cluster_id}-{pool}"}]}],
            **market)
        return [i["InstanceId"] for i in answer["Instances"]]


def managed_instances(ec2, cluster_id):
    """The cluster's pending and running instances, as kscaler sees them (same tag filter)."""
    paginator = ec2.get_paginator("describe_instances")
    instances = []
    for page in paginator.paginate(Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster_id]},
                                            {"Name": "instance-state-name", "Values": ["pending", "running"]}]):
        for reservation in page["Reservations"]:
            for i in reservation["Instances"]:
                instances.append(Instance(
                    id=i["InstanceId"], instance_type=i["InstanceType"],
                    availability_zone=i["Placement"]["AvailabilityZone"], private_ip=i.get("PrivateIpAddress", ""),
                    state=i["State"]["Name"], launch_time=i["LaunchTime"],
                    pool=next((t["Value"] for t in i.get("Tags") or [] if t["Key"] == POOL_TAG), None),
                    lifecycle=i.get("InstanceLifecycle")))
    return instances
