"""`kscaler doctor` run by the release binary with the stack's own policies attached to moto IAM
identities: each role's checks pass with exactly what the stack grants that role, and kscaler's
identity never needs the join token.

How far moto enforces IAM (moto/iam/access_control.py, the version in .venv): it matches a
request's action against each statement's Action, and its resource only against "*" (EC2,
DynamoDB and SSM pass no resource ARN), and it evaluates no condition keys. So the policies are
projected onto what moto can check: every Allow statement keeps its actions with Resource "*",
conditions dropped. What these tests prove is that each role's policy grants every *action* its
doctor checks call, and that a role without SSM actions (kscaler's, with no Kubernetes token)
passes: kscaler's doctor sends no SSM request. The resource and condition rules (which template,
image, VPC, table, items, parameter) are proven by the policy evaluator in test_iam_policy.py."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
import stack_model  # noqa: E402
from conftest import ACCOUNT, REGION, REPO, new_cluster_id  # noqa: E402
from ksandbox import exporter as ks_exporter  # noqa: E402
from ksandbox.peers import Prometheus  # noqa: E402

IMAGE = "ami-760aaa0f"  # one of moto's stock AMIs


def binary():
    path = Path(os.environ.get("KSTEST_BINARY") or REPO / ".build/release/kscaler")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no kscaler binary at {path}: swift build -c release --product kscaler, or set KSTEST_BINARY")
    return path


def moto_projection(statements):
    """The Allow statements as moto can evaluate them (see the module docstring)."""
    projected = []
    for statement in statements:
        assert statement["Effect"] in ("Allow", "Deny"), statement
        if statement["Effect"] == "Deny":
            # moto would apply a conditioned Deny unconditionally, which AWS does not.
            assert "Condition" in statement, f"an unconditional Deny must stay: {statement}"
            continue
        projected.append({"Effect": "Allow", "Action": statement["Action"], "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": projected}


def stack_policy(role, cluster):
    """The statements the stack gives `role` (KScalerPolicy, WorkerRole or ControlPlaneRole),
    resolved for moto's account and region and this cluster, Kubernetes access off."""
    template = stack_model.expanded()
    values = dict(stack_model.PSEUDO, **{"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "ClusterId": cluster})
    if role == "KScalerPolicy":
        document = stack_model.resolve(template["Resources"]["KScalerPolicy"]["Properties"]["PolicyDocument"],
                                       off={"KubernetesAccess"})
        return stack_model.concrete(document["Statement"], values)
    statements = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        statements += stack_model.concrete(stack_model.resolve(policy["PolicyDocument"])["Statement"], values)
    return statements


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus scraping one k3s server and one worker's kube-state-metrics, so the
    doctor's `count(kube_node_info)` has an answer."""
    cluster = ks_exporter.described({"workers": [{"id": "i-0doctor"}]})
    exporter = ks_exporter.Exporter(lambda: cluster).start()
    config = ("global: {scrape_interval: 1s}\nscrape_configs:\n"
              f"  - job_name: kube-state-metrics\n    metrics_path: /kube-state-metrics/metrics\n"
              f"    static_configs: [{{targets: ['{exporter.address}']}}]\n")
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), config)
    try:
        ks_exporter_ready(server.url)
        yield server.url
    finally:
        server.stop()
        exporter.stop()


def ks_exporter_ready(url, timeout=60):
    """Waits (bounded) for the first scrape to land, on this thread: no event loop is blocked."""
    import time
    import urllib.parse
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": "count(kube_node_info)"}),
                                    timeout=10) as answer:
            if json.load(answer)["data"]["result"]:
                return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus at {url} had no kube_node_info after {timeout} s")


class Deployment:
    """A cluster's table, subnet and config in moto, and a way to run doctor as an identity."""

    def __init__(self, moto, prometheus, directory):
        self.moto, self.cluster = moto, new_cluster_id()
        self.table = f"kscaler-{self.cluster}"
        moto.client("dynamodb").create_table(
            TableName=self.table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "cluster_id", "AttributeType": "S"},
                                  {"AttributeName": "record", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "cluster_id", "KeyType": "HASH"},
                       {"AttributeName": "record", "KeyType": "RANGE"}])
        ec2 = moto.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        # As the stack deploys it: the pool's template carries the image (the policy refuses an
        # image or security groups named in the request), kscaler names the template.
        self.template = f"kscaler-{self.cluster}-general"
        ec2.create_launch_template(LaunchTemplateName=self.template, LaunchTemplateData={"ImageId": IMAGE, "InstanceType": "t3.large"},
                                   TagSpecifications=[{"ResourceType": "launch-template",
                                                       "Tags": [{"Key": "kscaler:cluster", "Value": self.cluster}]}])
        self.config = Path(directory) / "config.yaml"
        self.config.write_text(
            f"cluster_id: {self.cluster}\nregion: {REGION}\ntable: {self.table}\n"
            f"prometheus: {{url: '{prometheus}'}}\nnodes: {{min: 0, max: 3}}\n"
            f"workers:\n  launch_template: {{name: {self.template}}}\n  instance_types: [t3.large]\n  subnets: [{self.subnet}]\n"
            "  sizes: {t3.large: {cpu: 2, memory: 8Gi}}\n"
            "kubernetes: {enabled: false}\n")
        self.home = Path(directory) / "home"
        self.home.mkdir()

    def identity(self, statements):
        """Access keys of a fresh moto user whose only policy is `statements`, projected."""
        iam = self.moto.client("iam")
        name = f"kscaler-doctor-{uuid.uuid4().hex[:10]}"
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="stack", PolicyDocument=json.dumps(moto_projection(statements)))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def doctor(self, credentials, *arguments):
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                       "AWS_ENDPOINT_URL": self.moto.endpoint, "AWS_REGION": REGION, **credentials}
        result = subprocess.run([str(binary()), "doctor", "--config", str(self.config), "--output", "json", *arguments],
                                env=environment, capture_output=True, text=True, timeout=120)
        assert result.stdout.startswith("{"), f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.returncode, json.loads(result.stdout), result


