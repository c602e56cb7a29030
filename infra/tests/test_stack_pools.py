"""Node pools in the CloudFormation stack (infra/README.md, "Pools"): the Pools parameter gives
one launch template per pool, each tagged with the cluster and its pool, and KScalerPolicy
launches only from templates tagged with the cluster, Spot included.

The stack is expanded by cfn-lint's own AWS::LanguageExtensions transform for a value of Pools
(stack_model.expanded); the policy's effect is asked of stack_model's IAM model."""

import re

import pytest

from conftest import STACK
from stack_model import (ACCOUNT, CLUSTER, SUBNET, TEMPLATE_IMAGE, TEMPLATE_SECURITY_GROUP, arn, allows, as_list,
                         concrete, expanded, image_arn, load, policy_statements, resources_of_type, run_instances,
                         with_statement)
from test_cfn_lint import cfn_lint

POOL_VALUES = {
    None: ["general"],  # the default
    "general,batch": ["general", "batch"],
    "general,batch,gpu-spot": ["general", "batch", "gpu-spot"],
}


def launch_templates(template):
    """Each launch template of the stack by its concrete name kscaler-<cluster>-<pool>."""
    found = {}
    for resource in resources_of_type(template, "AWS::EC2::LaunchTemplate").values():
        name = concrete(resource["Properties"]["LaunchTemplateName"])
        assert name not in found, f"two templates named {name}"
        found[name] = resource["Properties"]
    return found


def template_tags(properties):
    """The tags a launch template resource carries (TagSpecifications for launch-template)."""
    [spec] = [s for s in properties.get("TagSpecifications", []) if s["ResourceType"] == "launch-template"]
    return {tag["Key"]: concrete(tag["Value"]) for tag in spec["Tags"]}


@pytest.mark.parametrize("pools", POOL_VALUES, ids=lambda p: p or "default")
def test_one_launch_template_per_pool(pools):
    template = expanded(pools)
    names = list(POOL_VALUES[pools])
    assert sorted(launch_templates(template)) == sorted(f"kscaler-{CLUSTER}-{pool}" for pool in names)


def test_pools_defaults_to_one_general_pool():
    assert load()["Parameters"]["Pools"]["Type"] == "CommaDelimitedList"
    assert load()["Parameters"]["Pools"]["Default"] == "general"


@pytest.mark.parametrize("pools", POOL_VALUES, ids=lambda p: p or "default")
def test_every_template_is_tagged_with_the_cluster_and_its_pool(pools):
    for name, properties in launch_templates(expanded(pools)).items():
        pool = name.removeprefix(f"kscaler-{CLUSTER}-")
        assert template_tags(properties) == {"kscaler:cluster": CLUSTER, "kscaler:pool": pool}, name


@pytest.mark.parametrize("pools", POOL_VALUES, ids=lambda p: p or "default")
def test_every_template_keeps_the_worker_wiring(pools):
    """IMDSv2 one hop, an encrypted root volume, the worker instance profile and security groups,
    the worker AMI; no instance tags and no market: kscaler sets both per launch."""
    for name, properties in launch_templates(expanded(pools)).items():
        data = properties["LaunchTemplateData"]
        assert data["MetadataOptions"] == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1}, name
        [root] = data["BlockDeviceMappings"]
        assert root["DeviceName"] == {"Ref": "WorkerRootDeviceName"}
        assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["DeleteOnTermination"] is True, name
        assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["WorkerInstanceProfile", "Arn"]}}, name
        assert data["SecurityGroupIds"] == {"Ref": "WorkerSecurityGroupIds"}, name
        assert data["ImageId"] == {"Ref": "WorkerImageId"}, name
        assert data["InstanceInitiatedShutdownBehavior"] == "terminate", name
        assert "InstanceMarketOptions" not in data and "TagSpecifications" not in data, name


@pytest.mark.parametrize("pools", POOL_VALUES, ids=lambda p: p or "default")
def test_outputs_name_each_pools_template(pools):
    template = expanded(pools)
    outputs = {name: concrete(o["Value"]) for name, o in template["Outputs"].items() if name.startswith("LaunchTemplateName")}
    expected = {"LaunchTemplateName" + re.sub("[^a-z0-9]", "", pool): f"kscaler-{CLUSTER}-{pool}" for pool in POOL_VALUES[pools]}
    assert outputs == expected
    assert set(outputs.values()) == set(launch_templates(template))


