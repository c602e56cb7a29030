"""The stack's two scheduled shapes (parameter Shape): lambda (the default) and fargate. Each
shape's resources exist only for it (and only once its code is named), cfn-lint passes with
either as the default, and the function runs kscaler as the task does: the same KScalerPolicy,
JSON logs into the same log group (so the same metric filters and alarms watch it), the same
KSCALER_* variables, one run a minute from EventBridge Scheduler, never retried by Lambda."""

import itertools

import pytest

import iam_eval
from conftest import STACK
from stack_model import ATTRIBUTES, LOG_GROUP_ARN, concrete, expanded, resolve
from test_cfn_lint import KUBERNETES_PARAMETERS, cfn_lint

FARGATE_ONLY = {"TaskCluster", "TaskExecutionRole", "KScalerTaskRole", "TaskDefinition", "SchedulerRole", "Schedule"}
LAMBDA_ONLY = {"KScalerFunctionRole", "KScalerFunction", "KScalerFunctionInvokeConfig", "FunctionSchedulerRole", "FunctionSchedule"}


@pytest.fixture(scope="module")
def template():
    return expanded()


def condition(template, node, parameters):
    """A Conditions entry (or expression) for the parameters given; lists are joined with ","."""
    if not isinstance(node, dict):
        return node
    [(function, arguments)] = node.items()
    if function == "Ref":
        value = parameters.get(arguments, template["Parameters"][arguments].get("Default", ""))
        return ",".join(value) if isinstance(value, list) else value
    if function == "Condition":
        return condition(template, template["Conditions"][arguments], parameters)
    if function == "Fn::Join":
        separator, items = arguments
        value = condition(template, items, parameters)
        return separator.join(value) if isinstance(value, list) else value
    values = [condition(template, argument, parameters) for argument in arguments]
    if function == "Fn::Equals":
        return values[0] == values[1]
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::Or":
        return any(values)
    if function == "Fn::And":
        return all(values)
    raise AssertionError(f"condition: {function} is not handled")


def created(template, parameters):
    """The names of the resources CloudFormation creates with these parameters."""
    return {name for name, resource in template["Resources"].items()
            if "Condition" not in resource or condition(template, {"Condition": resource["Condition"]}, parameters)}


def test_lambda_is_the_default_shape(template):
    assert template["Parameters"]["Shape"] == {
        **template["Parameters"]["Shape"], "Default": "lambda", "AllowedValues": ["lambda", "fargate"]}


@pytest.mark.parametrize("shape", ["lambda", "fargate"])
def test_stack_passes_cfn_lint_with_either_shape_as_default(tmp_path, shape):
    text = STACK.read_text()
    assert text.count("    Default: lambda\n") == 1
    variant = tmp_path / "kscaler.yaml"
    variant.write_text(text.replace("    Default: lambda\n", f"    Default: {shape}\n"))
    result = cfn_lint(variant)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_shape_creates_only_its_own_resources_and_only_with_its_code(template):
    assert {n for n, r in template["Resources"].items() if r.get("Condition") == "ScheduledTask"} == FARGATE_ONLY
    assert {n for n, r in template["Resources"].items() if r.get("Condition") == "LambdaFunction"} == LAMBDA_ONLY
    code = {"KScalerImage": "registry.example.com/kscaler:1", "LambdaCodeS3Bucket": "b", "LambdaCodeS3Key": "k.zip",
            "TaskSubnetIds": ["subnet-1"]}
    for shape, image, bucket in itertools.product(["lambda", "fargate"], ["", code["KScalerImage"]], ["", "b"]):
        parameters = {**code, "Shape": shape, "KScalerImage": image, "LambdaCodeS3Bucket": bucket}
        made = created(template, parameters)
        assert (FARGATE_ONLY <= made) == (shape == "fargate" and image != ""), parameters
        assert not (FARGATE_ONLY & made) or shape == "fargate", parameters
        assert (LAMBDA_ONLY <= made) == (shape == "lambda" and bucket != ""), parameters
        assert not (LAMBDA_ONLY & made) or shape == "lambda", parameters
        # Shared by both: the log group, its filters and the two always-on alarms.
        assert {"LogGroup", "RunsFinishedMetric", "RunsFailedMetric", "FleetAtMaxMetric",
                "FailedRunsAlarm", "FleetAtMaxAlarm", "KScalerPolicy"} <= made
        # NotRunning exists once a shape runs on schedule, whichever it is.
        for state in ("ENABLED", "DISABLED"):
            runs = created(template, {**parameters, "ScheduleState": state})
            scheduled = (shape == "fargate" and image != "") or (shape == "lambda" and bucket != "")
            assert ("NotRunningAlarm" in runs) == (scheduled and state == "ENABLED"), (parameters, state)


