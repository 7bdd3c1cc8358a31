"""The daily orchestration: the state machine's order, retries, failure path and schedule."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import boto3
import pytest
from moto import mock_aws

from platform_core.config import load_config
from platform_core.names import Names
from platform_core.schemas.training import BASELINE_PR_AUC_PARAMETER
from tests.feature_stack.conftest import (
    ENVIRONMENTS,
    feature_template,
    flatten,
    grants,
    lake_key_ref,
    one,
    state_machine_definition,
)

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]

GLUE_SYNC = "arn:<AWS::Partition>:states:::glue:startJobRun.sync"
TOP_LEVEL_STEPS = ("SubscriptionHistory", "ComputeFeatures", "TrainingSet", "ResolveBaseline", "StartTrainingPipeline")


@pytest.fixture(scope="module")
def definition(dev) -> dict[str, Any]:
    return state_machine_definition(dev)


def _path(definition: dict[str, Any], start: str) -> list[str]:
    """The states visited from ``start`` by following ``Next`` (the success path)."""
    states, path, name = definition["States"], [], start
    while name is not None:
        path.append(name)
        name = states[name].get("Next")
    return path


def test_jobs_run_in_dependency_order_then_training_starts(definition):
    # Given the state machine of dev
    states = definition["States"]
    # Then after as_of is resolved, history comes first, the two feature jobs run in parallel,
    # the training set follows them, the approved model's PR-AUC is read, and the training
    # pipeline is started last
    assert definition["StartAt"] == "ResolveAsOf"
    assert states["UseGivenAsOf"]["Next"] == states["UseStartTime"]["Next"] == "SubscriptionHistory"
    assert _path(definition, "SubscriptionHistory") == [*TOP_LEVEL_STEPS, "Done"]
    assert states["Done"]["Type"] == "Succeed"
    parallel = states["ComputeFeatures"]
    assert parallel["Type"] == "Parallel"
    assert sorted(branch["StartAt"] for branch in parallel["Branches"]) == [
        "ClickstreamFeatures",
        "SubscriptionFeatures",
    ]
    for branch in parallel["Branches"]:
        assert len(branch["States"]) == 1
        assert branch["States"][branch["StartAt"]]["End"] is True


def _task(definition: dict[str, Any], name: str) -> dict[str, Any]:
    if name in definition["States"]:
        return definition["States"][name]
    for branch in definition["States"]["ComputeFeatures"]["Branches"]:
        if name in branch["States"]:
            return branch["States"][name]
    raise KeyError(name)


@pytest.mark.parametrize(
    ("state", "job", "gets_as_of"),
    [
        ("SubscriptionHistory", "mlp-dev-subscription-history", False),
        ("ClickstreamFeatures", "mlp-dev-clickstream-features", True),
        ("SubscriptionFeatures", "mlp-dev-subscription-features", True),
        ("TrainingSet", "mlp-dev-training-set", False),
    ],
)
def test_each_glue_step_waits_for_its_job_and_passes_as_of_to_the_feature_jobs(definition, state, job, gets_as_of):
    task = _task(definition, state)
    assert task["Type"] == "Task"
    assert task["Resource"] == GLUE_SYNC
    assert task["Parameters"]["JobName"] == job
    # The instant comes from the state input (never a clock inside the job)
    expected_arguments = {"--as_of.$": "$.as_of"} if gets_as_of else None
    assert task["Parameters"].get("Arguments") == expected_arguments
    # The job run's result is dropped, so as_of reaches the next step unchanged
    assert task["ResultPath"] is None


def test_the_history_job_is_the_cdc_stacks_by_name(definition):
    assert _task(definition, "SubscriptionHistory")["Parameters"]["JobName"] == Names(load_config("dev")).glue_job(
        "subscription_history"
    )


@pytest.mark.parametrize(
    "state",
    ["SubscriptionHistory", "ClickstreamFeatures", "SubscriptionFeatures", "TrainingSet", "StartTrainingPipeline"],
)
def test_every_task_retries_with_backoff_from_config(definition, state):
    settings = load_config("dev").features
    assert _task(definition, state)["Retry"] == [
        {
            "ErrorEquals": ["States.TaskFailed", "States.Timeout"],
            "IntervalSeconds": settings.retry_interval_seconds,
            "MaxAttempts": settings.retry_max_attempts,
            "BackoffRate": settings.retry_backoff_rate,
        }
    ]


@pytest.mark.parametrize("state", TOP_LEVEL_STEPS)
def test_every_step_catches_into_the_failure_notification(definition, state):
    assert definition["States"][state]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "NotifyFailure"}
    ]


def test_failure_is_published_to_the_encrypted_topic_then_fails_the_execution(dev, definition):
    states = definition["States"]
    notify = states["NotifyFailure"]
    topic_id, topic = one(dev, "AWS::SNS::Topic")
    assert notify["Resource"] == "arn:<AWS::Partition>:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == f"<{topic_id}>"
    message = notify["Parameters"]["Message"]
    assert message["as_of.$"] == "$.as_of"
    assert message["error.$"] == "$.failure.Error"
    assert message["execution.$"] == "$$.Execution.Id"
    assert notify["Next"] == "Failed"
    assert states["Failed"] == {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"}
    assert flatten(topic["Properties"]["KmsMasterKeyId"]) == lake_key_ref(dev)
    assert topic["Properties"]["TopicName"] == "mlp-dev-orchestration-failures"


def test_as_of_comes_from_the_input_or_the_execution_start_never_a_job_clock(definition):
    states = definition["States"]
    choice = states["ResolveAsOf"]
    assert choice["Type"] == "Choice"
    valid, present = choice["Choices"]
    assert valid["And"] == [
        {"Variable": "$.as_of", "IsPresent": True},
        {"Variable": "$.as_of", "IsTimestamp": True},
    ]
    assert valid["Next"] == "UseGivenAsOf"
    # A given but malformed as_of fails at once instead of paying for a Spark run that cannot parse it
    assert present == {"Variable": "$.as_of", "IsPresent": True, "Next": "InvalidAsOf"}
    assert states["InvalidAsOf"]["Type"] == "Fail"
    assert choice["Default"] == "UseStartTime"
    assert states["UseGivenAsOf"]["Parameters"] == {"as_of.$": "$.as_of"}
    assert states["UseStartTime"]["Parameters"] == {"as_of.$": "$$.Execution.StartTime"}


def test_training_pipeline_is_started_once_per_execution_through_the_sdk_integration(definition):
    task = definition["States"]["StartTrainingPipeline"]
    assert task["Resource"] == "arn:<AWS::Partition>:states:::aws-sdk:sagemaker:startPipelineExecution"
    parameters = task["Parameters"]
    assert parameters["PipelineName"] == Names(load_config("dev")).training_pipeline
    assert parameters["ClientRequestToken.$"] == "States.Hash($$.Execution.Id, 'SHA-256')"
    assert parameters["PipelineExecutionDescription.$"] == "States.Format('Training on features as of {}', $.as_of)"
    assert task["ResultSelector"] == {"pipeline_execution_arn.$": "$.PipelineExecutionArn"}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_state_machine_is_encrypted_traced_and_logged(env_name):
    template = feature_template(env_name)
    config = load_config(env_name)
    _, machine = one(template, "AWS::StepFunctions::StateMachine")
    properties = flatten(machine["Properties"])
    assert properties["StateMachineName"] == Names(config).orchestration_state_machine
    assert properties["TracingConfiguration"] == {"Enabled": True}
    key_id, key = one(template, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert properties["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert properties["EncryptionConfiguration"]["KmsKeyId"] == f"<{key_id}.Arn>"
    logging = properties["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    (destination,) = logging["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"][1:-1].split(".")[0]
    _, log_group = one(
        template, "AWS::Logs::LogGroup", {"LogGroupName": f"/aws/vendedlogs/states/mlp-{env_name}-orchestration"}
    )
    assert "KmsKeyId" in log_group["Properties"]
    assert log_group_id in template.to_json()["Resources"]
    assert state_machine_definition(template)["TimeoutSeconds"] == config.features.orchestration_timeout_minutes * 60


def test_state_machine_role_may_run_exactly_the_four_jobs_and_the_pipeline(dev):
    _, machine = one(dev, "AWS::StepFunctions::StateMachine")
    allowed = grants(dev, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    jobs = {r for a, r in allowed if a == "glue:StartJobRun"}
    assert jobs == {
        f"arn:aws:glue:eu-west-1:123456789012:job/mlp-dev-{name}"
        for name in ("subscription-history", "clickstream-features", "subscription-features", "training-set")
    }
    assert {r for a, r in allowed if a.startswith("sagemaker:")} == {
        "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlp-dev-training"
    }
    assert {a for a, _ in allowed if a.startswith("sagemaker:")} == {"sagemaker:StartPipelineExecution"}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_schedule_starts_the_state_machine_with_the_scheduled_time_as_as_of(env_name):
    template = feature_template(env_name)
    settings = load_config(env_name).features
    _, rule = one(template, "AWS::Events::Rule")
    properties = flatten(rule["Properties"])
    assert properties["ScheduleExpression"] == settings.schedule_expression
    assert properties["State"] == "ENABLED"
    (target,) = properties["Targets"]
    machine_id, _ = one(template, "AWS::StepFunctions::StateMachine")
    assert target["Arn"] == f"<{machine_id}>"
    assert target["InputTransformer"]["InputPathsMap"] == {"time": "$.time"}
    assert target["InputTransformer"]["InputTemplate"] == '{"as_of":<time>}'
    assert "DeadLetterConfig" in target
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 10


# -- BaselinePrAuc: the approved model's PR-AUC reaches the training pipeline ----------------------


def test_the_approved_models_pr_auc_is_read_before_training_and_passed_as_baseline_pr_auc(dev, definition):
    states = definition["States"]
    resolve = states["ResolveBaseline"]
    # Then right before the start, the baseline_metrics function is invoked (synchronously)
    function_id, _ = one(dev, "AWS::Lambda::Function", {"Handler": "lambdas.baseline_metrics.handler.handler"})
    assert states["TrainingSet"]["Next"] == "ResolveBaseline"
    assert resolve["Next"] == "StartTrainingPipeline"
    assert resolve["Resource"] == "arn:<AWS::Partition>:states:::lambda:invoke"
    assert resolve["Parameters"] == {
        "FunctionName": f"<{function_id}.Arn>",
        "Payload": {"execution.$": "$$.Execution.Id"},
    }
    # And its answer is kept beside as_of
    assert resolve["ResultSelector"]["baseline_pr_auc.$"] == "$.Payload.baseline_pr_auc"
    assert resolve["ResultPath"] == "$.baseline"
    # And the start passes it as the pipeline's BaselinePrAuc parameter
    parameters = states["StartTrainingPipeline"]["Parameters"]
    assert parameters["PipelineParameters"] == [
        {"Name": BASELINE_PR_AUC_PARAMETER, "Value.$": "$.baseline.baseline_pr_auc"}
    ]


def test_resolving_the_baseline_retries_lambdas_faults_but_not_the_functions_own_errors(definition):
    settings = load_config("dev").features
    retries = {tuple(r["ErrorEquals"]): r for r in definition["States"]["ResolveBaseline"]["Retry"]}
    # Lambda's own transient faults and throttling are retried ...
    assert (
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ) in retries
    assert retries[("Lambda.TooManyRequestsException",)]["MaxAttempts"] == settings.retry_max_attempts
    # ... but a metric that cannot be read fails at once (to NotifyFailure, with the reason)
    assert not [errors for errors in retries if "States.TaskFailed" in errors or "States.ALL" in errors]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_baseline_function_may_read_only_the_groups_packages_and_the_evaluations(env_name):
    template = feature_template(env_name)
    names = Names(load_config(env_name))
    _, function = one(template, "AWS::Lambda::Function", {"Handler": "lambdas.baseline_metrics.handler.handler"})
    properties = function["Properties"]
    assert properties["Environment"]["Variables"]["MODEL_PACKAGE_GROUP"] == names.model_package_group
    allowed = grants(template, properties["Role"]["Fn::GetAtt"][0])
    account = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{names.model_package_group}/*"
    assert {(a, r) for a, r in allowed if a.startswith("sagemaker:")} == {
        ("sagemaker:ListModelPackages", "*"),  # no resource-level permissions exist for it
        ("sagemaker:DescribeModelPackage", account),
    }
    assert {(a, r) for a, r in allowed if a.startswith("s3:")} == {
        ("s3:GetObject", f"arn:aws:s3:::mlp-{env_name}-artifacts-<AWS::AccountId>-<AWS::Region>/training/evaluation/*")
    }
    assert {(a, r) for a, r in allowed if a.startswith("kms:")} == {
        ("kms:Decrypt", lake_key_ref(template, env_name)),
        ("kms:DescribeKey", lake_key_ref(template, env_name)),
    }


def _path_value(document: Any, path: str) -> Any:
    """``$.a.b`` in a state's data (the subset of JSONPath the definition uses)."""
    value = document
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