def test_stack_with_several_pools_passes_cfn_lint(tmp_path):
    several = tmp_path / "kscaler.yaml"
    several.write_text(STACK.read_text().replace("    Default: general\n", '    Default: "general,batch,gpu-spot"\n', 1))
    assert len(launch_templates(expanded(path=several))) == 3
    result = cfn_lint(several)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pools_that_lose_their_difference_in_a_logical_id_are_refused(tmp_path):
    """gen-eral and general are both LaunchTemplategeneral: the transform refuses the pair."""
    clash = tmp_path / "kscaler.yaml"
    clash.write_text(STACK.read_text().replace("    Default: general\n", '    Default: "general,gen-eral"\n', 1))
    result = cfn_lint(clash)
    assert result.returncode & 2, result.stdout
    assert "Duplicate LaunchTemplategeneral" in result.stdout


def test_pools_parameter_takes_pool_names_only():
    """The rule of a kscaler pool name: 1 to 40 of a-z 0-9 -, a letter or digit at both ends."""
    pattern = load()["Parameters"]["Pools"]["AllowedPattern"]
    for name in ("general", "batch", "gpu-spot", "a", "0", "a" * 40):
        assert re.fullmatch(pattern, name), name
    for name in ("", "General", "-batch", "batch-", "gpu_spot", "gpu.spot", "a" * 41, "general,batch"):
        assert not re.fullmatch(pattern, name), name


# ---------------------------------------------------------------------------------------------
# KScalerPolicy: launches from the pools' templates only


@pytest.fixture(scope="module")
def two_pools():
    return expanded("general,batch")


@pytest.fixture(scope="module")
def every_statement(two_pools):
    """Every statement the policy can hold (all conditions true): what a denial is checked against."""
    return policy_statements(two_pools)


@pytest.fixture(scope="module")
def fewest_statements(two_pools):
    """The statements it holds without Kubernetes access: what an allowance is checked against."""
    return policy_statements(two_pools, off={"KubernetesAccess"})


@pytest.fixture(scope="module")
def pool_templates(two_pools):
    """(ARN, tags) of each pool's template as deployed: an id stands in for the one EC2 gives."""
    return {name: (arn(f"launch-template/lt-0{index}23456789abcdef0"), template_tags(properties))
            for index, (name, properties) in enumerate(sorted(launch_templates(two_pools).items()))}


CLUSTER_TAGS = {"kscaler:cluster": CLUSTER}


@pytest.mark.parametrize("spot,tag_spot_request", [(False, False), (True, False), (True, True)],
                         ids=["on-demand", "spot", "spot-request-tagged"])
def test_kscaler_launches_tagged_workers_from_each_pools_template(fewest_statements, pool_templates, spot, tag_spot_request):
    assert len(pool_templates) == 2
    for name, (template, tags) in pool_templates.items():
        pool = name.removeprefix(f"kscaler-{CLUSTER}-")
        allowed, denied = run_instances(fewest_statements, template, tags, {**CLUSTER_TAGS, "kscaler:pool": pool},
                                        spot=spot, tag_spot_request=tag_spot_request)
        assert allowed, (name, denied)


@pytest.mark.parametrize("foreign_tags", [{}, {"kscaler:cluster": "other"}, {"kscaler:pool": "general"}],
                         ids=["untagged", "other-cluster", "pool-tag-only"])
def test_kscaler_launches_from_no_template_outside_the_cluster(every_statement, foreign_tags):
    foreign = arn("launch-template/lt-0ffffffffffffffff")
    allowed, denied = run_instances(every_statement, foreign, foreign_tags, CLUSTER_TAGS)
    assert not allowed
    assert denied == [("ec2:RunInstances", foreign)]


def test_kscaler_launches_nothing_without_a_launch_template(every_statement):
    allowed, denied = run_instances(every_statement, None, None, CLUSTER_TAGS)
    assert not allowed
    # Every resource of the launch asks for the template (ec2:LaunchTemplate), not only the instance.
    assert {resource for _, resource in denied} == {
        arn("instance/*"), arn("volume/*"), arn("network-interface/*"), arn(f"subnet/{SUBNET}"),
        arn(f"security-group/{TEMPLATE_SECURITY_GROUP}"), image_arn(TEMPLATE_IMAGE)}


@pytest.mark.parametrize("request_tags", [{}, {"kscaler:cluster": "other"}, {"kscaler:pool": "general"}],
                         ids=["untagged", "other-cluster", "pool-tag-only"])