def test_the_function_runs_kscaler_as_the_task_does(template):
    resources = template["Resources"]
    function = resolve(resources["KScalerFunction"])["Properties"]
    assert (function["Runtime"], function["Handler"], function["MemorySize"], function["ReservedConcurrentExecutions"]) == (
        "provided.al2023", "bootstrap", 128, 1)
    assert 30 <= function["Timeout"] <= 120
    assert function["Architectures"] == [{"Ref": "LambdaArchitecture"}]
    assert function["Code"] == {"S3Bucket": {"Ref": "LambdaCodeS3Bucket"}, "S3Key": {"Ref": "LambdaCodeS3Key"}}
    assert function["Role"] == {"Fn::GetAtt": ["KScalerFunctionRole", "Arn"]}
    # The same least-privilege policy as the task's role, and the one the IAM tests evaluate.
    function_role = resources["KScalerFunctionRole"]["Properties"]
    assert function_role["ManagedPolicyArns"] == resources["KScalerTaskRole"]["Properties"]["ManagedPolicyArns"] == [{"Ref": "KScalerPolicy"}]
    [trust] = function_role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    # Into the VPC with the task's security group (the node group lets it reach Prometheus and the API).
    assert function["VpcConfig"]["SubnetIds"] == {"Ref": "TaskSubnetIds"}
    assert resolve(resources["KScalerFunction"], {"HasExtraTaskSecurityGroups"})["Properties"]["VpcConfig"]["SecurityGroupIds"] == [
        {"Ref": "TaskSecurityGroup"}]
    assert resolve(resources["KScalerFunction"], {"LambdaInVpc"})["Properties"].get("VpcConfig") is None


def test_the_function_gets_the_tasks_variables_and_the_kubernetes_ones_only_with_access(template):
    def variables(off):
        return resolve(template["Resources"]["KScalerFunction"], off)["Properties"]["Environment"]["Variables"]

    # AWS_REGION is Lambda's own (a reserved variable); the config is packaged in the zip.
    always = {"KSCALER_LOG_FORMAT": "json", "KSCALER_CONFIG": "/var/task/config.yaml"}
    assert variables({"KubernetesAccess"}) == always
    assert variables(frozenset()) == {**always, **{name: {"Ref": parameter} for name, parameter in KUBERNETES_PARAMETERS.items()}}
    [container] = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    task = {e["Name"] for e in resolve(container)["Environment"]}
    assert task - {"AWS_REGION"} <= set(variables(frozenset()))


def test_the_function_logs_into_the_log_group_the_alarms_watch(template):
    resources = template["Resources"]
    logging = resources["KScalerFunction"]["Properties"]["LoggingConfig"]
    # Text: Lambda writes the runtime's stderr lines as they are, so kscaler's JSON records stay
    # the JSON events the filter patterns match (test_log_alarms.py).
    assert logging == {"LogGroup": {"Ref": "LogGroup"}, "LogFormat": "Text"}
    for name, resource in resources.items():
        if resource["Type"] == "AWS::Logs::MetricFilter":
            assert resource["Properties"]["LogGroupName"] == {"Ref": "LogGroup"}, name
    [policy] = resolve(resources["KScalerFunctionRole"])["Properties"]["Policies"]
    statements = concrete(policy["PolicyDocument"])["Statement"]
    stream = LOG_GROUP_ARN.replace(":*", ":log-stream:2026/12/03/[$LATEST]abc")
    assert iam_eval.allowed(statements, "logs:PutLogEvents", stream)
    assert iam_eval.allowed(statements, "logs:CreateLogStream", stream)
    other = stream.replace("/kscaler/demo", "/kscaler/other")
    assert not iam_eval.allowed(statements, "logs:PutLogEvents", other)


