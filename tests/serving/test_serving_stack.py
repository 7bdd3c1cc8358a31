"""The serving stack's template: deployer triggers and permissions, rollback alarms, the API, batch
scoring, the feedback job and Model Monitor; and every scanner the platform runs, in dev and prod.

Each template is synthesised once per module (a synth costs 10-30 s of CPU). Prod has Model Monitor
on by default, dev (serverless: nothing captured) off, so the two scans cover both.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk.assertions import Match, Template

from platform_core.config import load_config
from platform_core.schema import glue_columns
from platform_core.schemas.serving import BATCH_PREDICTION_COLUMNS, PRODUCTION_LABELLED
from stacks.serving_stack import ServingStack
from tests.infra.harness import build_stack, cfn_lint_findings, nag_findings

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]


@cache
def serving_stack(env_name: str) -> Stack:
    def factory(app: Any, config: Any, env: Any) -> Stack:
        return ServingStack(app, "Serving", config=config, env=env)

    return build_stack(factory, env_name)


@cache
def template(env_name: str) -> Template:
    return Template.from_stack(serving_stack(env_name))


@pytest.fixture(scope="module")
def dev() -> Template:
    return template("dev")


@pytest.fixture(scope="module")
def prod() -> Template:
    return template("prod")


def _text(value: Any) -> str:
    """A CloudFormation value as text, intrinsics included (for substring checks)."""
    return json.dumps(value)


def _function(t: Template, name: str) -> tuple[str, dict[str, Any]]:
    found = t.find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": name}})
    assert len(found) == 1, f"{len(found)} functions named {name}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource["Properties"]


def _statements(t: Template, role_logical_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in t.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for s in statements:
        actions.update([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return actions


# -- deployment on approval -----------------------------------------------------------------------


def test_approvals_and_rejections_of_the_model_package_group_wake_the_deployer(dev: Template) -> None:
    deployer_id, _ = _function(dev, "mlp-dev-model-deployer")
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {"ModelPackageGroupName": ["mlp-dev-churn"], "ModelApprovalStatus": ["Approved", "Rejected"]},
            },
            "Targets": [
                Match.object_like({"Arn": {"Fn::GetAtt": [deployer_id, "Arn"]}, "DeadLetterConfig": Match.any_value()})
            ],
        },
    )
    dev.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Endpoint State Change"],
                "detail": {"EndpointName": ["mlp-dev-inference"]},
            }
        },
    )
    dev.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(15 minutes)"})


def test_dev_deploys_serverless_without_capture_or_rollback_alarms(dev: Template) -> None:
    _, props = _function(dev, "mlp-dev-model-deployer")
    env = props["Environment"]["Variables"]
    assert env["SERVERLESS"] == "true" and env["SERVERLESS_MEMORY_MB"] == "2048"
    assert "CAPTURE_S3_URI" not in env and "ROLLBACK_ALARMS" not in env
    assert (
        dev.find_resources(
            "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": Match.string_like_regexp("rollback")}}
        )
        == {}
    )
    assert props["ReservedConcurrentExecutions"] == 1  # one reconciliation at a time


def test_prod_deploys_instances_with_capture_and_alarm_rollback(prod: Template) -> None:
    _, props = _function(prod, "mlp-prod-model-deployer")
    env = props["Environment"]["Variables"]
    serving = load_config("prod").serving
    assert (env["SERVERLESS"], env["INSTANCE_TYPE"], env["MIN_INSTANCES"], env["MAX_INSTANCES"]) == (
        "false",
        serving.instance_type,
        "2",
        "10",
    )
    assert env["INVOCATIONS_PER_INSTANCE"] == str(serving.invocations_per_instance_target)
    assert env["ROLLBACK_ALARMS"] == "mlp-prod-inference-rollback-errors,mlp-prod-inference-rollback-latency"
    assert "mlp-prod-raw-" in _text(env["CAPTURE_S3_URI"]) and "serving/data-capture" in _text(env["CAPTURE_S3_URI"])
    prod.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "mlp-prod-inference-rollback-errors",
            "MetricName": "Invocation5XXErrors",
            "Namespace": "AWS/SageMaker",
            "Period": 60,
            "Dimensions": Match.array_with([{"Name": "EndpointName", "Value": "mlp-prod-inference"}]),
        },
    )
    prod.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmName": "mlp-prod-inference-rollback-latency", "MetricName": "ModelLatency", "ExtendedStatistic": "p99"},
    )
    role_id = props["Role"]["Fn::GetAtt"][0]
    statements = _statements(prod, role_id)
    describe_alarms = [s for s in statements if s["Action"] == "cloudwatch:DescribeAlarms"]
    assert describe_alarms and all("rollback" in _text(s["Resource"]).lower() for s in describe_alarms)
    assert {
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
        "sagemaker:UpdateEndpoint",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "iam:PassRole",
    } <= _actions(statements)
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert not [s for s in statements if s["Action"] in ("sagemaker:*", "*")]


# -- inference API --------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_the_api_takes_iam_signed_requests_behind_waf(env_name: str) -> None:
    t = template(env_name)
    methods = t.find_resources("AWS::ApiGateway::Method")
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} == {"GET", "POST"}
    assert {m["Properties"]["AuthorizationType"] for m in methods.values()} == {"AWS_IAM"}
    t.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    # Scoring requests are small: the managed 8 KB body limit stays a block here
    (acl,) = t.find_resources("AWS::WAFv2::WebACL").values()
    common = next(r for r in acl["Properties"]["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet")
    assert "RuleActionOverrides" not in common["Statement"]["ManagedRuleGroupStatement"]
    serving = load_config(env_name).serving
    t.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "v1",
            "TracingEnabled": True,
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "ThrottlingRateLimit": serving.api_rate_limit_rps,
                            "ThrottlingBurstLimit": serving.api_burst_limit,
                        }
                    )
                ]
            ),
        },
    )
    _, props = _function(t, f"mlp-{env_name}-inference-api")
    env = props["Environment"]["Variables"]
    assert env["SUBSCRIPTION_FEATURE_GROUP"] == f"mlp-{env_name}-user-subscription"
    assert env["CLICKSTREAM_FEATURE_GROUP"] == f"mlp-{env_name}-user-clickstream"
    assert env["INFERENCE_TIMEOUT_MS"] == str(serving.inference_timeout_ms)
    # Only serverless endpoints need the API to capture for them
    assert ("CAPTURE_BUCKET" in env) is serving.serverless


# -- batch scoring ----------------------------------------------------------------------------------


def test_batch_scoring_exports_active_users_scores_them_and_registers_the_run(dev: Template) -> None:
    (machine,) = dev.find_resources("AWS::StepFunctions::StateMachine").values()
    definition = _text(machine["Properties"]["DefinitionString"])
    for state in ("GetDeployedModel", "ExportActiveUsers", "ScoreActiveUsers", "RegisterPartition", "NothingToScore"):
        assert state in definition
    assert "sagemaker:createTransformJob.sync" in definition and "athena:startQueryExecution.sync" in definition
    assert "is_active" in definition and "UNLOAD" in definition
    assert "curated/predictions/run_date=" in definition
    dev.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": load_config("dev").serving.batch_schedule_expression}
    )
    (table,) = [
        r["Properties"]["TableInput"]
        for r in dev.find_resources("AWS::Glue::Table").values()
        if r["Properties"]["TableInput"]["Name"] == "churn_predictions"
    ]
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [(n, t) for n, t, _ in BATCH_PREDICTION_COLUMNS]
    assert [p["Name"] for p in table["PartitionKeys"]] == ["run_date", "scored_at"]
    assert "curated/predictions/" in _text(table["StorageDescriptor"]["Location"])


# -- feedback loop ----------------------------------------------------------------------------------


def test_the_feedback_job_runs_daily_with_the_quality_floor_and_its_libraries(dev: Template) -> None:
    (job,) = dev.find_resources("AWS::Glue::Job").values()
    arguments = job["Properties"]["DefaultArguments"]
    assert arguments["--endpoint_name"] == "mlp-dev-inference"
    assert arguments["--pipeline_name"] == "mlp-dev-training"
    # A retraining passes the approved model's PR-AUC as BaselinePrAuc: the job reads the registry
    assert arguments["--model_package_group"] == "mlp-dev-churn"
    statements = _statements(dev, job["Properties"]["Role"]["Fn::GetAtt"][0])
    assert {"sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"} <= _actions(statements)
    (describe,) = [s for s in statements if s["Action"] == "sagemaker:DescribeModelPackage"]
    assert describe["Resource"] == "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlp-dev-churn/*"
    assert arguments["--pr_auc_min"] == str(load_config("dev").observability.model_pr_auc_min)
    assert "serving/data-capture/mlp-dev-inference/" in _text(arguments["--capture_path"])
    assert _text(arguments["--extra-py-files"]).count(".zip") == 2  # glue_jobs+platform_core, evaluation
    dev.has_resource_properties(
        "AWS::Glue::Trigger",
        {"Type": "SCHEDULED", "Schedule": load_config("dev").serving.feedback_schedule_expression},
    )
    (table,) = [
        r["Properties"]["TableInput"]
        for r in dev.find_resources("AWS::Glue::Table").values()
        if r["Properties"]["TableInput"]["Name"] == "production_labelled"
    ]
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [
        (c["name"], c["type"]) for c in glue_columns(PRODUCTION_LABELLED)
    ]


# -- Model Monitor ---------------------------------------------------------------------------------


def _cfn_text(value: Any) -> str:
    """A Fn::Join of text and references as plain text: ``<AWS::AccountId>``, ``<Id.Arn>``, ``<Fn::FindInMap>``."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(_cfn_text(part) for part in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return f"<{next(iter(value))}>"