@pytest.fixture
def deployment(moto, prometheus, tmp_path):
    return Deployment(moto, prometheus, tmp_path)


def checks_by_name(output):
    return {check["name"]: check for check in output["checks"]}


def test_the_autoscaler_passes_doctor_with_the_stacks_own_policy(deployment):
    credentials = deployment.identity(stack_policy("KScalerPolicy", deployment.cluster))
    status, output, result = deployment.doctor(credentials)
    assert status == 0 and output["passed"], json.dumps(output, indent=2)
    checks = checks_by_name(output)
    assert output["role"] == "autoscaler"
    assert set(checks) >= {"config", "identity", "table", "ec2 launch", "prometheus", "kubernetes"}, list(checks)
    assert f"RunInstances dry run passed for launch template {deployment.template}" in checks["ec2 launch"]["detail"]
    assert "join token" not in checks and "server url" not in checks
    assert credentials["AWS_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr


def test_the_autoscalers_policy_cannot_read_the_join_token(deployment):
    """The same identity asked to check a worker's needs fails them: kscaler's policy (without a
    Kubernetes token) grants no SSM action at all, and moto refuses the read."""
    deployment.moto.put_parameter(f"/kscaler/{deployment.cluster}/join-token", "K10-secret-" + uuid.uuid4().hex)
    deployment.moto.put_parameter(f"/kscaler/{deployment.cluster}/server-url", "https://10.42.1.10:6443", "String")
    statements = stack_policy("KScalerPolicy", deployment.cluster)
    assert not any(action.startswith("ssm:") for s in statements for action in stack_model.as_list(s["Action"]))
    status, output, _ = deployment.doctor(deployment.identity(statements), "--role", "worker")
    assert status == 5 and not output["passed"]
    token = checks_by_name(output)["join token"]
    assert not token["passed"] and "AccessDenied" in token["detail"], token


def test_a_worker_passes_doctor_with_the_worker_roles_policy(deployment):
    secret = "K10-secret-" + uuid.uuid4().hex
    deployment.moto.put_parameter(f"/kscaler/{deployment.cluster}/join-token", secret)
    deployment.moto.put_parameter(f"/kscaler/{deployment.cluster}/server-url", "https://10.42.1.10:6443", "String")
    status, output, result = deployment.doctor(deployment.identity(stack_policy("WorkerRole", deployment.cluster)), "--role", "worker")
    assert status == 0 and output["passed"], json.dumps(output, indent=2)
    assert {"join token", "server url"} <= set(checks_by_name(output))
    assert secret not in result.stdout + result.stderr


def test_the_server_passes_doctor_with_the_control_plane_policy_and_changes_nothing(deployment):
    secret = "K10-secret-" + uuid.uuid4().hex
    name = f"/kscaler/{deployment.cluster}/join-token"
    deployment.moto.put_parameter(name, secret)
    deployment.moto.put_parameter(f"/kscaler/{deployment.cluster}/server-url", "https://10.42.1.10:6443", "String")
    before = deployment.moto.get_parameter(name)
    status, output, result = deployment.doctor(deployment.identity(stack_policy("ControlPlaneRole", deployment.cluster)),
                                               "--role", "server")
    assert status == 0 and output["passed"], json.dumps(output, indent=2)
    assert "readable and writable" in checks_by_name(output)["join token"]["detail"]
    after = deployment.moto.get_parameter(name)
    assert (after["Version"], after["Value"]) == (before["Version"], secret), "the probe changed the token"
    assert secret not in result.stdout + result.stderr


def test_a_worker_cannot_pass_the_servers_checks(deployment):
    """The worker role may read the join parameters but not publish them."""
    deployment.moto.put_parameter(f"/kscaler/{deployment.cluster}/join-token", "K10-secret-" + uuid.uuid4().hex)
    deployment.moto.put_parameter(f"/kscaler/{deployment.cluster}/server-url", "https://10.42.1.10:6443", "String")
    status, output, _ = deployment.doctor(deployment.identity(stack_policy("WorkerRole", deployment.cluster)), "--role", "server")
    assert status == 5
    token = checks_by_name(output)["join token"]
    assert not token["passed"] and "PutParameter" in token["detail"] and "AccessDenied" in token["detail"], token
