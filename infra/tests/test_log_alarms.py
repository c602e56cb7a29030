"""The stack's log alarms against what kscaler really writes: real `kscaler run` processes
(kscaler_runs.py: nothing to do, at nodes.max with pending pods, a launch refused, acting,
failing, skipped; JSON chosen by KSCALER_LOG_FORMAT alone) and every MetricFilter's FilterPattern
from the stack,
evaluated line by line with cwl_filter as CloudWatch Logs evaluates each event the awslogs
driver ships (one stderr line, one event). Then the stack itself: its wiring parsed, and
deployed into moto's CloudFormation."""
import json
import subprocess
import uuid

import pytest

from conftest import REGION
from cwl_filter import compile_pattern, matches
from stack_model import expanded

KINDS = ["nothing", "at_max", "action_failed", "acted", "failed", "skipped"]
OUTCOMES = {"nothing": "nothing", "at_max": "nothing", "action_failed": "action_failed", "acted": "acted", "failed": "failed",
            "skipped": "skipped"}
FAILED = {"failed", "action_failed"}


def resources():
    return expanded()["Resources"]


def of_type(kind):
    return {name: r for name, r in resources().items() if r["Type"] == kind}


def metric_filters():
    """{filter's logical id: (pattern, metric name, its transformation)}"""
    out = {}
    for name, resource in of_type("AWS::Logs::MetricFilter").items():
        [transformation] = resource["Properties"]["MetricTransformations"]
        out[name] = (resource["Properties"]["FilterPattern"], transformation["MetricName"], transformation)
    return out


# ---------------------------------------------------------------------------------------------
# What the binary writes


@pytest.mark.parametrize("kind", KINDS)
def test_every_stderr_line_is_one_json_object_ending_with_one_run_finished(kscaler_runs, kind):
    run = kscaler_runs.runs[kind]
    assert run.lines, f"{kind}: no log output"
    records = []
    for line in run.lines:
        assert line.startswith("{"), f"{kind}: a line the awslogs driver would ship as a non-JSON event: {line!r}"
        record = json.loads(line)
        assert isinstance(record, dict)
        records.append(record)
    finished = [r for r in records if r.get("event") == "run_finished"]
    assert len(finished) == 1 and records[-1] is finished[0], f"{kind}: {finished}"
    assert finished[0]["outcome"] == OUTCOMES[kind] == (run.report or {}).get("outcome"), run.stderr
    assert isinstance(finished[0]["at_max"], bool)  # a JSON boolean: IS TRUE needs one


def test_the_runs_are_what_their_names_say(kscaler_runs):
    runs = kscaler_runs.runs
    assert runs["failed"].exit_code == 3 and runs["skipped"].exit_code == 0
    assert runs["action_failed"].exit_code == 4
    [launch] = runs["action_failed"].report["actions"]
    assert launch["kind"] == "launch" and launch.get("error")  # refused: the credentials may not launch
    assert [a["kind"] for a in runs["acted"].report["actions"] if not a.get("error")] == ["launch"]
    at_max = runs["at_max"].report
    assert at_max["decision"]["counts"]["desired"] == 1 == at_max["decision"]["counts"]["current"]
    assert at_max["observation"]["readings"]["unschedulable_pods"]["value"] > 0
    # The same pending pods, with room under nodes.max: the next run launches.
    assert runs["acted"].report["decision"]["counts"]["desired"] > 1


def matching(pattern, kscaler_runs, kinds):
    """{kind: number of its stderr lines the pattern matches}"""
    return {kind: sum(matches(pattern, line) for line in kscaler_runs.runs[kind].lines) for kind in kinds}


def test_runs_finished_counts_every_run_exactly_once(kscaler_runs):
    pattern, metric, _ = metric_filters()["RunsFinishedMetric"]
    assert metric == "RunsFinished"
    assert matching(pattern, kscaler_runs, KINDS) == {kind: 1 for kind in KINDS}


