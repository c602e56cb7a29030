"""The CloudFormation stack as the tests read it: expanded for a value of its Pools parameter by
cfn-lint's own AWS::LanguageExtensions transform, its intrinsic functions resolved for one
account, region, cluster and VPC, and the requests kscaler makes, as IAM sees them, to ask
what KScalerPolicy lets them do.

IAM itself is modelled by iam_eval.py (Deny, Allow, conditions; it refuses what it does not
implement, so a new policy shape fails the tests instead of being misread). A RunInstances call
is modelled as EC2 authorises it: once per resource it uses or creates, each with the condition
keys the Service Authorization Reference lists for that resource (`run_instances`). It is a
model of the documented rules, not IAM itself."""

import copy
import re

from cfnlint.decode import decode
from cfnlint.template import Template

import iam_eval
from conftest import STACK

NO_VALUE = {"Ref": "AWS::NoValue"}

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLUSTER = "demo"
VPC = "vpc-0c1a55e4000000001"
KUBE_TOKEN_PARAMETER = "/kscaler/demo/kube-token"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "ClusterId": CLUSTER,
          "VpcId": VPC, "KubernetesTokenParameter": KUBE_TOKEN_PARAMETER}
# What Fn::GetAtt gives for the stack's resources once deployed (names as CloudFormation makes them).
ATTRIBUTES = {
    "WorkerRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/kscaler-demo-WorkerRole-1A2B3C4D5E6F",
    "StateTable.Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/kscaler-demo-StateTable-1A2B3C4D5E6F",
    "TaskExecutionRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/kscaler-demo-TaskExecutionRole-1A2B3C4D5E6F",
    "KScalerTaskRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/kscaler-demo-KScalerTaskRole-1A2B3C4D5E6F",
    "LogGroup.Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/kscaler/demo:*",
    "TaskCluster.Arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/kscaler-demo",
    "KScalerFunction.Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:kscaler-demo",
    "KScalerFunctionRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/kscaler-demo-KScalerFunctionRole-1A2B3C4D5E6F",
    "FunctionSchedulerRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/kscaler-demo-FunctionSchedulerRole-1A2B3C4D5E6F",
}


LOG_GROUP_ARN = ATTRIBUTES["LogGroup.Arn"]


def arn(resource, account=ACCOUNT):
    """An EC2 ARN in the test's account and region: arn("instance/i-1")."""
    return f"arn:aws:ec2:{REGION}:{account}:{resource}"


def load(path=STACK):
    template, matches = decode(str(path))
    assert not matches, matches
    return template


def expanded(pools=None, path=STACK):
    """The template after AWS::LanguageExtensions, with Pools set to `pools` (a comma-separated
    string, as CloudFormation takes a CommaDelimitedList) or left at its default."""
    template = load(path)
    if pools is not None:
        template["Parameters"]["Pools"]["Default"] = pools
    cfn = Template(str(path), template, ["us-east-1"])
    matches = cfn.transform()
    assert not matches, [str(m) for m in matches]
    assert not any(key.startswith("Fn::ForEach") for section in ("Resources", "Outputs")
                   for key in cfn.template.get(section, {})), "Fn::ForEach left unexpanded"
    return cfn.template


def resources_of_type(template, kind):
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def resolve(node, off=frozenset()):
    """`node` as CloudFormation deploys it when the conditions named in `off` are false and all
    others true: each Fn::If replaced by its branch, AWS::NoValue dropped from lists and maps."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            condition, then, otherwise = node["Fn::If"]
            return resolve(otherwise if condition in off else then, off)
        resolved = {key: resolve(value, off) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value != NO_VALUE}
    if isinstance(node, list):
        return [item for item in (resolve(value, off) for value in node) if item != NO_VALUE]
    return node


def concrete(node, values=PSEUDO):
    """`node` with Fn::Sub, Ref and Fn::GetAtt replaced by strings: parameters and pseudo
    parameters from `values`, attributes from ATTRIBUTES, anything else (a resource) as <Name>
    or <Name.Attribute>."""
    if isinstance(node, list):
        return [concrete(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return values.get(node["Ref"], f"<{node['Ref']}>")
    if set(node) == {"Fn::GetAtt"}:
        name, attribute = node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".", 1)
        return ATTRIBUTES.get(f"{name}.{attribute}", f"<{name}.{attribute}>")
    if set(node) == {"Fn::Sub"}:
        assert isinstance(node["Fn::Sub"], str), node
        return re.sub(r"\$\{([^}!]+)\}", lambda m: values.get(m.group(1), f"<{m.group(1)}>"), node["Fn::Sub"])
    return {key: concrete(value, values) for key, value in node.items()}


def policy_statements(template, off=frozenset()):
    """KScalerPolicy's statements, conditions resolved as in `resolve`, values concrete."""
    document = resolve(template["Resources"]["KScalerPolicy"]["Properties"]["PolicyDocument"], off)
    return concrete(document["Statement"])


def as_list(value):
    return value if isinstance(value, list) else [value]


def allows(statements, action, resource, context=None):
    """Whether the policy allows `action` on `resource` with the request's condition keys."""
    return iam_eval.allowed(statements, action, resource, context)