def test_kscaler_launches_no_instance_without_its_cluster_tag(every_statement, pool_templates, request_tags):
    for template, tags in pool_templates.values():
        allowed, denied = run_instances(every_statement, template, tags, request_tags)
        assert not allowed
        assert ("ec2:RunInstances", arn("instance/*")) in denied


def test_kscaler_tags_no_spot_request_for_another_cluster(every_statement, pool_templates):
    template, tags = pool_templates[f"kscaler-{CLUSTER}-batch"]
    allowed, denied = run_instances(every_statement, template, tags, {"kscaler:cluster": "other"}, spot=True, tag_spot_request=True)
    assert not allowed
    assert ("ec2:RunInstances", arn("spot-instances-request/*")) in denied


def test_kscaler_tags_spot_requests_only_while_launching(every_statement):
    spot_request = arn("spot-instances-request/sir-0123456789")
    assert allows(every_statement, "ec2:CreateTags", spot_request, {"ec2:CreateAction": "RunInstances", **{
        "aws:RequestTag/kscaler:cluster": CLUSTER}})
    assert not allows(every_statement, "ec2:CreateTags", spot_request, {"aws:RequestTag/kscaler:cluster": CLUSTER})


def test_kscaler_may_see_spot_interruptions(fewest_statements):
    assert allows(fewest_statements, "ec2:DescribeSpotInstanceRequests", "*")
    assert allows(fewest_statements, "ec2:DescribeInstances", "*")


def test_no_statement_opens_launch_templates_without_the_cluster_tag(every_statement):
    """Every RunInstances statement that reaches a launch template requires the template's tag."""
    template = arn("launch-template/lt-0123456789abcdef0")
    reaching = [s for s in every_statement if allows([{**s, "Condition": {}}], "ec2:RunInstances", template)]
    assert reaching, "no statement allows any launch template"
    for statement in reaching:
        assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/kscaler:cluster": CLUSTER}}, statement["Sid"]


def test_spot_requests_only_under_the_clusters_request_tag(every_statement):
    """The spot-instances-request resource appears only in a statement of its own, conditioned on the
    cluster's request tag: RunInstances has no ec2:LaunchTemplate key for it (Service Authorization
    Reference), and the template rule stays on the instance every launch creates."""
    spot = [s for s in every_statement if any("spot-instances-request" in r for r in as_list(s["Resource"]))]
    launch = [s for s in spot if "ec2:RunInstances" in as_list(s["Action"])]
    [statement] = launch
    assert as_list(statement["Resource"]) == [arn("spot-instances-request/*")]
    assert statement["Condition"] == {"StringEquals": {"aws:RequestTag/kscaler:cluster": CLUSTER}}
    [tagging] = [s for s in spot if s is not statement]
    assert tagging["Action"] == "ec2:CreateTags"
    assert tagging["Condition"] == {"StringEquals": {"ec2:CreateAction": "RunInstances"}}


def test_the_model_sees_a_statement_that_opens_every_template(fewest_statements):
    """The tests above can fail: a statement allowing any launch template lets a foreign one through."""
    foreign = arn("launch-template/lt-0ffffffffffffffff")
    assert not run_instances(fewest_statements, foreign, {}, CLUSTER_TAGS)[0]
    widened = with_statement(fewest_statements, {"Sid": "Wide", "Effect": "Allow", "Action": "ec2:RunInstances",
                                                 "Resource": arn("launch-template/*")})
    assert run_instances(widened, foreign, {}, CLUSTER_TAGS)[0]
    with pytest.raises(AssertionError, match="operator StringEqualsIgnoreCase is not implemented"):
        allows(with_statement(fewest_statements, {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
                                                  "Condition": {"StringEqualsIgnoreCase": {"aws:RequestTag/x": "*"}}}),
               "ec2:RunInstances", arn("launch-template/lt-1"))


def test_policy_lives_in_this_account_and_region_only(every_statement):
    """Every EC2 ARN the policy names is of the stack's account and region (an image ARN has no
    account: its statement pins the template's image by condition, test_iam_policy.py)."""
    for statement in every_statement:
        for resource in as_list(statement["Resource"]):
            if resource.startswith("arn:aws:ec2:"):
                assert resource.startswith(f"arn:aws:ec2:eu-west-1:{ACCOUNT}:") or resource == "arn:aws:ec2:eu-west-1::image/*", resource
