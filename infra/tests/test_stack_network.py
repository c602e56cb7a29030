"""The stack pieces the walk-through needs (infra/README.md): the node and task security groups
with the ports k3s and the Fargate task need, the ECR repository, and the config parameter the
stack creates before the schedule that reads it, which stays off until the operator turns it on."""

import json
import os
import subprocess

import pytest

from conftest import REGION, STACK
from stack_model import load, resolve

CLUSTER = "demo"


@pytest.fixture(scope="module")
def template():
    return load(STACK)


@pytest.fixture(scope="module")
def resources(template):
    return template["Resources"]


def evaluate(node, parameters):
    """A value as CloudFormation computes it from `parameters` (name -> string or list): Ref of a
    parameter, a resource as <Name>, Fn::If on the conditions of the template, Join, Split,
    Equals, Not. Anything else fails the test instead of being guessed."""
    template = load(STACK)
    conditions = template["Conditions"]

    def ev(n):
        if isinstance(n, list):
            return [ev(i) for i in n]
        if not isinstance(n, dict):
            return n
        [(function, argument)] = n.items()
        if function == "Ref":
            return parameters[argument] if argument in template["Parameters"] else f"<{argument}>"
        if function == "Fn::If":
            name, then, otherwise = argument
            return ev(then if ev(conditions[name]) else otherwise)
        if function == "Fn::Join":
            separator, items = argument
            items = ev(items)
            return separator.join(items)
        if function == "Fn::Split":
            separator, text = argument
            return ev(text).split(separator)
        if function == "Fn::Equals":
            return ev(argument[0]) == ev(argument[1])
        if function == "Fn::Not":
            return not ev(argument[0])
        raise AssertionError(f"evaluate: {function} is not handled")

    return ev(node)


def as_list(value):
    """A CommaDelimitedList parameter as CloudFormation passes it: "" is [""]."""
    return value.split(",")


def test_vpc_parameter_is_the_shared_one(template):
    """The IAM engineer adds the same parameter: its type and text must stay identical."""
    vpc = template["Parameters"]["VpcId"]
    assert vpc == {"Type": "AWS::EC2::VPC::Id",
                   "Description": "The cluster's VPC: kscaler launches workers only into its subnets, "
                                  "and the stack's node security group lives in it."}
    names = list(template["Parameters"])
    assert names.index("VpcId") == names.index("WorkerSecurityGroupIds") + 1


def ingress(resources, group):
    """(protocol, from, to, source group) of every ingress rule of `group`."""
    rules = set()
    for resource in resources.values():
        if isinstance(resource, dict) and resource["Type"] == "AWS::EC2::SecurityGroupIngress" and resource["Properties"]["GroupId"] == {"Ref": group}:
            p = resource["Properties"]
            assert "CidrIp" not in p and "CidrIpv6" not in p, p  # groups only, never an address range
            source = p["SourceSecurityGroupId"]["Ref"]
            rules.add((p["IpProtocol"], json.dumps(p["FromPort"]), json.dumps(p["ToPort"]), source))
    assert "SecurityGroupIngress" not in resources[group]["Properties"]
    return rules


def test_nodes_reach_each_other_on_what_k3s_needs_and_nothing_else(resources):
    node = resources["NodeSecurityGroup"]["Properties"]
    assert node["VpcId"] == {"Ref": "VpcId"}
    rules = ingress(resources, "NodeSecurityGroup")
    from_nodes = {(p, f, t) for p, f, t, source in rules if source == "NodeSecurityGroup"}
    assert from_nodes == {("tcp", "6443", "6443"), ("udp", "8472", "8472"), ("tcp", "10250", "10250"),
                          ("tcp", "9100", "9100")}


def test_the_task_reaches_prometheus_and_the_api_server_only(resources, template):
    rules = ingress(resources, "NodeSecurityGroup")
    from_task = {(p, f, t) for p, f, t, source in rules if source == "TaskSecurityGroup"}
    port = json.dumps({"Ref": "PrometheusNodePort"})
    assert from_task == {("tcp", port, port), ("tcp", "6443", "6443")}
    assert template["Parameters"]["PrometheusNodePort"]["Default"] == 30090
    task = resources["TaskSecurityGroup"]["Properties"]
    assert task["VpcId"] == {"Ref": "VpcId"}
    assert ingress(resources, "TaskSecurityGroup") == set()  # egress only


def test_prometheus_node_port_matches_the_manifest(template):
    import yaml
    from conftest import REPO
    documents = list(yaml.safe_load_all((REPO / "infra/kubernetes/monitoring/30-prometheus.yaml").read_text()))
    [service] = [d for d in documents if d and d["kind"] == "Service" and d["spec"].get("type") == "NodePort"]
    [port] = service["spec"]["ports"]
    assert port["nodePort"] == template["Parameters"]["PrometheusNodePort"]["Default"]


@pytest.mark.parametrize("extra, expected", [
    ("", ["<NodeSecurityGroup>"]),
    ("sg-0aaa", ["<NodeSecurityGroup>", "sg-0aaa"]),
    ("sg-0aaa,sg-0bbb", ["<NodeSecurityGroup>", "sg-0aaa", "sg-0bbb"]),
])
def test_workers_and_task_get_the_stack_group_plus_the_extra_ones(resources, extra, expected):
    parameters = {"WorkerSecurityGroupIds": as_list(extra), "TaskSecurityGroupIds": as_list(extra)}
    launch_template = resources["Fn::ForEach::PoolLaunchTemplates"][2]["LaunchTemplate&{Pool}"]
    assert evaluate(launch_template["Properties"]["LaunchTemplateData"]["SecurityGroupIds"], parameters) == expected
    network = resources["Schedule"]["Properties"]["Target"]["EcsParameters"]["NetworkConfiguration"]
    task_expected = [g.replace("NodeSecurityGroup", "TaskSecurityGroup") for g in expected]
    assert evaluate(network["AwsvpcConfiguration"]["SecurityGroups"], parameters) == task_expected