def _render(parameters: Any, data: Any, context: dict[str, Any]) -> Any:
    """A state's Parameters or ResultSelector applied to its data, as Step Functions does for the
    forms this definition uses: paths, ``$$.Execution.Id``, ``States.Hash`` and ``States.Format``."""
    if isinstance(parameters, list):
        return [_render(item, data, context) for item in parameters]
    if not isinstance(parameters, dict):
        return parameters
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if not key.endswith(".$"):
            out[key] = _render(value, data, context)
        elif value == "$$.Execution.Id":
            out[key[:-2]] = context["Execution"]["Id"]
        elif value == "States.Hash($$.Execution.Id, 'SHA-256')":
            out[key[:-2]] = hashlib.sha256(context["Execution"]["Id"].encode()).hexdigest()
        elif (format_call := re.fullmatch(r"States\.Format\('(.*)', (\$\.[\w.]+)\)", value)) is not None:
            out[key[:-2]] = format_call.group(1).replace("{}", str(_path_value(data, format_call.group(2))))
        else:
            out[key[:-2]] = _path_value(data, value)
    return out


def test_the_functions_answer_through_the_state_machine_starts_a_run_gated_by_the_approved_model(
    definition, monkeypatch
):
    # Given the registry with an approved model (its evaluation.json in S3) and the training pipeline
    from lambdas.baseline_metrics import clients, handler
    from lambdas.baseline_metrics.settings import get_settings
    from tests.baseline_metrics.registry import Registry, evaluation_report, pr_auc_of

    states = definition["States"]
    context = {"Execution": {"Id": "arn:aws:states:us-east-1:123456789012:execution:mlp-dev-orchestration:run-1"}}
    monkeypatch.setenv("MODEL_PACKAGE_GROUP", Names(load_config("dev")).model_package_group)
    for cached in (get_settings, clients.sagemaker, clients.s3):
        cached.cache_clear()
    with mock_aws():
        registry = Registry(sagemaker=boto3.client("sagemaker"), s3=boto3.client("s3")).create()
        registry.register(execution="e1", report=evaluation_report(11))
        registry.sagemaker.create_pipeline(
            PipelineName=Names(load_config("dev")).training_pipeline,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn="arn:aws:iam::123456789012:role/mlp-dev-training",
        )
        # When ResolveBaseline invokes the function with its payload and keeps the selected answer
        data: dict[str, Any] = {"as_of": "2026-03-10T01:00:00Z"}
        resolve = states["ResolveBaseline"]
        answer = handler.handler(_render(resolve["Parameters"]["Payload"], data, context), None)
        data["baseline"] = _render(resolve["ResultSelector"], {"Payload": answer}, context)
        # And StartTrainingPipeline calls SageMaker with its parameters rendered from that data
        start = _render(states["StartTrainingPipeline"]["Parameters"], data, context)
        arn = registry.sagemaker.start_pipeline_execution(**start)["PipelineExecutionArn"]
        started = registry.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    for cached in (get_settings, clients.sagemaker, clients.s3):
        cached.cache_clear()
    # Then the run's BaselinePrAuc is the approved model's test PR-AUC, exactly
    assert started["PipelineParameters"] == [{"Name": "BaselinePrAuc", "Value": repr(pr_auc_of(evaluation_report(11)))}]
