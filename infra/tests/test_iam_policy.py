"""What KScalerPolicy allows and refuses (issue 17, point 3), asked of the IAM evaluator
(iam_eval.py, checked against AWS's examples in test_iam_eval.py) on the expanded stack, and
every policy document of the stack run through the IAM policy linter parliament (PyPI; offline,
with its bundled copy of the Service Authorization Reference).

kscaler's launch is built as EC2RunInstances.swift sends it (query parameters), then read the
way EC2 authorises it: one authorisation per resource (stack_model.run_instances)."""

import json
import os
import re

import parliament
import pytest
from parliament import analyze_policy_string

from conftest import REPO
from iam_eval import as_list
from stack_model import (ACCOUNT, ATTRIBUTES, CLUSTER, IMAGES, KUBE_TOKEN_PARAMETER, OTHER_VPC, REGION, SECURITY_GROUPS,
                         SUBNET, SUBNETS, TEMPLATE_IMAGE, TEMPLATE_SECURITY_GROUP, VPC, WORKER_ROLE, allows, arn,
                         concrete, expanded, image_arn, policy_statements, resolve, run_instances)

TABLE = ATTRIBUTES["StateTable.Arn"]
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/admin"
PROFILES = {"kscaler-demo-WorkerInstanceProfile-1A2B3C4D5E6F": WORKER_ROLE, "admin": OTHER_ROLE}
OWN_IMAGE = next(i for i, owner in IMAGES.items() if owner == ACCOUNT and i != TEMPLATE_IMAGE)
PUBLIC_IMAGE = next(i for i, owner in IMAGES.items() if owner != ACCOUNT)
OTHER_VPC_SUBNET = next(s for s, vpc in SUBNETS.items() if vpc == OTHER_VPC)
VPC_SECURITY_GROUP = next(g for g, vpc in SECURITY_GROUPS.items() if vpc == VPC and g != TEMPLATE_SECURITY_GROUP)
OTHER_VPC_SECURITY_GROUP = next(g for g, vpc in SECURITY_GROUPS.items() if vpc == OTHER_VPC)


@pytest.fixture(scope="module")
def stack():
    return expanded("general,batch")


@pytest.fixture(scope="module")
def every_statement(stack):
    """Every statement the policy can hold (Kubernetes access on): what a denial is checked against."""
    return policy_statements(stack)


@pytest.fixture(scope="module")
def fewest_statements(stack):
    """The statements without Kubernetes access: what an allowance is checked against."""
    return policy_statements(stack, off={"KubernetesAccess"})


# Each pool's template as deployed (an id stands in for EC2's), with the tags the stack gives it.
TEMPLATES = {f"kscaler-{CLUSTER}-{pool}": (arn(f"launch-template/lt-0{i}23456789abcdef0"),
                                           {"kscaler:cluster": CLUSTER, "kscaler:pool": pool})
             for i, pool in enumerate(["general", "batch"])}


def test_the_templates_here_are_the_stacks(stack):
    tagged = {}
    for resource in stack["Resources"].values():
        if resource["Type"] == "AWS::EC2::LaunchTemplate":
            properties = resource["Properties"]
            [spec] = properties["TagSpecifications"]
            tagged[concrete(properties["LaunchTemplateName"])] = {t["Key"]: concrete(t["Value"]) for t in spec["Tags"]}
    assert tagged == {name: tags for name, (_, tags) in TEMPLATES.items()}