def _setup_machine(t: Template) -> tuple[str, dict[str, Any]]:
    found = t.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": "mlp-prod-inference-data-quality-setup"}},
    )
    assert len(found) == 1
    ((logical_id, resource),) = found.items()
    definition: dict[str, Any] = json.loads(_cfn_text(resource["Properties"]["DefinitionString"]))
    return logical_id, definition


def test_no_monitoring_resource_needs_the_endpoint_to_exist_at_deployment(dev: Template, prod: Template) -> None:
    # Then neither environment asks CloudFormation for a schedule or job definition (SageMaker refuses
    # both for an endpoint that does not exist yet, which is every fresh account's case)
    for template in (dev, prod):
        template.resource_count_is("AWS::SageMaker::MonitoringSchedule", 0)
        template.resource_count_is("AWS::SageMaker::DataQualityJobDefinition", 0)
    # And dev (serverless, nothing captured) has no set-up workflow at all
    assert not dev.find_resources(
        "AWS::StepFunctions::StateMachine", {"Properties": {"StateMachineName": Match.string_like_regexp("quality")}}
    )


def test_the_set_up_workflow_creates_the_schedule_once_the_endpoint_serves_else_updates_it(prod: Template) -> None:
    _, definition = _setup_machine(prod)
    states = definition["States"]
    # Then it first asks whether the endpoint is in service (a list: no error to interpret)
    find = states[definition["StartAt"]]
    assert find["Resource"].endswith(":states:::aws-sdk:sagemaker:listEndpoints")
    assert find["Parameters"] == {"NameContains": "mlp-prod-inference", "StatusEquals": "InService"}
    choice = states[find["Next"]]
    (in_service,) = choice["Choices"]
    assert in_service == {"Variable": "$.inService.Endpoints[0]", "IsPresent": True, "Next": "CreateSchedule"}
    assert states[choice["Default"]]["Type"] == "Succeed"
    # And creates the schedule, or updates it with the very same request when it exists
    create, update = states["CreateSchedule"], states["UpdateSchedule"]
    assert create["Resource"].endswith(":states:::aws-sdk:sagemaker:createMonitoringSchedule")
    assert update["Resource"].endswith(":states:::aws-sdk:sagemaker:updateMonitoringSchedule")
    assert create["Catch"] == [
        {"ErrorEquals": ["SageMaker.ResourceInUseException"], "ResultPath": None, "Next": "UpdateSchedule"}
    ]
    assert create["Parameters"] == update["Parameters"]
    assert create["Parameters"]["MonitoringScheduleName"] == "mlp-prod-inference-data-quality"


