"""The IAM evaluator (iam_eval.py) against the AWS documentation's own examples: each case cites
the page whose example policy and stated outcome it reproduces, so the policy tests in
test_iam_policy.py rest on documented semantics rather than on the evaluator's say-so."""

import pytest

from iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Unsupported, allowed, arn_matches, decide

ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


# --- IAM User Guide, "Policy evaluation logic": explicit deny, then allow, else implicit deny ---

def test_no_matching_allow_is_an_implicit_deny():
    policy = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]
    assert decide(policy, "s3:GetObject", "arn:aws:s3:::bucket/key") == ALLOW
    assert decide(policy, "s3:PutObject", "arn:aws:s3:::bucket/key") == IMPLICIT_DENY
    assert decide(policy, "s3:GetObject", "arn:aws:s3:::other/key") == IMPLICIT_DENY


def test_an_explicit_deny_overrides_any_allow_whatever_the_order():
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::secret/*"}
    for policy in ([ALLOW_ALL, deny], [deny, ALLOW_ALL]):
        assert decide(policy, "s3:GetObject", "arn:aws:s3:::secret/k") == EXPLICIT_DENY
        assert decide(policy, "s3:GetObject", "arn:aws:s3:::public/k") == ALLOW


# --- "IAM JSON policy elements: NotAction" (DenyAllUsersNotUsingMFA) and "Condition operators",
# ...IfExists: a key missing from the request satisfies BoolIfExists ---

MFA_POLICY = [ALLOW_ALL, {"Sid": "DenyAllUsersNotUsingMFA", "Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
                          "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]


@pytest.mark.parametrize("action,context,expected", [
    ("s3:ListAllMyBuckets", {}, EXPLICIT_DENY),                                     # long-term keys: no MFA key at all
    ("s3:ListAllMyBuckets", {"aws:MultiFactorAuthPresent": False}, EXPLICIT_DENY),
    ("s3:ListAllMyBuckets", {"aws:MultiFactorAuthPresent": True}, ALLOW),
    ("iam:ListUsers", {}, ALLOW),                                                   # NotAction leaves IAM out
    ("IAM:listusers", {}, ALLOW),                                                   # actions are case-insensitive
])
def test_not_action_deny_without_mfa(action, context, expected):
    assert decide(MFA_POLICY, action, "*", context) == expected


def test_if_exists_checks_the_key_only_when_present():
    """"Condition operators", ...IfExists: StringLikeIfExists on ec2:InstanceType."""
    policy = [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
               "Condition": {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}}]
    assert allowed(policy, "ec2:RunInstances", "*", {"ec2:InstanceType": "m3.large"})
    assert not allowed(policy, "ec2:RunInstances", "*", {"ec2:InstanceType": "c4.large"})
    assert allowed(policy, "ec2:DescribeInstances", "*", {})
    without = [{**policy[0], "Condition": {"StringLike": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}}]
    assert not allowed(without, "ec2:DescribeInstances", "*", {})  # without IfExists a missing key fails


# --- "Condition operators", "Condition operator to check existence of condition keys" (Null) ---

def test_null_true_requires_the_key_to_be_absent_and_false_present():
    temporary_only = [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                       "Condition": {"Null": {"aws:TokenIssueTime": "true"}}}]
    assert allowed(temporary_only, "ec2:DescribeInstances", "*", {})
    assert not allowed(temporary_only, "ec2:DescribeInstances", "*", {"aws:TokenIssueTime": "2026-12-02T20:00:00Z"})
    present = [{**temporary_only[0], "Condition": {"Null": {"aws:TokenIssueTime": "false"}}}]
    assert allowed(present, "ec2:DescribeInstances", "*", {"aws:TokenIssueTime": "2026-12-02T20:00:00Z"})
    assert not allowed(present, "ec2:DescribeInstances", "*", {})


def test_a_missing_key_fails_a_positive_operator_and_satisfies_a_negated_one():
    """"Condition operators", Important: no key, no match; a "not" operator is then true."""
    equals = [{"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
               "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}}}]
    not_equals = [{**equals[0], "Condition": {"StringNotEquals": {"ec2:CreateAction": "RunInstances"}}}]
    assert not allowed(equals, "ec2:CreateTags", "*", {})
    assert allowed(not_equals, "ec2:CreateTags", "*", {})
    assert not allowed(not_equals, "ec2:CreateTags", "*", {"ec2:CreateAction": "RunInstances"})


# --- "Multivalued context key examples" and "Single-valued vs. multivalued context keys" ---

TAG_DENY = [ALLOW_ALL, {"Effect": "Deny", "Action": ["iam:TagUser", "iam:UntagUser"], "Resource": "*",
                        "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": "key1*"}}}]


@pytest.mark.parametrize("tag_keys,expected", [
    (["key1:legal"], EXPLICIT_DENY),                  # every value matches
    (["key1:legal", "key1:dev"], EXPLICIT_DENY),
    (["key1:legal", "key2:audit"], ALLOW),            # key2:audit matches no policy value
    (None, EXPLICIT_DENY),                            # ForAllValues is true when the key is missing
    ([], EXPLICIT_DENY),                              # ... or has no values
])
def test_for_all_values_needs_every_request_value_to_match_and_holds_for_none(tag_keys, expected):
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert decide(TAG_DENY, "iam:TagUser", "arn:aws:iam::111122223333:user/x", context) == expected


def test_for_all_values_with_null_false_refuses_a_missing_key():
    """The same page: add Null false so a request without the key does not match."""
    policy = [{"Effect": "Allow", "Action": "iam:TagUser", "Resource": "*",
               "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]},
                             "Null": {"aws:TagKeys": "false"}}}]
    assert allowed(policy, "iam:TagUser", "*", {"aws:TagKeys": ["environment"]})
    assert not allowed(policy, "iam:TagUser", "*", {"aws:TagKeys": ["environment", "owner"]})
    assert not allowed(policy, "iam:TagUser", "*", {})


@pytest.mark.parametrize("tag_keys,expected", [
    (["webserver"], EXPLICIT_DENY),
    (["webserver", "environment"], EXPLICIT_DENY),    # one value matching is enough
    (["environment"], ALLOW),
    (None, ALLOW),                                    # ForAnyValue is false when the key is missing
])
def test_for_any_value_needs_one_request_value_to_match(tag_keys, expected):
    policy = [ALLOW_ALL, {"Effect": "Deny", "Action": "ec2:DeleteTags", "Resource": "*",
                          "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["webserver"]}}}]
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert decide(policy, "ec2:DeleteTags", "arn:aws:ec2:us-east-1:111122223333:instance/i-1", context) == expected


def test_dynamodb_leading_keys_limit_items_to_the_callers_partition():
    """DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access control":
    ForAllValues:StringEquals on dynamodb:LeadingKeys."""
    policy = [{"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
               "Resource": "arn:aws:dynamodb:us-west-2:123456789012:table/GameScores",
               "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["alice"]}}}]
    table = "arn:aws:dynamodb:us-west-2:123456789012:table/GameScores"
    assert allowed(policy, "dynamodb:GetItem", table, {"dynamodb:LeadingKeys": ["alice"]})
    assert not allowed(policy, "dynamodb:GetItem", table, {"dynamodb:LeadingKeys": ["bob"]})


# --- "Conditions with multiple context keys or values": operators and keys AND, values OR ---

def test_keys_are_anded_and_values_ored():
    policy = [{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
               "Condition": {"StringEquals": {"aws:PrincipalTag/department": "finance",
                                              "aws:PrincipalTag/role": ["audit", "security"]}}}]
    assert allowed(policy, "ec2:RunInstances", "*", {"aws:PrincipalTag/department": "finance", "aws:PrincipalTag/role": "audit"})
    assert allowed(policy, "ec2:RunInstances", "*", {"aws:PrincipalTag/department": "finance", "aws:PrincipalTag/role": "security"})
    assert not allowed(policy, "ec2:RunInstances", "*", {"aws:PrincipalTag/department": "finance", "aws:PrincipalTag/role": "dev"})
    assert not allowed(policy, "ec2:RunInstances", "*", {"aws:PrincipalTag/role": "audit"})


def test_a_negated_operator_with_several_values_is_a_nor():
    policy = [{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
               "Condition": {"StringNotEquals": {"aws:PrincipalTag/role": ["audit", "security"]}}}]
    assert allowed(policy, "ec2:RunInstances", "*", {"aws:PrincipalTag/role": "dev"})
    assert not allowed(policy, "ec2:RunInstances", "*", {"aws:PrincipalTag/role": "security"})


def test_condition_key_names_are_case_insensitive_values_are_not():
    policy = [{"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*",
               "Condition": {"StringEquals": {"EC2:CreateAction": "RunInstances"}}}]
    assert allowed(policy, "ec2:CreateTags", "*", {"ec2:createaction": "RunInstances"})
    assert not allowed(policy, "ec2:CreateTags", "*", {"ec2:CreateAction": "runinstances"})


# --- EC2 User Guide, "Example: Work with launch templates" (launch only from a template; subnet and
# network interface only as the template gives them: NotResource, ArnLike, Bool) ---

LT = "arn:aws:ec2:us-east-1:111122223333:launch-template/*"
TEMPLATE_ONLY_SUBNETS = [
    {"Effect": "Allow", "Action": "ec2:RunInstances",
     "NotResource": ["arn:aws:ec2:us-east-1:111122223333:subnet/*", "arn:aws:ec2:us-east-1:111122223333:network-interface/*"],
     "Condition": {"ArnLike": {"ec2:LaunchTemplate": LT}}},
    {"Effect": "Allow", "Action": "ec2:RunInstances",
     "Resource": ["arn:aws:ec2:us-east-1:111122223333:subnet/*", "arn:aws:ec2:us-east-1:111122223333:network-interface/*"],
     "Condition": {"ArnLike": {"ec2:LaunchTemplate": LT}, "Bool": {"ec2:IsLaunchTemplateResource": "true"}}},
]


def test_launch_template_example_refuses_an_overridden_subnet():
    subnet = "arn:aws:ec2:us-east-1:111122223333:subnet/subnet-1"
    template = "arn:aws:ec2:us-east-1:111122223333:launch-template/lt-0123"
    from_template = {"ec2:LaunchTemplate": template, "ec2:IsLaunchTemplateResource": True}
    assert allowed(TEMPLATE_ONLY_SUBNETS, "ec2:RunInstances", subnet, from_template)
    assert not allowed(TEMPLATE_ONLY_SUBNETS, "ec2:RunInstances", subnet, {**from_template, "ec2:IsLaunchTemplateResource": False})
    assert not allowed(TEMPLATE_ONLY_SUBNETS, "ec2:RunInstances", subnet, {})  # no template at all
    instance = "arn:aws:ec2:us-east-1:111122223333:instance/*"
    assert allowed(TEMPLATE_ONLY_SUBNETS, "ec2:RunInstances", instance, {"ec2:LaunchTemplate": template})
    assert not allowed(TEMPLATE_ONLY_SUBNETS, "ec2:RunInstances", instance, {})


# --- "IAM JSON policy elements: Resource" and "Condition operators", ARN: each part on its own ---

@pytest.mark.parametrize("pattern,arn,expected", [
    ("arn:aws:ec2:*:111122223333:instance/*", "arn:aws:ec2:eu-west-1:111122223333:instance/i-1", True),
    ("arn:aws:ec2:*:111122223333:instance/*", "arn:aws:ec2:eu-west-1:444455556666:instance/i-1", False),
    ("arn:aws:ec2:eu-west-1::image/*", "arn:aws:ec2:eu-west-1::image/ami-0aaa", True),  # any owner's image
    ("arn:aws:ec2:eu-west-1:*:vpc/vpc-1", "arn:aws:ec2:eu-west-1:111122223333:vpc/vpc-1", True),
    ("arn:aws:ec2:eu-west-1:1111222233?3:vpc/*", "arn:aws:ec2:eu-west-1:111122223333:vpc/vpc-1", True),
    ("arn:aws:ec2:eu-west-1:1111222233?3:vpc/*", "arn:aws:ec2:eu-west-1:11112222333:vpc/vpc-1", False),
    ("arn:aws:ec2:eu-west-1:*", "arn:aws:ec2:eu-west-1:111122223333:vpc/vpc-1", False),  # * stays in its part
    ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b", True),                            # the last part keeps colons
    ("arn:aws:ec2:eu-west-1:111122223333:Instance/*", "arn:aws:ec2:eu-west-1:111122223333:instance/i-1", False),
    ("*", "arn:aws:ec2:eu-west-1:111122223333:instance/i-1", True),
])
def test_resource_arns_match_part_by_part(pattern, arn, expected):
    assert arn_matches(pattern, arn) is expected


# --- what the evaluator does not implement is refused, never guessed ---

@pytest.mark.parametrize("statement,message", [
    ({"Condition": {"StringEqualsIgnoreCase": {"ec2:CreateAction": "x"}}}, "operator"),
    ({"Condition": {"NumericLessThan": {"ec2:CreateAction": "1"}}}, "operator"),
    ({"Condition": {"StringEquals": {"ec2:Region": "eu-west-1"}}}, "ec2:Region is not implemented"),
    ({"Condition": {"ForAnyValue:StringEquals": {"ec2:CreateAction": "x"}}}, "single-valued"),
    ({"Condition": {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "x"}}}, "operator"),
    ({"Condition": {"StringEquals": {"aws:TagKeys": "x"}}}, "multivalued"),
    ({"Condition": {"Bool": {"ec2:Vpc": "true"}}}, "compares Bool"),
    ({"Condition": {"StringEquals": {"aws:RequestTag/owner": "${aws:username}"}}}, "policy variables"),
    ({"Principal": "*"}, "identity policies only"),
])
def test_unimplemented_policy_shapes_are_refused(statement, message):
    policy = [{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*", **statement}]
    with pytest.raises(Unsupported, match=message):
        decide(policy, "ec2:RunInstances", "*", {"ec2:CreateAction": "x", "aws:RequestTag/owner": "x"})


def test_an_unimplemented_statement_is_refused_even_when_another_already_allows():
    policy = [ALLOW_ALL, {"Effect": "Deny", "Action": "*", "Resource": "*",
                          "Condition": {"DateGreaterThan": {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}}}]
    with pytest.raises(Unsupported):
        decide(policy, "s3:GetObject", "*", {"aws:TokenIssueTime": "2026-12-02T20:00:00Z"})