def kscaler_request(pool="general", spot=False, subnet=SUBNET):
    """RunInstances as kscaler sends it for a pool with a launch template and no image_id,
    security_groups or instance_profile in its config (RunInstancesRequest.queryParameters and
    EC2Fleet.request): template by name, instance type and subnet per offering, the instance's
    and volumes' tags, Spot market options, IMDSv2, a client token; no UserData."""
    parameters = [("MinCount", "1"), ("MaxCount", "1"), ("LaunchTemplate.LaunchTemplateName", f"kscaler-{CLUSTER}-{pool}"),
                  ("InstanceType", "m5.large"), ("SubnetId", subnet)]
    if spot:
        parameters += [("InstanceMarketOptions.MarketType", "spot"),
                       ("InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time"),
                       ("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "terminate")]
    instance_tags = {"Name": f"kscaler-{CLUSTER}-{pool}", "kscaler:cluster": CLUSTER, "kscaler:launch-id": "ks-1",
                     "kscaler:pool": pool}
    for number, (kind, tags) in enumerate([("instance", instance_tags),
                                           ("volume", {"kscaler:cluster": CLUSTER, "kscaler:pool": pool})], 1):
        parameters.append((f"TagSpecification.{number}.ResourceType", kind))
        for index, key in enumerate(sorted(tags), 1):
            parameters += [(f"TagSpecification.{number}.Tag.{index}.Key", key),
                           (f"TagSpecification.{number}.Tag.{index}.Value", tags[key])]
    return parameters + [("MetadataOptions.HttpTokens", "required"), ("MetadataOptions.HttpEndpoint", "enabled"),
                         ("ClientToken", "ks-1")]


def test_the_modelled_request_is_the_one_kscaler_sends():
    """kscaler_request's names and values are those of RunInstancesRequest.queryParameters and
    EC2Fleet.request; a change there (say, an ImageId with every launch) must be seen here."""
    swift = (REPO / "Sources/AWS/EC2RunInstances.swift").read_text()
    for name in ("MinCount", "MaxCount", "LaunchTemplate.LaunchTemplateName", "InstanceType", "SubnetId",
                 "InstanceMarketOptions.MarketType", "InstanceMarketOptions.SpotOptions.SpotInstanceType",
                 "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "MetadataOptions.HttpTokens",
                 "MetadataOptions.HttpEndpoint", "ClientToken"):
        assert f'"{name}"' in swift, name
    assert 'for (resourceType, tags) in [("instance", instanceTags), ("volume", volumeTags)]' in swift
    fleet = (REPO / "Sources/KScaler/EC2Fleet.swift").read_text()
    # The image, groups and profile are sent only when the config sets them (nil / empty otherwise).
    assert "imageID: workers.imageID, instanceType: offering.machineType" in fleet
    assert "subnetID: offering.placement, securityGroupIDs: workers.securityGroups" in fleet
    assert "volumeTags: [Self.clusterTag: clusterID, Self.poolTag: workers.pool]" in fleet
    assert 'let tags = [Self.clusterTag: clusterID, Self.poolTag: workers.pool, Self.launchIDTag: plan.launchID,' in fleet
    names = {k for k, _ in kscaler_request(spot=True)}
    assert not {"ImageId", "UserData", "IamInstanceProfile.Name"} & names
    assert not any(k.startswith("SecurityGroupId.") for k in names)


def without(parameters, prefix):
    return [(k, v) for k, v in parameters if not k.startswith(prefix)]


def authorise(statements, parameters, tag_spot_request=False, templates=TEMPLATES):
    """Whether EC2 would let the policy's holder make this RunInstances request, and what it
    refuses: the query parameters read into stack_model.run_instances' terms."""
    query = dict(parameters)
    known = ("MinCount", "MaxCount", "LaunchTemplate.", "ImageId", "InstanceType", "SubnetId", "SecurityGroupId.",
             "IamInstanceProfile.", "InstanceMarketOptions.", "TagSpecification.", "UserData", "MetadataOptions.",
             "ClientToken")
    assert all(k.startswith(known) for k in query), [k for k in query if not k.startswith(known)]
    template, template_tags = templates.get(query.get("LaunchTemplate.LaunchTemplateName"), (None, None))
    tags = {}
    for key, value in query.items():
        if m := re.fullmatch(r"TagSpecification\.(\d+)\.Tag\.(\d+)\.Key", key):
            kind = query[f"TagSpecification.{m[1]}.ResourceType"]
            tags.setdefault(kind, {})[value] = query[f"TagSpecification.{m[1]}.Tag.{m[2]}.Value"]
    groups = [v for k, v in parameters if k.startswith("SecurityGroupId.")]
    role = PROFILES[query["IamInstanceProfile.Name"]] if "IamInstanceProfile.Name" in query else None
    return run_instances(statements, template, template_tags, tags.get("instance"),
                         spot=query.get("InstanceMarketOptions.MarketType") == "spot", tag_spot_request=tag_spot_request,
                         subnet=query["SubnetId"], image=query.get("ImageId"), security_groups=groups or None, role=role,
                         volume_tags=tags.get("volume", {}))


# --- kscaler's own launch is allowed ---

@pytest.mark.parametrize("pool", ["general", "batch"])
@pytest.mark.parametrize("spot,tag_spot_request", [(False, False), (True, False), (True, True)],
                         ids=["on-demand", "spot", "spot-request-tagged"])
def test_kscalers_launch_from_each_pools_template_is_allowed(fewest_statements, pool, spot, tag_spot_request):
    request = kscaler_request(pool, spot=spot)
    if tag_spot_request:  # kscaler tags no Spot request today; if it did, the cluster tag would do
        request += [("TagSpecification.3.ResourceType", "spot-instances-request"),
                    ("TagSpecification.3.Tag.1.Key", "kscaler:cluster"), ("TagSpecification.3.Tag.1.Value", CLUSTER)]
    allowed, denied = authorise(fewest_statements, request, tag_spot_request=tag_spot_request)
    assert allowed, denied


def test_kscalers_launch_into_any_subnet_of_the_vpc_is_allowed(fewest_statements):
    for subnet, vpc in SUBNETS.items():
        if vpc == VPC:
            assert authorise(fewest_statements, kscaler_request(subnet=subnet))[0], subnet


def test_the_model_checks_every_resource_of_the_launch(fewest_statements):
    """A statement that allowed nothing at all would deny: the model does ask for each resource."""
    allowed, denied = authorise([], kscaler_request(spot=True))
    assert not allowed
    assert {action for action, _ in denied} == {"ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"}
    assert {resource.split(":", 5)[5].split("/")[0] for action, resource in denied if action == "ec2:RunInstances"} == {
        "instance", "volume", "network-interface", "subnet", "image", "security-group", "launch-template"}


# --- and what the issue names is denied ---

def test_a_launch_without_a_launch_template_is_denied(every_statement):
    """kscaler's launch with an image in place of the template (as a config without one sends)."""
    request = without(kscaler_request(), "LaunchTemplate.") + [("ImageId", TEMPLATE_IMAGE), ("SecurityGroupId.1", TEMPLATE_SECURITY_GROUP)]
    allowed, denied = authorise(every_statement, request)
    assert not allowed
    assert ("ec2:RunInstances", arn("instance/*")) in denied
    assert ("ec2:RunInstances", image_arn(TEMPLATE_IMAGE)) in denied


@pytest.mark.parametrize("image", [PUBLIC_IMAGE, OWN_IMAGE, TEMPLATE_IMAGE],
                         ids=["public-ami-of-another-owner", "another-ami-of-the-account", "the-templates-ami-named-again"])
def test_a_launch_overriding_the_templates_image_is_denied(every_statement, image):
    """ImageId in the request: the image is then not the template's (ec2:IsLaunchTemplateResource
    false), even when it is the same AMI: kscaler's config must leave workers.image_id out."""
    allowed, denied = authorise(every_statement, kscaler_request() + [("ImageId", image)])
    assert not allowed
    assert denied == [("ec2:RunInstances", image_arn(image))]


def test_a_template_carrying_another_image_would_pass_the_image_check(fewest_statements):
    """The policy trusts the cluster's templates: an image in a template version (a pool's own
    AMI, infra/README.md "Pools") is allowed, so only trusted administrators may write them."""
    template, tags = TEMPLATES[f"kscaler-{CLUSTER}-general"]
    allowed, _ = run_instances(fewest_statements, template, tags, {"kscaler:cluster": CLUSTER},
                               template_data={"image": OWN_IMAGE})
    assert allowed


def test_a_launch_into_a_subnet_of_another_vpc_is_denied(every_statement):
    allowed, denied = authorise(every_statement, kscaler_request(subnet=OTHER_VPC_SUBNET))
    assert not allowed
    assert set(denied) == {("ec2:RunInstances", arn(f"subnet/{OTHER_VPC_SUBNET}")), ("ec2:RunInstances", arn("network-interface/*"))}


@pytest.mark.parametrize("group", [VPC_SECURITY_GROUP, OTHER_VPC_SECURITY_GROUP, TEMPLATE_SECURITY_GROUP],
                         ids=["another-group-of-the-vpc", "a-group-of-another-vpc", "the-templates-group-named-again"])
def test_a_launch_overriding_the_templates_security_groups_is_denied(every_statement, group):
    allowed, denied = authorise(every_statement, kscaler_request() + [("SecurityGroupId.1", group)])
    assert not allowed
    assert denied == [("ec2:RunInstances", arn(f"security-group/{group}"))]


def test_a_security_group_outside_the_vpc_is_denied_even_from_a_template(every_statement):
    """The VPC condition holds on its own: a cluster template naming a group of another VPC."""
    template, tags = TEMPLATES[f"kscaler-{CLUSTER}-batch"]
    allowed, denied = run_instances(every_statement, template, tags, {"kscaler:cluster": CLUSTER},
                                    template_data={"security_groups": [OTHER_VPC_SECURITY_GROUP]})
    assert not allowed
    assert denied == [("ec2:RunInstances", arn(f"security-group/{OTHER_VPC_SECURITY_GROUP}"))]


def test_a_launch_passing_another_role_is_denied(every_statement):
    allowed, denied = authorise(every_statement, kscaler_request() + [("IamInstanceProfile.Name", "admin")])
    assert not allowed
    assert denied == [("iam:PassRole", OTHER_ROLE)]


def test_pass_role_only_of_the_worker_role_and_only_to_ec2(every_statement):
    assert allows(every_statement, "iam:PassRole", WORKER_ROLE, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allows(every_statement, "iam:PassRole", OTHER_ROLE, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allows(every_statement, "iam:PassRole", WORKER_ROLE, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not allows(every_statement, "iam:PassRole", WORKER_ROLE, {})


@pytest.mark.parametrize("tags,allowed", [
    ({"kscaler:cluster": CLUSTER}, True),
    ({}, False),
    ({"kscaler:cluster": "other"}, False),
    ({"kscaler:pool": "general"}, False),
], ids=["own-worker", "untagged", "other-cluster", "pool-tag-only"])
def test_terminate_only_instances_tagged_with_the_cluster(every_statement, tags, allowed):
    context = {**{f"ec2:ResourceTag/{k}": v for k, v in tags.items()}, **{f"aws:ResourceTag/{k}": v for k, v in tags.items()}}
    assert allows(every_statement, "ec2:TerminateInstances", arn("instance/i-0123456789abcdef0"), context) is allowed


def test_no_tag_is_written_outside_a_launch(every_statement):
    """Re-tagging someone's instance into the cluster would make it kscaler's to terminate."""
    tags = {"aws:RequestTag/kscaler:cluster": CLUSTER, "aws:TagKeys": ["kscaler:cluster"]}
    for resource in ("instance/i-0123456789abcdef0", "volume/vol-0123456789abcdef0"):
        assert not allows(every_statement, "ec2:CreateTags", arn(resource), tags)
        assert allows(every_statement, "ec2:CreateTags", arn(resource), {**tags, "ec2:CreateAction": "RunInstances"})
        assert not allows(every_statement, "ec2:CreateTags", arn(resource), {**tags, "ec2:CreateAction": "CreateTags"})


ITEM_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"]


def test_its_clusters_items_in_its_table_are_allowed(fewest_statements):
    for action in ITEM_ACTIONS:
        assert allows(fewest_statements, action, TABLE, {"dynamodb:LeadingKeys": [CLUSTER]}), action
    assert allows(fewest_statements, "dynamodb:DescribeTable", TABLE)


@pytest.mark.parametrize("action", ITEM_ACTIONS)
def test_another_clusters_items_and_another_table_are_denied(every_statement, action):
    assert not allows(every_statement, action, TABLE, {"dynamodb:LeadingKeys": ["other"]})
    assert not allows(every_statement, action, TABLE, {"dynamodb:LeadingKeys": [CLUSTER, "other"]})
    other_table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other"
    assert not allows(every_statement, action, other_table, {"dynamodb:LeadingKeys": [CLUSTER]})
    assert not allows(every_statement, action, TABLE + "/index/by-time", {"dynamodb:LeadingKeys": [CLUSTER]})


def test_items_are_never_deleted_or_scanned(every_statement):
    for action in ("dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:DeleteTable"):
        assert not allows(every_statement, action, TABLE, {"dynamodb:LeadingKeys": [CLUSTER]}), action


def parameter_arn(name):
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"


def test_kscaler_reads_its_kubernetes_token_but_not_the_join_parameters(every_statement, fewest_statements):
    assert allows(every_statement, "ssm:GetParameter", parameter_arn(KUBE_TOKEN_PARAMETER))
    assert not allows(fewest_statements, "ssm:GetParameter", parameter_arn(KUBE_TOKEN_PARAMETER))
    for name in ("join-token", "ca-cert-hash", "server-url", "config"):
        for action in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:PutParameter"):
            assert not allows(every_statement, action, parameter_arn(f"/kscaler/{CLUSTER}/{name}")), (action, name)


# --- what IAM cannot deny: user data ---

def sar():
    """parliament's bundled copy of the Service Authorization Reference, by service prefix."""
    path = os.path.join(os.path.dirname(parliament.__file__), "iam_definition.json")
    with open(path) as f:
        return {service["prefix"]: service for service in json.load(f)}


def privilege(service, action):
    [found] = [p for p in service["privileges"] if p["privilege"].lower() == action.lower()]
    return found


def test_iam_has_no_condition_key_for_user_data_so_an_override_is_allowed(fewest_statements):
    """No condition key of RunInstances, on any resource, is about user data; the policy can
    only allow a launch whatever user data it carries."""
    run = privilege(sar()["ec2"], "RunInstances")
    keys = {key for resource in run["resource_types"] for key in resource["condition_keys"]}
    assert "ec2:LaunchTemplate" in keys and len(keys) > 30  # the list is really there
    assert not [key for key in keys if "userdata" in key.lower().replace("-", "").replace("_", "")]
    request = kscaler_request() + [("UserData", "I2Nsb3VkLWNvbmZpZwpydW5jbWQ6IFtjdXJsIGV2aWxdCg==")]
    assert authorise(fewest_statements, request)[0]


def test_kscaler_sends_no_user_data_with_a_launch_template():
    """What limits an override is kscaler itself: with a launch template it renders no user data,
    and a RunInstances request carries UserData only when it was given some. Read from the
    Swift sources and the Swift test that holds the first to it."""
    renderer = (REPO / "Sources/KScaler/UserData.swift").read_text()
    body = renderer[renderer.index("static func workerUserData(for config: KScalerConfig)"):]
    assert body.index("guard config.workers.launchTemplate == nil else { return nil }") < body.index("return try render(")
    fleet = (REPO / "Sources/KScaler/EC2Fleet.swift").read_text()
    assert "userData: pool.userData.rendered.map { Data($0.utf8) }" in fleet
    assert re.search(r"var rendered: String\? \{\s*if case \.rendered\(let text\) = self \{ text \} else \{ nil \}", fleet)
    request = (REPO / "Sources/AWS/EC2RunInstances.swift").read_text()
    assert request.count('"UserData"') == 1
    assert 'if let userData { parameters.append(("UserData", userData.base64EncodedString())) }' in request
    swift_test = (REPO / "Tests/KScalerTests/UserDataRenderTests.swift").read_text()
    assert "#expect(try UserDataRenderer.workerUserData(for: withTemplate) == nil)" in swift_test


# --- the condition keys are real: each is listed for the resource it is checked on ---

# A statement's resource -> the resource type name of the Service Authorization Reference.
def resource_type(resource):
    if resource == "*":
        return None
    service_part = resource.split(":", 5)[5]
    return re.split(r"[/:]", service_part, maxsplit=1)[0]


# The one documented use the reference does not list: the Spot request of a launch.
UNLISTED = {("ec2:RunInstances", "spot-instances-request"):
            "EC2 User Guide, 'Work with Spot Instances': a launch that tags its Spot request is "
            "authorised on spot-instances-request too (with aws:RequestTag)"}


def test_every_condition_key_is_one_the_reference_lists_for_its_action_and_resource(every_statement):
    services = sar()
    checked = 0
    for statement in every_statement:
        keys = {re.sub(r"/.+$", "/${TagKey}", key) for keys in statement.get("Condition", {}).values() for key in keys}
        for action in as_list(statement["Action"]):
            if "*" in action:
                assert not keys, statement["Sid"]
                continue
            service, name = action.split(":")
            entry = privilege(services[service], name)
            anywhere = {k for r in entry["resource_types"] if r["resource_type"] == "" for k in r["condition_keys"]}
            for resource in as_list(statement["Resource"]):
                kind = resource_type(resource)
                listed = [r for r in entry["resource_types"] if r["resource_type"].rstrip("*") == kind]
                if (action, kind) in UNLISTED:
                    assert not listed, f"{action} on {kind} is listed now: drop it from UNLISTED"
                    continue
                assert listed, f"{statement['Sid']}: {action} has no resource type {kind}"
                missing = keys - set(listed[0]["condition_keys"]) - anywhere
                assert not missing, f"{statement['Sid']}: {sorted(missing)} not listed for {action} on {kind}"
                checked += 1
    assert checked >= 15


# --- parliament on every policy document of the stack ---

def policy_documents(template):
    """(name, document) of every IAM policy in the stack, all conditions true, values concrete."""
    found = []
    for name, resource in sorted(template["Resources"].items()):
        properties = resolve(resource.get("Properties", {}))
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            found.append((name, properties["PolicyDocument"]))
        if resource["Type"] == "AWS::IAM::Role":
            found.append((f"{name} trust", properties["AssumeRolePolicyDocument"]))
            found += [(f"{name} {p['PolicyName']}", p["PolicyDocument"]) for p in properties.get("Policies", [])]
    return [(name, concrete(document)) for name, document in found]


def describe_only(detail):
    return all(action.startswith("ec2:Describe") for action in detail)


# Findings accepted, each with its reason; a finding not listed here fails the test. A key is
# (document, statement: Sid or position, parliament's issue); a value, (reason, check of the detail).
ACCEPTED = {
    ("KScalerPolicy", "ReadEC2", "RESOURCE_STAR"): (
        "ec2:Describe* on *: the Describe calls kscaler makes (DescribeInstances, "
        "DescribeSpotInstanceRequests, ...) support no resource-level permissions; parliament names the "
        "few Describe actions that would take an ARN", describe_only),
    ("KScalerPolicy", "PassOnlyTheWorkerRole", "PERMISSIONS_MANAGEMENT_ACTIONS"): (
        "iam:PassRole is how an instance gets the worker role; only that role, only to EC2", None),
    ("SchedulerRole run-kscaler-task", 1, "PERMISSIONS_MANAGEMENT_ACTIONS"): (
        "the scheduler passes the task's two roles, only to ecs-tasks.amazonaws.com", None),
    ("TaskExecutionRole pull-log-config", 0, "CREDENTIALS_EXPOSURE"): (
        "ecr:GetAuthorizationToken is how ECS pulls the image; it supports only Resource *", None),
    ("KScalerFunctionRole logs-and-network", "VpcNetworkInterfaces", "RESOURCE_STAR"): (
        "Lambda attaches the function to the VPC with the function's role; these four EC2 actions "
        "support no resource-level permissions (the AWSLambdaVPCAccessExecutionRole managed policy "
        "grants them on * too)", None),
    ("TaskExecutionRole pull-log-config", 0, "RESOURCE_STAR"): (
        "KScalerImage is any image URI, not a repository the stack knows, so the pull actions "
        "cannot name one", None),
}
for sid in ("LaunchTaggedWorkersFromAClusterTemplate", "UseOnlyTheClustersLaunchTemplates", "UseOnlyTheTemplatesImage",
            "UseOnlyTheTemplatesSecurityGroups", "UseSubnetsOfTheClusterVpc", "CreateInterfacesInTheClusterVpc",
            "CreateVolumesFromAClusterTemplate", "SpotRequestsTaggedWithTheCluster"):
    # parliament wants every required resource of RunInstances in each statement; the policy gives
    # each resource its own statement and conditions, and together they name every one
    # (test_run_instances_statements_together_name_every_required_resource).
    ACCEPTED[("KScalerPolicy", sid, "RESOURCE_MISMATCH")] = (
        "RunInstances' resources are split over statements, one condition set each", None)


def lint(document):
    """parliament's findings for each statement on its own, as (statement key, issue, detail)."""
    findings = []
    for index, statement in enumerate(document["Statement"]):
        one = {"Version": document["Version"], "Statement": [statement]}
        for finding in analyze_policy_string(json.dumps(one), include_community_auditors=True).findings:
            findings.append((statement.get("Sid", index), finding.issue, finding.detail))
    return findings


def test_parliament_finds_nothing_but_the_accepted_findings(stack):
    documents = policy_documents(stack)
    assert {name for name, _ in documents} >= {
        "KScalerPolicy", "WorkerRole read-join-parameters", "ControlPlaneRole publish-join-parameters",
        "TaskExecutionRole pull-log-config", "SchedulerRole run-kscaler-task"}
    unexpected, seen = [], set()
    for name, document in documents:
        if name.endswith(" trust"):
            continue  # test_trust_policies_lint_only_as_trust_policies
        for key, issue, detail in lint(document):
            accepted = ACCEPTED.get((name, key, issue))
            if accepted is None or (accepted[1] and not accepted[1](detail)):
                unexpected.append((name, key, issue, detail))
            else:
                seen.add((name, key, issue))
    assert not unexpected, unexpected
    assert seen == set(ACCEPTED), f"accepted findings no longer found: {set(ACCEPTED) - seen}"


def test_trust_policies_lint_only_as_trust_policies(stack):
    """parliament audits identity policies: a trust policy has a Principal and no Resource, which
    it reports as MALFORMED; nothing else may be found."""
    trusts = [(name, document) for name, document in policy_documents(stack) if name.endswith(" trust")]
    assert len(trusts) == 7  # worker, control plane, task execution, task, task scheduler, function, function scheduler
    for name, document in trusts:
        for key, issue, detail in lint(document):
            assert (issue, detail) == ("MALFORMED", "Statement contains neither Resource nor NotResource"), (name, key)


def test_parliament_reports_a_loose_policy():
    """The linter is really run: a statement like the old image rule gets findings."""
    loose = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*",
         "Condition": {"StringEquals": {"ec2:NoSuchKey": "x"}}}]}
    issues = {issue for _, issue, _ in lint(loose)}
    assert {"RESOURCE_STAR", "UNKNOWN_CONDITION_FOR_ACTION"} <= issues, issues


def test_run_instances_statements_together_name_every_required_resource(every_statement):
    run = privilege(sar()["ec2"], "RunInstances")
    required = {r["resource_type"].rstrip("*") for r in run["resource_types"] if r["resource_type"].endswith("*")}
    assert required == {"image", "instance", "network-interface", "security-group", "subnet"}
    named = {resource_type(r) for s in every_statement if "ec2:RunInstances" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    assert required <= named


# --- infra/README.md says it statement by statement ---

def test_readme_names_every_statement_in_the_policys_order(every_statement):
    """"The IAM policy in plain words": one bullet per statement, in order, each naming its Sid."""
    readme = (REPO / "infra/README.md").read_text()
    section = readme[readme.index("## The IAM policy in plain words\n"):]
    section = section[:section.index("\n## ", 1)]
    bullets = re.findall(r"^\* `([A-Za-z0-9]+)` — ", section, re.MULTILINE)
    assert bullets == [s["Sid"] for s in every_statement]
    assert "no condition key for user data" in section