def test_runs_failed_matches_only_the_failed_runs(kscaler_runs):
    """Observation failed (exit 3) and a launch refused (exit 4); action_result_unknown, the
    third failed outcome, needs a launch whose answer is lost, which these peers cannot stage:
    the pattern names it, and cwl_filter's tests cover the || it sits in."""
    pattern, metric, _ = metric_filters()["RunsFailedMetric"]
    assert metric == "RunsFailed"
    assert matching(pattern, kscaler_runs, KINDS) == {kind: int(kind in FAILED) for kind in KINDS}
    unknown = next(l for l in kscaler_runs.runs["action_failed"].lines if '"run_finished"' in l).replace(
        '"outcome":"action_failed"', '"outcome":"action_result_unknown"')
    assert matches(pattern, unknown)


def test_fleet_at_max_matches_only_the_run_at_max(kscaler_runs):
    pattern, metric, _ = metric_filters()["FleetAtMaxMetric"]
    assert metric == "FleetAtMax"
    assert matching(pattern, kscaler_runs, KINDS) == {kind: int(kind == "at_max") for kind in KINDS}


def test_the_default_plain_format_is_what_no_filter_can_match(kscaler_runs):
    """The bug this fixes: without KSCALER_LOG_FORMAT the binary writes plain text, and no JSON
    filter ever counts a run, so NotRunning fires for ever and the others never do."""
    plain = kscaler_runs.runs["plain_default"]
    assert plain.report["outcome"] == "nothing"
    assert any("run_finished" in line for line in plain.lines)
    for name, (pattern, _, _) in metric_filters().items():
        assert not any(matches(pattern, line) for line in plain.lines), name


@pytest.mark.parametrize("level", [None, "debug"])
def test_config_check_shows_the_format_and_level_the_environment_sets(kscaler_runs, level):
    """What an operator checks on a host: `kscaler config check` in the deployment files'
    logging environment names json and where it came from."""
    environment = {"PATH": "/usr/bin:/bin", "KSCALER_LOG_FORMAT": "json", **({"KSCALER_LOG_LEVEL": level} if level else {})}
    done = subprocess.run([str(kscaler_runs.binary), "config", "check", "--config", str(kscaler_runs.config_path)],
                          env=environment, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "log format: json (env KSCALER_LOG_FORMAT)" in lines
    assert (f"log level: {level} (env KSCALER_LOG_LEVEL)" if level else "log level: info (default)") in lines


# ---------------------------------------------------------------------------------------------
# The stack's wiring, parsed


def test_the_task_logs_json_by_its_environment_to_the_log_group():
    [container] = resources()["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"] if "Name" in e}
    assert environment["KSCALER_LOG_FORMAT"] == "json"
    assert not any("--log-format" in part for part in container["Command"] + container["EntryPoint"])
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    for name, resource in of_type("AWS::Logs::MetricFilter").items():
        assert resource["Properties"]["LogGroupName"] == {"Ref": "LogGroup"}, name


def test_every_alarm_watches_a_filters_metric_and_waits_for_that_filter():
    filters = metric_filters()
    by_metric = {metric: (name, t) for name, (_, metric, t) in filters.items()}
    alarms = of_type("AWS::CloudWatch::Alarm")
    assert len(alarms) == 3
    for name, alarm in alarms.items():
        properties = alarm["Properties"]
        filter_name, transformation = by_metric[properties["MetricName"]]
        assert properties["Namespace"] == transformation["MetricNamespace"], name
        assert "Dimensions" not in properties and "Dimensions" not in transformation  # both sides, or no match
        assert alarm["DependsOn"] == filter_name, name
    for name, (pattern, _, _) in filters.items():
        compile_pattern(pattern)  # every pattern within what the tests can evaluate