def test_the_functions_own_statements_grant_nothing_of_kscalers(template):
    """Beyond KScalerPolicy, the function's role may write its logs and attach to the VPC: no
    instance, table, parameter or role action."""
    [policy] = resolve(template["Resources"]["KScalerFunctionRole"])["Properties"]["Policies"]
    statements = concrete(policy["PolicyDocument"])["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
                       "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}
    for action, resource in [("ec2:RunInstances", "*"), ("ec2:TerminateInstances", "*"), ("dynamodb:PutItem", ATTRIBUTES["StateTable.Arn"]),
                             ("ssm:GetParameter", "*"), ("iam:PassRole", "*"), ("ec2:CreateTags", "*")]:
        assert not iam_eval.allowed(statements, action, resource), action
    [outside_vpc] = resolve(template["Resources"]["KScalerFunctionRole"], {"LambdaInVpc"})["Properties"]["Policies"]
    assert [s["Sid"] for s in outside_vpc["PolicyDocument"]["Statement"]] == ["WriteLogs"]


def test_the_schedule_invokes_the_function_once_a_minute_and_nothing_retries_a_run(template):
    resources = template["Resources"]
    schedule = resources["FunctionSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == {"Ref": "ScheduleState"}
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["KScalerFunction", "Arn"]}
    assert target["Input"] == '{"mode": "run"}'
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    invoke = resources["KScalerFunctionInvokeConfig"]["Properties"]
    assert (invoke["MaximumRetryAttempts"], invoke["MaximumEventAgeInSeconds"]) == (0, 60)
    [policy] = resolve(resources["FunctionSchedulerRole"])["Properties"]["Policies"]
    statements = concrete(policy["PolicyDocument"])["Statement"]
    function = ATTRIBUTES["KScalerFunction.Arn"]
    assert iam_eval.allowed(statements, "lambda:InvokeFunction", function)
    assert not iam_eval.allowed(statements, "lambda:InvokeFunction", function.replace("kscaler-demo", "other"))
    assert not iam_eval.allowed(statements, "lambda:UpdateFunctionCode", function)


def test_the_lambda_shape_deploys_into_moto_without_the_fargate_resources(moto):
    """As test_log_alarms deploys the Fargate shape: expanded by cfn-lint's transform, created in
    moto from a zip in its S3. moto creates no EventInvokeConfig, schedule, metric filter or
    alarm (and, with signature checking on, its Lambda API refuses to be read back), so what is
    checked is that the stack is accepted and which resources it made."""
    import io
    import json
    import uuid
    import zipfile

    from test_log_alarms import MOTO_LACKS

    template = expanded()
    template.pop("Transform")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SSM::Parameter" and isinstance(resource["Properties"].get("Tags"), dict):
            resource["Properties"]["Tags"] = [{"Key": k, "Value": v} for k, v in resource["Properties"]["Tags"].items()]
    cluster = "lambda" + uuid.uuid4().hex[:8]
    bucket = f"kscaler-code-{cluster}"
    moto.client("s3").create_bucket(Bucket=bucket)
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("bootstrap", "not run by moto\n")
    moto.client("s3").put_object(Bucket=bucket, Key="kscaler-lambda-x86_64.zip", Body=package.getvalue())
    [vpc] = [v["VpcId"] for v in moto.client("ec2").describe_vpcs()["Vpcs"] if v.get("IsDefault")]
    parameters = {"ClusterId": cluster, "VpcId": vpc, "WorkerImageId": "ami-760aaa0f", "ScheduleState": "ENABLED",
                  "LambdaCodeS3Bucket": bucket, "LambdaCodeS3Key": "kscaler-lambda-x86_64.zip",
                  "TaskSubnetIds": "subnet-0123456789abcdef0", "KScalerImage": "registry.example.com/kscaler:0.1.0",
                  # With Kubernetes access: see test_log_alarms.PARAMETERS.
                  "KubernetesServer": "https://10.0.1.10:6443", "KubernetesCaData": "Q0E=",
                  "KubernetesTokenParameter": f"/kscaler/{cluster}/kube-token"}
    cloudformation = moto.client("cloudformation")
    name = f"kscaler-{cluster}"
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template),
                                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                                Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    try:
        [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        made = {r["LogicalResourceId"] for r in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
                if r["LogicalResourceId"]}
        lacks = MOTO_LACKS | {"AWS::Lambda::EventInvokeConfig"}
        wanted = {n for n in created(template, parameters) if template["Resources"][n]["Type"] not in lacks}
        assert made == wanted
        assert {"KScalerFunction", "KScalerFunctionRole", "FunctionSchedulerRole", "LogGroup"} <= made
        assert not made & FARGATE_ONLY, "KScalerImage is set, but the shape is lambda"
    finally:
        cloudformation.delete_stack(StackName=name)
