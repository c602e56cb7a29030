"""The CloudFormation stack passes cfn-lint, and its policies say what infra/README.md promises:
kscaler may terminate and launch only instances tagged with its cluster, tag only while
launching, pass only the worker role, touch only its cluster's items in its table, and read
only the one SSM parameter holding its Kubernetes token, and that only when one is given."""

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

from conftest import KUBERNETES_ENV, REPO, STACK
from stack_model import resolve


def cfn_lint(path):
    cfn_lint_command = Path(sys.executable).parent / "cfn-lint"  # installed beside pytest in .venv
    return subprocess.run([str(cfn_lint_command), str(path)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def template():
    template, matches = decode(str(STACK))
    assert not matches, matches
    return template


@pytest.fixture(scope="module")
def resources(template):
    return template["Resources"]


def statements(resources, name, off=frozenset()):
    """A policy's statements by Sid; with no condition off, every statement it can ever hold."""
    document = resolve(resources[name]["Properties"]["PolicyDocument"], off)
    return {s["Sid"]: s for s in document["Statement"]}


def evaluate(node, parameters):
    """A condition or rule expression with the parameters given (name -> value)."""
    if not isinstance(node, dict):
        return node
    [(function, arguments)] = node.items()
    if function == "Ref":
        return parameters[arguments]
    values = [evaluate(argument, parameters) for argument in arguments]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::Or":
        return any(values)
    if function == "Fn::And":
        return all(values)
    raise AssertionError(f"evaluate: {function} is not handled")


# Each KSCALER_KUBERNETES_* variable of the Fargate task and the stack parameter it carries.
KUBERNETES_PARAMETERS = {
    KUBERNETES_ENV["kubernetes.server"]: "KubernetesServer",
    KUBERNETES_ENV["kubernetes.ca_data"]: "KubernetesCaData",
    KUBERNETES_ENV["kubernetes.token_parameter"]: "KubernetesTokenParameter",
}


def test_stack_passes_cfn_lint():
    result = cfn_lint(STACK)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_reports_a_broken_stack(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(STACK.read_text().replace("BillingMode: PAY_PER_REQUEST", "BillingMode: ON_DEMAND"))
    result = cfn_lint(broken)
    assert result.returncode & 2, result.stdout
    assert "ON_DEMAND" in result.stdout


def test_state_table_layout(resources):
    table = resources["StateTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "cluster_id", "KeyType": "HASH"},
                                  {"AttributeName": "record", "KeyType": "RANGE"}]
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("cluster_id", "S"), ("record", "S")}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_worker_role_reads_only_its_clusters_join_parameters(resources):
    [policy] = resources["WorkerRole"]["Properties"]["Policies"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "ssm:GetParameter"
    names = [r["Fn::Sub"].rsplit(":parameter", 1)[1] for r in statement["Resource"]]
    assert names == ["/kscaler/${ClusterId}/join-token", "/kscaler/${ClusterId}/server-url",
                     "/kscaler/${ClusterId}/ca-cert-hash"]


def test_kscaler_terminates_only_its_clusters_instances(resources):
    terminate = statements(resources, "KScalerPolicy")["TerminateOwnWorkersOnly"]
    assert terminate["Action"] == "ec2:TerminateInstances"
    assert terminate["Condition"] == {"StringEquals": {"ec2:ResourceTag/kscaler:cluster": {"Ref": "ClusterId"}}}


def test_kscaler_launches_only_tagged_instances_from_a_template_of_its_cluster(resources):
    """The statements as written; test_stack_pools.py asks what they allow and refuse."""
    policy = statements(resources, "KScalerPolicy")
    launch = policy["LaunchTaggedWorkersFromAClusterTemplate"]
    assert launch["Action"] == "ec2:RunInstances"
    assert launch["Resource"]["Fn::Sub"].endswith(":instance/*")
    assert launch["Condition"]["StringEquals"] == {"aws:RequestTag/kscaler:cluster": {"Ref": "ClusterId"}}
    assert launch["Condition"]["ArnLike"]["ec2:LaunchTemplate"]["Fn::Sub"].endswith(":launch-template/*")
    templates = policy["UseOnlyTheClustersLaunchTemplates"]
    assert templates["Resource"]["Fn::Sub"].endswith(":launch-template/*")
    assert templates["Condition"] == {"StringEquals": {"aws:ResourceTag/kscaler:cluster": {"Ref": "ClusterId"}}}


def test_kscaler_tags_only_while_launching(resources):
    tag = statements(resources, "KScalerPolicy")["TagOnlyWhileLaunching"]
    assert tag["Action"] == "ec2:CreateTags"
    assert tag["Condition"] == {"StringEquals": {"ec2:CreateAction": "RunInstances"}}


def test_kscaler_passes_only_the_worker_role(resources):
    policy = statements(resources, "KScalerPolicy")
    passing = [s for s in policy.values() if "iam:PassRole" in str(s["Action"])]
    assert passing == [policy["PassOnlyTheWorkerRole"]]
    assert passing[0]["Resource"] == {"Fn::GetAtt": ["WorkerRole", "Arn"]}
    assert passing[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_kscaler_uses_only_its_table_and_its_clusters_items(resources):
    policy = statements(resources, "KScalerPolicy")
    dynamodb = [s for s in policy.values() if "dynamodb:" in str(s["Action"])]
    assert all(s["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]} for s in dynamodb)
    items = policy["OwnClusterItemsOnly"]
    assert items["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [{"Ref": "ClusterId"}]}}
    # Exactly the item operations kscaler makes (Sources/AWS/DynamoDB.swift; TransactWriteItems
    # is authorised per part: a put and an update): nothing deletes items.
    assert sorted(items["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]


def test_kscaler_policy_grants_no_wildcard_beyond_describe(resources):
    for sid, statement in statements(resources, "KScalerPolicy").items():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(a == "ec2:Describe*" or "*" not in a for a in actions), sid
        if statement["Resource"] == "*":
            assert actions == ["ec2:Describe*"], sid


def test_schedule_runs_the_fargate_task_every_minute(resources):
    schedule = resources["Schedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    ecs = schedule["Target"]["EcsParameters"]
    assert ecs["LaunchType"] == "FARGATE" and ecs["TaskDefinitionArn"] == {"Ref": "TaskDefinition"}
    task = resources["TaskDefinition"]["Properties"]
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    [container] = task["ContainerDefinitions"]
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "LogGroup"}


def test_alarms_watch_the_documented_log_fields(resources):
    patterns = {name: resources[name]["Properties"]["FilterPattern"]
                for name in ("RunsFinishedMetric", "RunsFailedMetric", "FleetAtMaxMetric")}
    assert patterns["RunsFinishedMetric"] == '{ $.event = "run_finished" }'
    # Every outcome that exits non-zero (3 or 4) counts as a failed run.
    for outcome in ("failed", "action_failed", "action_result_unknown"):
        assert f'($.outcome = "{outcome}")' in patterns["RunsFailedMetric"], outcome
    assert "($.at_max IS TRUE)" in patterns["FleetAtMaxMetric"]
    readme = (REPO / "infra/README.md").read_text()
    for field in ('"event":"run_finished"', '"outcome"', '"at_max"'):
        assert field in readme, f"infra/README.md must document {field}"
    metrics = {resources[name]["Properties"]["MetricName"] for name in ("FailedRunsAlarm", "FleetAtMaxAlarm", "NotRunningAlarm")}
    assert metrics == {"RunsFailed", "FleetAtMax", "RunsFinished"}


def test_environment_names_follow_the_binarys_rule():
    """conftest.environment_name spells KSCALER_* names as the binary reads them."""
    schema = (REPO / "Sources/KScalerCore/ConfigSchema.swift").read_text()
    assert 'static let environmentPrefix = "KSCALER_"' in schema
    assert 'environmentPrefix + path.joined(separator: "_").uppercased()' in schema
    assert KUBERNETES_ENV == {"kubernetes.server": "KSCALER_KUBERNETES_SERVER",
                              "kubernetes.ca_data": "KSCALER_KUBERNETES_CA_DATA",
                              "kubernetes.token_parameter": "KSCALER_KUBERNETES_TOKEN_PARAMETER"}


def test_kubernetes_parameters_are_all_three_or_none(template):
    """The rule accepts exactly "all empty" and "all set", and Kubernetes access is on only then."""
    names = sorted(KUBERNETES_PARAMETERS.values())
    for name in names:
        assert template["Parameters"][name]["Default"] == ""
    rule = template["Rules"]["KubernetesAccessNeedsAllThree"]
    accepted = []
    for values in itertools.product(["", "x"], repeat=len(names)):
        parameters = dict(zip(names, values))
        if not evaluate(rule["RuleCondition"], parameters) or all(
                evaluate(a["Assert"], parameters) for a in rule["Assertions"]):
            accepted.append(parameters)
    assert accepted == [dict.fromkeys(names, ""), dict.fromkeys(names, "x")]
    access = [evaluate(template["Conditions"]["KubernetesAccess"], p) for p in accepted]
    assert access == [False, True]


def test_task_gets_the_kubernetes_variables_only_with_kubernetes_access(resources):
    def environment(off):
        [container] = resolve(resources["TaskDefinition"], off)["Properties"]["ContainerDefinitions"]
        return {e["Name"]: e["Value"] for e in container["Environment"]}, container

    # KSCALER_LOG_FORMAT=json always: the metric filters parse JSON (test_log_alarms.py).
    always = {"AWS_REGION": {"Ref": "AWS::Region"}, "KSCALER_LOG_FORMAT": "json"}
    without, _ = environment({"KubernetesAccess"})
    assert without == always
    with_access, container = environment({"HasPrometheusPassword"})
    assert with_access == {**always,
                           **{name: {"Ref": parameter} for name, parameter in KUBERNETES_PARAMETERS.items()}}
    # The token itself never passes through the task definition: kscaler reads the parameter.
    assert [s["Name"] for s in container["Secrets"]] == ["KSCALER_CONFIG_YAML"]


def test_task_gets_the_prometheus_password_only_when_named_and_the_execution_role_may_read_it(resources):
    def secrets(off):
        [container] = resolve(resources["TaskDefinition"], off)["Properties"]["ContainerDefinitions"]
        return {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}

    def readable(off):
        [statement] = [s for p in resolve(resources["TaskExecutionRole"], off)["Properties"]["Policies"]
                       for s in p["PolicyDocument"]["Statement"] if s["Action"] == "ssm:GetParameters"]
        return statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]

    assert set(secrets({"HasPrometheusPassword"})) == {"KSCALER_CONFIG_YAML"}
    assert len(readable({"HasPrometheusPassword"})) == 1
    named = secrets(frozenset())
    assert named["PROMETHEUS_PASSWORD"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PrometheusPasswordParameter}"}
    assert named["PROMETHEUS_PASSWORD"] in readable(frozenset())
    # Not a KSCALER_* name: the binary would take that for a setting and refuse it.
    assert not any(name.startswith("KSCALER_") for name in set(named) - {"KSCALER_CONFIG_YAML"})


@pytest.mark.parametrize("password", ["s3cret-Pa55 with space", ""])
def test_task_command_writes_the_password_file_and_keeps_it_out_of_kscalers_environment(resources, tmp_path, password):
    """The task's shell command, run by /bin/sh with its two paths moved into a scratch
    directory and a stand-in kscaler that records its environment and arguments."""
    [container] = resolve(resources["TaskDefinition"])["Properties"]["ContainerDefinitions"]
    [command] = container["Command"]
    fake = tmp_path / "kscaler"
    fake.write_text('#!/bin/sh\nenv > "$(dirname "$0")/env.txt"\necho "$@" > "$(dirname "$0")/args.txt"\n')
    fake.chmod(0o755)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    local = command.replace("/tmp/", f"{scratch}/").replace("/usr/local/bin/kscaler", str(fake))
    environment = {"PATH": "/usr/bin:/bin", "KSCALER_CONFIG_YAML": "cluster_id: demo"}
    if password:
        environment["PROMETHEUS_PASSWORD"] = password
    subprocess.run(["/bin/sh", "-c", local], env=environment, check=True, timeout=30)
    assert (scratch / "config.yaml").read_text() == "cluster_id: demo\n"
    assert (tmp_path / "args.txt").read_text().split() == ["run", "--config", f"{scratch}/config.yaml"]
    assert "PROMETHEUS_PASSWORD" not in (tmp_path / "env.txt").read_text()
    if password:
        written = scratch / "prometheus-password"
        assert written.read_text() == password
        assert written.stat().st_mode & 0o777 == 0o600
    else:
        assert not (scratch / "prometheus-password").exists()


def test_kscaler_reads_only_the_kubernetes_token_parameter_and_only_with_access(template, resources):
    def ssm(off):
        return {sid: s for sid, s in statements(resources, "KScalerPolicy", off).items() if "ssm:" in str(s["Action"])}

    assert ssm({"KubernetesAccess"}) == {}
    [(sid, statement)] = ssm(frozenset()).items()
    assert sid == "ReadKubernetesToken" and statement["Effect"] == "Allow"
    assert statement["Action"] == "ssm:GetParameter"
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${KubernetesTokenParameter}"}
    # That ARN is the parameter's only for a name starting with "/"; a "*" would widen it.
    pattern = template["Parameters"]["KubernetesTokenParameter"]["AllowedPattern"]
    assert re.fullmatch(pattern, "/kscaler/demo/kube-token") and re.fullmatch(pattern, "")
    for name in ("kscaler/demo/kube-token", "/kscaler/*", "/kscaler/demo/", "arn:aws:ssm:eu-west-1:1:parameter/x"):
        assert not re.fullmatch(pattern, name), name


def test_only_kscalers_policy_and_task_see_the_kubernetes_token_parameter(template):
    """No other role may read the token; only the task and the function learn the parameter's name."""
    resolved = resolve(template["Resources"])
    users = sorted(name for name, resource in resolved.items() if "KubernetesTokenParameter" in json.dumps(resource))
    assert users == ["KScalerFunction", "KScalerPolicy", "TaskDefinition"]
    for name in users:
        assert "kms:" not in json.dumps(resolved[name])  # alias/aws/ssm, as for the join token