def test_alarm_settings_fit_a_run_a_minute():
    alarms = {a["Properties"]["MetricName"]: a for a in of_type("AWS::CloudWatch::Alarm").values()}
    filters = {metric: t for _, metric, t in metric_filters().values()}
    schedule = resources()["Schedule"]["Properties"]["ScheduleExpression"]
    assert schedule == "rate(1 minute)"
    # NotRunning: missing data is "no run finished", so the filter has no default value.
    not_running = alarms["RunsFinished"]
    # Created only with the schedule on: while it is off, no run is expected.
    assert not_running["Condition"] == "ScheduleRuns"
    assert "DefaultValue" not in filters["RunsFinished"]
    props = not_running["Properties"]
    assert (props["TreatMissingData"], props["ComparisonOperator"], props["Threshold"]) == ("breaching", "LessThanThreshold", 1)
    assert props["Period"] * props["EvaluationPeriods"] == 600
    # The others report 0 on every other event and treat silence as fine (NotRunning's case).
    for metric in ("RunsFailed", "FleetAtMax"):
        assert filters[metric]["DefaultValue"] == 0
        assert alarms[metric]["Properties"]["TreatMissingData"] == "notBreaching"
    # FleetAtMax: periods long enough to always hold a run (task start-up jitters by tens of
    # seconds), all of them breaching, 15 minutes in all.
    fleet = alarms["FleetAtMax"]["Properties"]
    assert fleet["Period"] >= 300 and fleet["DatapointsToAlarm"] == fleet["EvaluationPeriods"]
    assert fleet["Period"] * fleet["EvaluationPeriods"] == 900
    failed = alarms["RunsFailed"]["Properties"]
    assert (failed["Statistic"], failed["Period"], failed["Threshold"]) == ("Sum", 300, 3)


def test_the_schedule_waits_for_the_config_parameter():
    """A schedule created before /kscaler/<id>/config exists starts tasks that cannot start
    (their secret is missing), and NotRunning fires."""
    stack = resources()
    [config] = [name for name, r in stack.items() if r["Type"] == "AWS::SSM::Parameter"
                and r["Properties"]["Name"] == {"Fn::Sub": "/kscaler/${ClusterId}/config"}]
    depends = stack["Schedule"].get("DependsOn", [])
    assert config in ([depends] if isinstance(depends, str) else depends)


# ---------------------------------------------------------------------------------------------
# The stack deployed into moto's CloudFormation

# Resource types moto's CloudFormation does not implement (moto 5.x): it skips them with a
# warning and reports the stack complete. Their properties are checked by parsing above.
MOTO_LACKS = {"AWS::Logs::MetricFilter", "AWS::CloudWatch::Alarm", "AWS::Scheduler::Schedule"}

PARAMETERS = {
    "ClusterId": "logs", "WorkerImageId": "ami-760aaa0f", "WorkerSecurityGroupIds": "sg-0123456789abcdef0",
    "KScalerImage": "registry.example.com/kscaler:0.1.0", "TaskSubnetIds": "subnet-0123456789abcdef0",
    "TaskSecurityGroupIds": "sg-0123456789abcdef1",
    # With Kubernetes access: without it, KScalerPolicy's statement list keeps an
    # AWS::NoValue that moto does not remove (its policy check then refuses the document).
    "KubernetesServer": "https://10.0.1.10:6443", "KubernetesCaData": "Q0E=",
    "KubernetesTokenParameter": "/kscaler/logs/kube-token",
    # Every conditional resource of the Fargate shape: the schedule on (NotRunning exists), the
    # Prometheus password passed to the task.
    "ScheduleState": "ENABLED", "PrometheusPasswordParameter": "/kscaler/logs/prometheus-password",
    "Shape": "fargate",
}


