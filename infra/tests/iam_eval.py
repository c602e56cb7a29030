"""A small evaluator of one IAM identity policy, as documented in the IAM User Guide ("Policy
evaluation logic", "IAM JSON policy elements: Condition operators", "Conditions with multiple
context keys or values", "Single-valued vs. multivalued context keys"):

* an explicit Deny in any matching statement wins; else an Allow in any matching statement;
  else the request is implicitly denied;
* Action / NotAction match case-insensitively with * and ? wildcards; Resource / NotResource
  match the ARN's six colon-separated parts each on its own (the last part keeps its colons),
  case-sensitively, with * and ?;
* Condition: operators ANDed, keys of one operator ANDed, values of one key ORed (NOR for a
  negated operator); a key missing from the request makes a positive operator false and a
  negated one true, except ...IfExists (true when missing), Null (tests presence) and
  ForAllValues (true when missing or empty); ForAnyValue is false when missing.

It implements only what kscaler's policies and the documentation examples in the tests use, and
raises `Unsupported` for anything else (another operator, a condition key it has no type for, a
policy variable, a set operator on a single-valued key or none on a multivalued one), so a new
policy shape fails the tests loudly instead of being misread. It evaluates one identity policy:
no resource policies, permission boundaries, SCPs or sessions. It is a model, not IAM.

A request is (action, resource ARN, context); context maps condition keys to a value, a bool,
or (multivalued keys) a list. EC2 authorises a RunInstances call once per resource it uses or
creates, each with its own context: `authorizations(...)` in stack_model builds those."""

import re

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"


class Unsupported(AssertionError):
    """The policy uses something this evaluator does not implement."""


# Condition keys the evaluator knows, with their type (IAM's condition operator category) and
# whether the request may carry several values. A key not listed here is refused. Names are
# compared case-insensitively (IAM: "condition key names are not case-sensitive"). Types are
# those of the Service Authorization Reference and "AWS global condition context keys".
KEY_TYPES = {
    "aws:RequestTag/": ("String", False),
    "aws:ResourceTag/": ("String", False),
    "ec2:ResourceTag/": ("String", False),
    "aws:TagKeys": ("String", True),
    "aws:SourceAccount": ("String", False),
    "aws:MultiFactorAuthPresent": ("Bool", False),
    "aws:SecureTransport": ("Bool", False),
    "aws:TokenIssueTime": ("Date", False),
    "aws:PrincipalTag/": ("String", False),
    "ec2:CreateAction": ("String", False),
    "ec2:LaunchTemplate": ("ARN", False),
    "ec2:IsLaunchTemplateResource": ("Bool", False),
    "ec2:Vpc": ("ARN", False),
    "ec2:Subnet": ("ARN", False),
    "ec2:SecurityGroupID": ("String", False),
    "ec2:Owner": ("String", False),
    "ec2:ImageID": ("String", False),
    "ec2:InstanceType": ("String", False),
    "iam:PassedToService": ("String", False),
    "dynamodb:LeadingKeys": ("String", True),
    "ecs:cluster": ("ARN", False),
}

# Operator -> (type it compares, negated). ArnEquals and ArnLike are the same test (IAM: both
# match each ARN part separately, with wildcards), so are their negations.
OPERATORS = {
    "StringEquals": ("String", False),
    "StringNotEquals": ("String", True),
    "StringLike": ("String", False),
    "StringNotLike": ("String", True),
    "ArnEquals": ("ARN", False),
    "ArnLike": ("ARN", False),
    "ArnNotEquals": ("ARN", True),
    "ArnNotLike": ("ARN", True),
    "Bool": ("Bool", False),
}

STATEMENT_ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


def as_list(value):
    return value if isinstance(value, list) else [value]


def _glob(pattern, text, ignore_case=False):
    """* matches any run of characters (also none), ? exactly one; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _refuse_variables(value):
    if isinstance(value, str) and "${" in value:
        raise Unsupported(f"policy variables are not implemented: {value}")


def action_matches(pattern, action):
    _refuse_variables(pattern)
    return _glob(pattern, action, ignore_case=True)


def arn_matches(pattern, arn):
    """IAM's ARN match: "*" alone is any resource; else each of the six parts on its own."""
    _refuse_variables(pattern)
    if pattern == "*":
        return True
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(_glob(p, a) for p, a in zip(pattern_parts, arn_parts))


