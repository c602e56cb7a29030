"""The CloudFormation stack passes cfn-lint, and its policies say what infra/README.md promises:
kscaler may terminate and launch only instances tagged with its cluster, tag only while
launching, pass only the worker role, and touch only its cluster's items in its table."""

import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

from conftest import REPO, STACK


def cfn_lint(path):
    cfn_lint_command = Path(sys.executable).parent / "cfn-lint"  # installed beside pytest in .venv
    return subprocess.run([str(cfn_lint_command), str(path)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def resources():
    template, matches = decode(str(STACK))
    assert not matches, matches
    return template["Resources"]


def statements(resources, name):
    document = resources[name]["Properties"]["PolicyDocument"]
    return {s["Sid"]: s for s in document["Statement"]}


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


def test_worker_launch_template_requires_imdsv2_and_encrypts_the_root_volume(resources):
    data = resources["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    [root] = data["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True
    assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["WorkerInstanceProfile", "Arn"]}}


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


def test_kscaler_launches_only_tagged_instances_from_the_worker_template(resources):
    launch = statements(resources, "KScalerPolicy")["LaunchTaggedWorkersFromTheTemplate"]
    assert launch["Action"] == "ec2:RunInstances"
    assert launch["Resource"]["Fn::Sub"].endswith(":instance/*")
    assert launch["Condition"]["StringEquals"] == {"aws:RequestTag/kscaler:cluster": {"Ref": "ClusterId"}}
    assert "${WorkerLaunchTemplate}" in launch["Condition"]["ArnLike"]["ec2:LaunchTemplate"]["Fn::Sub"]


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