def test_the_fargate_shape_deploys_into_moto_with_its_log_group_and_json_task(moto):
    """moto has no AWS::LanguageExtensions transform: the template is expanded first by
    cfn-lint's implementation of it (stack_model.expanded), then created."""
    template = expanded()
    template.pop("Transform")
    # moto reads AWS::SSM::Parameter's Tags as a list of Key/Value pairs (moto/ssm/models.py,
    # put_parameter) and fails with a 500 on the map CloudFormation specifies: handed over in
    # moto's shape, the same tags.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SSM::Parameter" and isinstance(resource["Properties"].get("Tags"), dict):
            resource["Properties"]["Tags"] = [{"Key": k, "Value": v} for k, v in resource["Properties"]["Tags"].items()]
    cloudformation = moto.client("cloudformation")
    # A cluster of its own per run: the stack's table and repository are retained on delete
    # (DeletionPolicy), and moto keeps them, so a second run in the same moto would meet them.
    cluster = "logs" + uuid.uuid4().hex[:8]
    name = f"kscaler-logs-{cluster}"
    [vpc] = [v["VpcId"] for v in moto.client("ec2").describe_vpcs()["Vpcs"] if v.get("IsDefault")]
    parameters = {**PARAMETERS, "ClusterId": cluster, "VpcId": vpc,
                  "KubernetesTokenParameter": f"/kscaler/{cluster}/kube-token",
                  "PrometheusPasswordParameter": f"/kscaler/{cluster}/prometheus-password"}
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template),
                                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                                Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    try:
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        created = {r["LogicalResourceId"]: r for r in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
                   if r["LogicalResourceId"]}
        wanted = {n: r["Type"] for n, r in template["Resources"].items()
                  if r.get("Condition") not in ("HasServerUrl", "RunOnServer", "HasAlarmTopic", "LambdaFunction")}
        # Everything moto implements was created; the rest is exactly the types named above.
        assert {n for n, t in wanted.items() if t not in MOTO_LACKS} == set(created)
        assert {wanted[n] for n in set(wanted) - set(created)} == MOTO_LACKS

        [group] = moto.client("logs").describe_log_groups(logGroupNamePrefix=f"/kscaler/{cluster}")["logGroups"]
        assert (group["logGroupName"], group["retentionInDays"]) == (f"/kscaler/{cluster}", 30)
        definition = moto.client("ecs").describe_task_definition(taskDefinition=f"kscaler-{cluster}")["taskDefinition"]
        [container] = definition["containerDefinitions"]
        environment = {e["name"]: e["value"] for e in container["environment"]}
        assert environment["KSCALER_LOG_FORMAT"] == "json" and environment["AWS_REGION"] == REGION
        assert not any("--log-format" in part for part in container["command"])
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        assert container["logConfiguration"]["options"]["awslogs-group"] == f"/kscaler/{cluster}"
    finally:
        cloudformation.delete_stack(StackName=name)


def test_the_filters_and_alarms_moto_cannot_deploy_go_through_its_apis(moto):
    """The same properties through moto's Logs and CloudWatch APIs (put_metric_filter,
    put_metric_alarm), so a property the services refuse fails here too."""
    logs, cloudwatch = moto.client("logs"), moto.client("cloudwatch")
    group = "/kscaler/logs-api"
    logs.create_log_group(logGroupName=group)
    try:
        for name, (pattern, metric, t) in metric_filters().items():
            transformation = {"metricName": metric, "metricNamespace": "kscaler/logs", "metricValue": t["MetricValue"]}
            if "DefaultValue" in t:
                transformation["defaultValue"] = float(t["DefaultValue"])
            logs.put_metric_filter(logGroupName=group, filterName=name, filterPattern=pattern,
                                   metricTransformations=[transformation])
        stored = {f["filterName"]: f["filterPattern"] for f in logs.describe_metric_filters(logGroupName=group)["metricFilters"]}
        assert stored == {name: pattern for name, (pattern, _, _) in metric_filters().items()}
        for name, alarm in of_type("AWS::CloudWatch::Alarm").items():
            p = alarm["Properties"]
            cloudwatch.put_metric_alarm(
                AlarmName=f"logs-{name}", Namespace="kscaler/logs", MetricName=p["MetricName"], Statistic=p["Statistic"],
                Period=p["Period"], EvaluationPeriods=p["EvaluationPeriods"], DatapointsToAlarm=p.get("DatapointsToAlarm", p["EvaluationPeriods"]),
                Threshold=p["Threshold"], ComparisonOperator=p["ComparisonOperator"], TreatMissingData=p["TreatMissingData"])
        described = cloudwatch.describe_alarms(AlarmNamePrefix="logs-")["MetricAlarms"]
        assert sorted(a["MetricName"] for a in described) == ["FleetAtMax", "RunsFailed", "RunsFinished"]
    finally:
        cloudwatch.delete_alarms(AlarmNames=[f"logs-{n}" for n in of_type("AWS::CloudWatch::Alarm")])
        logs.delete_log_group(logGroupName=group)