def test_image_repository_scans_keeps_tags_and_expires_old_images(resources, template):
    repository = resources["ImageRepository"]["Properties"]
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    text = repository["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
    default = template["Parameters"]["ImagesToKeep"]["Default"]
    policy = json.loads(text.replace("${ImagesToKeep}", str(default)))
    [rule] = policy["rules"]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": default}
    assert rule["action"] == {"type": "expire"}
    assert template["Outputs"]["ImageRepositoryUri"]["Value"] == {"Fn::GetAtt": ["ImageRepository", "RepositoryUri"]}


def test_stack_creates_the_config_parameter_before_the_schedule_which_starts_disabled(resources, template):
    config = resources["ConfigParameter"]
    assert "Condition" not in config  # it exists in every shape, before any schedule
    assert config["Properties"]["Name"] == {"Fn::Sub": "/kscaler/${ClusterId}/config"}
    assert config["Properties"]["Type"] == "String"
    schedule = resources["Schedule"]
    assert schedule["DependsOn"] == "ConfigParameter"
    assert schedule["Properties"]["State"] == {"Ref": "ScheduleState"}
    state = template["Parameters"]["ScheduleState"]
    assert state["Default"] == "DISABLED" and sorted(state["AllowedValues"]) == ["DISABLED", "ENABLED"]
    # The task reads the very parameter the stack creates.
    [container] = resolve(resources["TaskDefinition"])["Properties"]["ContainerDefinitions"]
    [secret] = [s for s in container["Secrets"] if s["Name"] == "KSCALER_CONFIG_YAML"]
    assert secret["ValueFrom"]["Fn::Sub"].endswith(":parameter/kscaler/${ClusterId}/config")


def test_placeholder_is_no_config():
    """The placeholder must never look like a config kscaler could run with."""
    import yaml
    value = load(STACK)["Resources"]["ConfigParameter"]["Properties"]["Value"]
    parsed = yaml.safe_load(value)
    assert parsed == {"placeholder": True}  # an unknown key: kscaler config check refuses it
    assert len(value.encode()) < 4096


def readme_put_parameter():
    """The walk-through's command that writes the config into the stack's parameter."""
    from test_readme_walkthrough import sh_blocks
    lines = [line for block in sh_blocks() for line in block.splitlines()
             if "put-parameter" in line and "/config" in line]
    assert len(lines) == 1, lines
    return lines[0].strip()


def test_walkthrough_overwrites_the_placeholder_even_beyond_4_kb(moto, tmp_path):
    """The stack creates the parameter (here: as CloudFormation would, with the placeholder); the
    walk-through's own put-parameter line, run by the real aws CLI against moto, replaces it with
    a config of more than 4 KB (the standard tier's limit; the line asks for
    Intelligent-Tiering, which moves to the advanced tier, 8 KB, only when needed)."""
    line = readme_put_parameter()
    assert "--overwrite" in line and "--tier Intelligent-Tiering" in line and "--type String" in line
    placeholder = load(STACK)["Resources"]["ConfigParameter"]["Properties"]["Value"]
    name = f"/kscaler/{CLUSTER}/config"
    moto.put_parameter(name, placeholder, kind="String")
    config = "cluster_id: demo\nregion: eu-west-1\n" + "".join(f"# padding line {i:04d} of a long config\n" for i in range(150))
    assert 4096 < len(config.encode()) < 8192
    (tmp_path / "config.yaml").write_text(config)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
           "AWS_ACCESS_KEY_ID": os.environ["KSTEST_AWS_ACCESS_KEY_ID"],
           "AWS_SECRET_ACCESS_KEY": os.environ["KSTEST_AWS_SECRET_ACCESS_KEY"], "CLUSTER": CLUSTER}
    # The README line with its variables set: aws CLI v1 (pyenv) honours AWS_ENDPOINT_URL.
    result = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    stored = moto.get_parameter(name)
    assert stored["Type"] == "String"
    assert stored["Value"] == config


def test_ecr_accepts_the_repository_and_its_lifecycle_policy(moto):
    """The repository as the stack declares it, created in moto's ECR, which validates lifecycle
    policies against ECR's schema; its URI is one build-push.sh accepts."""
    import uuid
    template = load(STACK)
    properties = template["Resources"]["ImageRepository"]["Properties"]
    keep = template["Parameters"]["ImagesToKeep"]["Default"]
    policy = properties["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"].replace("${ImagesToKeep}", str(keep))
    ecr = moto.client("ecr")
    name = f"kscaler-t{uuid.uuid4().hex[:8]}"
    repository = ecr.create_repository(
        repositoryName=name, imageTagMutability=properties["ImageTagMutability"],
        imageScanningConfiguration={"scanOnPush": properties["ImageScanningConfiguration"]["ScanOnPush"]})["repository"]
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=policy)
    stored = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    assert stored["rules"][0]["selection"]["countNumber"] == keep
    broken = json.loads(policy)
    del broken["rules"][0]["action"]
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(broken) + " " * 100)
    script = (STACK.parent.parent / "container/build-push.sh").read_text()
    import re
    pattern = re.search(r"\[\[ \$repository =~ (\S+) \]\]", script).group(1)
    assert re.fullmatch(pattern, repository["repositoryUri"]), repository["repositoryUri"]