def test_the_schedule_compares_the_endpoints_captures_hourly_with_the_pipelines_baseline(prod: Template) -> None:
    _, definition = _setup_machine(prod)
    config = definition["States"]["CreateSchedule"]["Parameters"]["MonitoringScheduleConfig"]
    serving = load_config("prod").serving
    assert config["ScheduleConfig"] == {"ScheduleExpression": serving.monitor_schedule_expression}
    job = config["MonitoringJobDefinition"]
    artifacts = "s3://mlp-prod-artifacts-<AWS::AccountId>-<AWS::Region>"
    # Then the baseline is the fixed pair of files the training pipeline writes
    assert job["BaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": f"{artifacts}/serving/monitoring/baseline/constraints.json"},
        "StatisticsResource": {"S3Uri": f"{artifacts}/serving/monitoring/baseline/statistics.json"},
    }
    # And the input is the endpoint's captured data, the analyzer AWS's image of the region
    (endpoint_input,) = job["MonitoringInputs"]
    assert endpoint_input["EndpointInput"]["EndpointName"] == "mlp-prod-inference"
    assert job["MonitoringAppSpecification"]["ImageUri"] == (
        "<Fn::FindInMap>.dkr.ecr.eu-west-1.<AWS::URLSuffix>/sagemaker-model-monitor-analyzer"
    )
    assert job["Environment"]["publish_cloudwatch_metrics"] == "Enabled"
    # And reports go to the monitoring prefix, encrypted like the volumes with the lake key
    (output,) = job["MonitoringOutputConfig"]["MonitoringOutputs"]
    assert output["S3Output"]["S3Uri"] == f"{artifacts}/serving/monitoring/reports"
    key = job["MonitoringOutputConfig"]["KmsKeyId"]
    assert key.startswith("<SsmParameterValuemlpprodlakekeyarn")
    cluster = job["MonitoringResources"]["ClusterConfig"]
    assert cluster == {
        "InstanceCount": 1,
        "InstanceType": serving.monitor_instance_type,
        "VolumeSizeInGB": serving.monitor_volume_gb,
        "VolumeKmsKeyId": key,
    }
    assert job["NetworkConfig"] == {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": True}
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_the_schedules_baseline_is_exactly_what_the_training_pipeline_writes(prod: Template) -> None:
    from tests.training_stack.conftest import deployed_definition, steps, training_template

    # Given the prod training pipeline, as CloudFormation will deploy it
    baseline_step = steps(deployed_definition(training_template("prod")))["DataQualityBaseline"]
    (output,) = baseline_step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    written = output["S3Output"]["S3Uri"]
    # When the serving stack's schedule reads its baseline
    _, definition = _setup_machine(prod)
    baseline = definition["States"]["CreateSchedule"]["Parameters"]["MonitoringScheduleConfig"][
        "MonitoringJobDefinition"
    ]["BaselineConfig"]
    # Then it reads the two files the analyzer writes into the step's output, in the same bucket
    assert baseline["StatisticsResource"]["S3Uri"] == f"{written}/statistics.json"
    assert baseline["ConstraintsResource"]["S3Uri"] == f"{written}/constraints.json"


def test_the_workflow_starts_when_the_endpoint_enters_service_and_daily(prod: Template) -> None:
    machine_id, _ = _setup_machine(prod)
    target = Match.object_like({"Arn": {"Ref": machine_id}, "DeadLetterConfig": Match.any_value()})
    prod.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Endpoint State Change"],
                "detail": {"EndpointName": ["mlp-prod-inference"], "EndpointStatus": ["IN_SERVICE"]},
            },
            "Targets": [target],
        },
    )
    hours = load_config("prod").serving.monitor_setup_rate_hours
    every = events.Schedule.rate(Duration.hours(hours)).expression_string  # CDK writes 24 hours as 1 day
    prod.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": every, "Targets": [target]})