# The account the tests deploy into: a VPC of the cluster's and another one, subnets and
# security groups in each, the worker AMI (the templates' image), another image of the account
# and a public one of another owner. EC2 resolves each id to these facts when it authorises.
OTHER_VPC = "vpc-0f0e0d0c000000002"
SUBNET = "subnet-0123456789abcdef0"
SUBNETS = {SUBNET: VPC, "subnet-0aaa1111bbbb2222c": VPC, "subnet-0eee0000ffff1111a": OTHER_VPC}
TEMPLATE_SECURITY_GROUP = "sg-0123456789abcdef0"
SECURITY_GROUPS = {TEMPLATE_SECURITY_GROUP: VPC, "sg-0bbb2222cccc3333d": VPC, "sg-0eee4444ffff5555a": OTHER_VPC}
TEMPLATE_IMAGE = "ami-0123456789abcdef0"
IMAGES = {TEMPLATE_IMAGE: ACCOUNT, "ami-0aaa1111bbbb2222c": ACCOUNT, "ami-0fff9999eeee8888d": "099720109477"}
WORKER_ROLE = ATTRIBUTES["WorkerRole.Arn"]


def vpc_arn(vpc):
    return arn(f"vpc/{vpc}")


def image_arn(image):
    return f"arn:aws:ec2:{REGION}::image/{image}"


def run_instances(statements, template=None, template_tags=None, request_tags=None, spot=False, tag_spot_request=False,
                  *, subnet=SUBNET, image=None, security_groups=None, role=None, volume_tags=None, template_data=None):
    """Whether a RunInstances request is allowed, and which of its authorisations are not.

    The request kscaler sends: `template`, the ARN of the launch template it names (None: no
    template), with `template_tags` on it; `request_tags`, the instance's TagSpecifications
    (and, with `tag_spot_request`, its Spot request's); `volume_tags`, the volumes' (default:
    kscaler:cluster and kscaler:pool of the instance's, as EC2Fleet.request sends); `spot`, the
    request has InstanceMarketOptions; `subnet`, its SubnetId. Overrides kscaler sends only when
    its config sets them: `image` (ImageId), `security_groups` (SecurityGroupId.N), `role` (the
    role of an IamInstanceProfile). `template_data` is what the template gives instead
    (ImageId, SecurityGroupIds, the instance profile's role): the stack's by default.

    Each resource gets the keys the Service Authorization Reference lists for it under
    RunInstances; ec2:IsLaunchTemplateResource is given where its value is certain (a resource
    taken from the template: true; one the request names: false) and left out elsewhere, so a
    policy leaning on it there fails here. EC2 checks the Spot request only when the request
    tags it (EC2 User Guide, "Work with Spot Instances"). A tagged resource also needs
    ec2:CreateTags (ec2:CreateAction); an instance profile, iam:PassRole of its role. User data
    has no condition key and no resource: it changes nothing here (test_iam_policy.py)."""
    data = {"image": TEMPLATE_IMAGE, "security_groups": [TEMPLATE_SECURITY_GROUP], "role": WORKER_ROLE,
            **(template_data or {})} if template else {}
    request_tags = request_tags or {}
    if volume_tags is None:
        volume_tags = {k: v for k, v in request_tags.items() if k in ("kscaler:cluster", "kscaler:pool")}
    from_template = {"ec2:LaunchTemplate": template} if template else {}

    def requested(tags):
        return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": sorted(tags)} if tags else {}

    def source(overridden):
        # From the template only when the template is there and the request does not name it.
        return {"ec2:IsLaunchTemplateResource": not overridden} if template else {}

    used_image = image or data.get("image") or TEMPLATE_IMAGE
    used_groups = security_groups if security_groups is not None else data.get("security_groups", [TEMPLATE_SECURITY_GROUP])
    used_role = role or data.get("role")
    subnet_vpc = SUBNETS[subnet]
    checks = [
        ("ec2:RunInstances", arn("instance/*"), {**requested(request_tags), **from_template}),
        ("ec2:RunInstances", arn("volume/*"), {**requested(volume_tags), **from_template}),
        ("ec2:RunInstances", arn("network-interface/*"), {
            **from_template, "ec2:Vpc": vpc_arn(subnet_vpc), "ec2:Subnet": arn(f"subnet/{subnet}")}),
        ("ec2:RunInstances", arn(f"subnet/{subnet}"), {
            **from_template, **source(True), "ec2:Vpc": vpc_arn(subnet_vpc)}),
        ("ec2:RunInstances", image_arn(used_image), {
            **from_template, **source(image is not None), "ec2:Owner": IMAGES[used_image], "ec2:ImageID": used_image}),
    ]
    for group in used_groups:
        checks.append(("ec2:RunInstances", arn(f"security-group/{group}"), {
            **from_template, **source(security_groups is not None), "ec2:Vpc": vpc_arn(SECURITY_GROUPS[group]),
            "ec2:SecurityGroupID": group}))
    if template:
        tags = template_tags or {}
        checks.append(("ec2:RunInstances", template, {
            **from_template, **{f"aws:ResourceTag/{k}": v for k, v in tags.items()},
            **{f"ec2:ResourceTag/{k}": v for k, v in tags.items()}}))
    if request_tags:
        checks.append(("ec2:CreateTags", arn("instance/*"), {**requested(request_tags), "ec2:CreateAction": "RunInstances"}))
    if volume_tags:
        checks.append(("ec2:CreateTags", arn("volume/*"), {**requested(volume_tags), "ec2:CreateAction": "RunInstances"}))
    if spot and tag_spot_request:
        checks.append(("ec2:RunInstances", arn("spot-instances-request/*"), requested(request_tags)))
        checks.append(("ec2:CreateTags", arn("spot-instances-request/*"), {**requested(request_tags), "ec2:CreateAction": "RunInstances"}))
    if used_role:
        checks.append(("iam:PassRole", used_role, {"iam:PassedToService": "ec2.amazonaws.com"}))
    denied = [(action, resource) for action, resource, context in checks
              if not allows(statements, action, resource, context)]
    return not denied, denied


def with_statement(statements, statement):
    """A copy of the policy with one more statement."""
    return copy.deepcopy(statements) + [statement]
