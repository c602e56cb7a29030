"""The CloudFormation stack as the tests read it: expanded for a value of its Pools parameter by
cfn-lint's own AWS::LanguageExtensions transform, its intrinsic functions resolved for one
account, region and cluster, and a small model of IAM's Allow evaluation to ask what
KScalerPolicy lets a request do.

The model covers what the policy uses (exact actions and Describe*, ARN patterns with *, the
StringEquals and ArnLike operators, a key missing from the request failing its condition) and
refuses anything else, so a new operator in the policy fails the tests instead of being
misread. It is a model of the documented rules, not IAM itself."""

import copy
import fnmatch
import re

from cfnlint.decode import decode
from cfnlint.template import Template

from conftest import STACK

NO_VALUE = {"Ref": "AWS::NoValue"}

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLUSTER = "demo"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "ClusterId": CLUSTER}


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
    parameters from `values`, anything else (a resource) as <Name> or <Name.Attribute>."""
    if isinstance(node, list):
        return [concrete(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return values.get(node["Ref"], f"<{node['Ref']}>")
    if set(node) == {"Fn::GetAtt"}:
        name, attribute = node["Fn::GetAtt"] if isinstance(node["Fn::GetAtt"], list) else node["Fn::GetAtt"].split(".", 1)
        return f"<{name}.{attribute}>"
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


def _matches(pattern, value):
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(operator, key, expected, context):
    if operator not in ("StringEquals", "ArnLike"):
        raise AssertionError(f"the IAM model does not know the operator {operator}")
    if key not in context:
        return False  # a key the request does not have never satisfies StringEquals or ArnLike
    if operator == "StringEquals":
        return context[key] in as_list(expected)
    return any(_matches(pattern, context[key]) for pattern in as_list(expected))


def allows(statements, action, resource, context=None):
    """Whether one Allow statement grants `action` on `resource` with the request's condition
    keys `context` (key -> value). The policy has no Deny: anything not allowed is denied."""
    context = context or {}
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        if not any(_matches(pattern, action) for pattern in as_list(statement["Action"])):
            continue
        if not any(_matches(pattern, resource) for pattern in as_list(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        if all(_condition_holds(operator, key, expected, context)
               for operator, keys in conditions.items() for key, expected in keys.items()):
            return True
    return False


def run_instances(statements, template=None, template_tags=None, request_tags=None, spot=False, tag_spot_request=False):
    """Whether a RunInstances request is allowed, and which of its resources are not: IAM
    authorises each resource the request uses or creates, each with its own condition keys.

    `template`: the ARN of the launch template the request names (None: no template);
    `template_tags`: the tags on that template; `request_tags`: the request's TagSpecifications
    for the instance (and, with `tag_spot_request`, its Spot request); `spot`: the request has
    InstanceMarketOptions. EC2 checks the Spot request only when the request tags it (EC2 User
    Guide, "Work with Spot Instances"). Every tagged resource also needs ec2:CreateTags."""
    request_tags = request_tags or {}
    requested = {f"aws:RequestTag/{k}": v for k, v in request_tags.items()}
    from_template = {"ec2:LaunchTemplate": template} if template else {}
    checks = [
        ("ec2:RunInstances", arn("instance/*"), {**requested, **from_template}),
        ("ec2:RunInstances", arn("volume/*"), dict(from_template)),
        ("ec2:RunInstances", arn("network-interface/*"), dict(from_template)),
        ("ec2:RunInstances", arn("subnet/subnet-0123456789abcdef0"), dict(from_template)),
        ("ec2:RunInstances", arn("security-group/sg-0123456789abcdef0"), dict(from_template)),
        ("ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0", dict(from_template)),
    ]
    if template:
        tags = template_tags or {}
        checks.append(("ec2:RunInstances", template, {
            **from_template, **{f"aws:ResourceTag/{k}": v for k, v in tags.items()},
            **{f"ec2:ResourceTag/{k}": v for k, v in tags.items()}}))
    if request_tags:
        checks.append(("ec2:CreateTags", arn("instance/*"), {**requested, "ec2:CreateAction": "RunInstances"}))
    if spot and tag_spot_request:
        checks.append(("ec2:RunInstances", arn("spot-instances-request/*"), dict(requested)))
        checks.append(("ec2:CreateTags", arn("spot-instances-request/*"), {**requested, "ec2:CreateAction": "RunInstances"}))
    denied = [(action, resource) for action, resource, context in checks
              if not allows(statements, action, resource, context)]
    return not denied, denied


def with_statement(statements, statement):
    """A copy of the policy with one more statement."""
    return copy.deepcopy(statements) + [statement]