def test_the_workflow_may_touch_only_the_schedule_and_pass_only_the_monitoring_role(prod: Template) -> None:
    machine_id, _ = _setup_machine(prod)
    role_id = prod.find_resources("AWS::StepFunctions::StateMachine")[machine_id]["Properties"]["RoleArn"][
        "Fn::GetAtt"
    ][0]
    statements = _statements(prod, role_id)
    schedule = "arn:aws:sagemaker:eu-west-1:123456789012:monitoring-schedule/mlp-prod-inference-data-quality"
    calls = {
        action: _cfn_text(s["Resource"])
        for s in statements
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if action.startswith("sagemaker:")
    }
    assert calls == {
        "sagemaker:ListEndpoints": "*",
        "sagemaker:CreateMonitoringSchedule": schedule,
        "sagemaker:UpdateMonitoringSchedule": schedule,
    }
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    monitoring_role = _cfn_text(pass_role["Resource"])
    assert monitoring_role.startswith("<EndpointDataQualityMonitorMonitoringRole") and monitoring_role.endswith(".Arn>")


def test_the_monitoring_jobs_read_the_captures_and_exactly_the_two_baseline_files(prod: Template) -> None:
    roles = prod.find_resources(
        "AWS::IAM::Role", {"Properties": {"Description": Match.string_like_regexp("Model Monitor")}}
    )
    (role_id,) = roles
    reads = {
        _cfn_text(resource)
        for s in _statements(prod, role_id)
        if "s3:GetObject" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    }
    artifacts = "arn:aws:s3:::mlp-prod-artifacts-<AWS::AccountId>-<AWS::Region>"
    raw = "arn:aws:s3:::mlp-prod-raw-<AWS::AccountId>-<AWS::Region>"
    assert reads == {
        f"{raw}/serving/data-capture/mlp-prod-inference/*",
        f"{artifacts}/serving/monitoring/baseline/statistics.json",
        f"{artifacts}/serving/monitoring/baseline/constraints.json",
    }


def test_model_monitor_refuses_a_serverless_endpoint() -> None:
    # Given dev (serverless) with Model Monitor forced on
    with pytest.raises(ValueError, match="data capture"):
        dataclasses.replace(load_config("dev").serving, model_monitor_enabled=True)


def test_prod_refuses_a_single_instance_endpoint() -> None:
    def factory(app: Any, config: Any, env: Any) -> Stack:
        single = dataclasses.replace(config, serving=dataclasses.replace(config.serving, min_instances=1))
        return ServingStack(app, "Serving", config=single, env=env)

    with pytest.raises(Exception, match="at least two instances"):
        build_stack(factory, "prod")


# -- scanners ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_no_cdk_nag_finding_remains(env_name: str) -> None:
    assert nag_findings(serving_stack(env_name)) == []


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_cfn_lint_reports_nothing_with_informational_checks(env_name: str) -> None:
    assert cfn_lint_findings(serving_stack(env_name)) == []


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_stack_carries_the_environments_termination_protection(env_name: str) -> None:
    assert serving_stack(env_name).termination_protection is (env_name == "prod")
