"""The serving stack's template: deployer triggers and permissions, rollback alarms, the API, batch
scoring, the feedback job and Model Monitor; and every scanner the platform runs, in dev and prod.

Each template is synthesised once per module (a synth costs 10-30 s of CPU). Prod is built with
Model Monitor enabled, a superset of prod's default resources, so its scan covers both.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

import pytest
from aws_cdk import Stack
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
        if env_name == "prod":
            config = dataclasses.replace(
                config, serving=dataclasses.replace(config.serving, model_monitor_enabled=True)
            )
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


def test_model_monitor_schedules_data_quality_on_the_endpoint_only_when_enabled(dev: Template, prod: Template) -> None:
    dev.resource_count_is("AWS::SageMaker::MonitoringSchedule", 0)
    prod.has_resource_properties(
        "AWS::SageMaker::MonitoringSchedule",
        {
            "EndpointName": "mlp-prod-inference",
            "MonitoringScheduleConfig": Match.object_like({"MonitoringType": "DataQuality"}),
        },
    )
    prod.has_resource_properties(
        "AWS::SageMaker::DataQualityJobDefinition",
        {
            "DataQualityJobInput": {"EndpointInput": Match.object_like({"EndpointName": "mlp-prod-inference"})},
            "NetworkConfig": {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": True},
        },
    )


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