def key_type(key):
    """(type, multivalued) of a condition key, or Unsupported."""
    lowered = key.lower()
    for name, kind in KEY_TYPES.items():
        if name.endswith("/") and lowered.startswith(name.lower()) and len(key) > len(name):
            return kind
        if lowered == name.lower():
            return kind
    raise Unsupported(f"the condition key {key} is not implemented")


def _lookup(context, key):
    """The request's value(s) for `key` (case-insensitive name), or None when missing."""
    for name, value in context.items():
        if name.lower() == key.lower():
            return value
    return None


def _bool_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _value_matches(operator_type, like, policy_value, request_value):
    """One positive comparison of a request value against one policy value."""
    _refuse_variables(policy_value)
    if operator_type == "Bool":
        return _bool_text(policy_value) == _bool_text(request_value)
    if operator_type == "ARN":
        return arn_matches(policy_value, request_value)
    if like:
        return _glob(policy_value, request_value)
    return policy_value == request_value


def _condition(operator, key, policy_values, context):
    """One key under one operator."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise Unsupported(f"the set operator {qualifier} is not implemented")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base.removesuffix("IfExists")
    policy_values = as_list(policy_values)
    request = _lookup(context, key)
    if base == "Null":
        if qualifier or if_exists:
            raise Unsupported(f"{operator} is not implemented")
        key_type(key)
        present = request is not None and request != []
        # "true": the key is absent; "false": it is present. Several values: any of them.
        return any(_bool_text(v) == ("false" if present else "true") for v in policy_values)
    if base not in OPERATORS or (qualifier and if_exists):
        raise Unsupported(f"the condition operator {operator} is not implemented")
    operator_type, negated = OPERATORS[base]
    kind, multivalued = key_type(key)
    if kind != operator_type:
        raise Unsupported(f"{operator} compares {operator_type}, but {key} is {kind}")
    if multivalued and not qualifier:
        raise Unsupported(f"{key} is multivalued: it needs ForAllValues or ForAnyValue")
    if qualifier and not multivalued:
        raise Unsupported(f"{qualifier} on the single-valued key {key} (IAM: do not)")
    like = base in ("StringLike", "StringNotLike")

    def one(request_value):
        # Values ORed; a negated operator holds when none matches (NOR).
        matched = any(_value_matches(operator_type, like, v, request_value) for v in policy_values)
        return not matched if negated else matched

    if qualifier:
        values = as_list(request) if request is not None else []
        if qualifier == "ForAllValues":
            return all(one(v) for v in values)  # true for a missing key or an empty set
        return any(one(v) for v in values)  # ForAnyValue: false for a missing key
    if request is None:
        return if_exists or negated
    if isinstance(request, list):
        raise Unsupported(f"the request gives several values for the single-valued key {key}")
    return one(request)


def conditions_hold(conditions, context):
    if not isinstance(conditions, dict):
        raise Unsupported(f"Condition must be a map: {conditions!r}")
    return all(_condition(operator, key, values, context)
               for operator, keys in conditions.items() for key, values in keys.items())


def statement_applies(statement, action, resource, context):
    unknown = set(statement) - STATEMENT_ELEMENTS
    if unknown:
        raise Unsupported(f"statement elements {sorted(unknown)} are not implemented (identity policies only)")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise Unsupported(f"Effect must be Allow or Deny: {statement.get('Effect')!r}")
    if ("Action" in statement) == ("NotAction" in statement):
        raise Unsupported("a statement has exactly one of Action and NotAction")
    if ("Resource" in statement) == ("NotResource" in statement):
        raise Unsupported("a statement has exactly one of Resource and NotResource")
    if "Action" in statement:
        if not any(action_matches(p, action) for p in as_list(statement["Action"])):
            return False
    elif any(action_matches(p, action) for p in as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(arn_matches(p, resource) for p in as_list(statement["Resource"])):
            return False
    elif any(arn_matches(p, resource) for p in as_list(statement["NotResource"])):
        return False
    return conditions_hold(statement.get("Condition", {}), context)


def decide(statements, action, resource, context=None):
    """ALLOW, EXPLICIT_DENY or IMPLICIT_DENY for one request under one identity policy. Every
    statement is checked (even after a match), so an unsupported shape anywhere is refused."""
    context = context or {}
    applying = [s["Effect"] for s in as_list(statements) if statement_applies(s, action, resource, context)]
    if "Deny" in applying:
        return EXPLICIT_DENY
    return ALLOW if "Allow" in applying else IMPLICIT_DENY


def allowed(statements, action, resource, context=None):
    return decide(statements, action, resource, context) == ALLOW
