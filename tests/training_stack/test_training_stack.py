"""The training stack: the pipeline resource, its role's exact permissions, the retained model
package group, no schedule of its own, and the scanners."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from platform_core.config import load_config
from stacks.training_stack import TrainingStack
from tests.infra.harness import ACCOUNT, REGION, cfn_lint_findings, nag_findings
from tests.training_stack.conftest import (
    ENVIRONMENTS,
    deployed_definition,
    flatten,
    grants,
    one,
    steps,
    training_stack,
    training_template,
)

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]


@pytest.fixture(scope="module")
def dev() -> Template:
    return training_template("dev")


@pytest.fixture(scope="module")
def deployed(dev) -> dict[str, Any]:
    return deployed_definition(dev)


def _role_id(template: Template) -> str:
    role_id, _ = one(template, "AWS::IAM::Role")
    return role_id


def _policy_id(template: Template) -> str:
    policy_id, _ = one(template, "AWS::IAM::Policy")
    return policy_id


def _asset_object(template: Template) -> str:
    """The code bundle's s3://bucket/key, as the definition names it."""
    code = deployed_definition(template)["Steps"][0]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert isinstance(code, str)
    return code


def test_pipeline_has_its_name_role_and_a_definition_body(dev):
    dev.has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {
            "PipelineName": "mlp-dev-training",
            "RoleArn": {"Fn::GetAtt": [_role_id(dev), "Arn"]},
            "PipelineDefinition": {"PipelineDefinitionBody": Match.any_value()},
        },
    )
    # And it is created after its role's policy: a run may start as soon as it exists
    _, pipeline = one(dev, "AWS::SageMaker::Pipeline")
    assert _policy_id(dev) in pipeline["DependsOn"]


def test_deployed_definition_names_the_real_role_buckets_key_and_code(dev, deployed):
    by_name = steps(deployed)
    text = json.dumps(deployed)
    # Then no placeholder is left, and the references point at this stack's role and the lake
    assert "placeholder" not in text
    role = f"<{_role_id(dev)}.Arn>"
    assert {step["Arguments"]["RoleArn"] for step in by_name.values() if "RoleArn" in step["Arguments"]} == {role}
    (key_parameter,) = [
        k for k, p in dev.to_json()["Parameters"].items() if p.get("Default") == "/mlp-dev/lake/key-arn"
    ]
    assert by_name["Train"]["Arguments"]["OutputDataConfig"]["KmsKeyId"] == f"<{key_parameter}>"
    parameters = {p["Name"]: p["DefaultValue"] for p in deployed["Parameters"]}
    assert parameters["TrainingDataUri"] == "s3://mlp-dev-curated-<AWS::AccountId>-<AWS::Region>/curated/training_set/"
    output = by_name["Evaluate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert output["Std:Join"]["Values"][1] == "mlp-dev-artifacts-<AWS::AccountId>-<AWS::Region>"
    # And the code is the bundle asset in the bootstrap bucket, the same object for every step
    code = _asset_object(dev)
    assert code.startswith(f"s3://cdk-hnb659fds-assets-{ACCOUNT}-{REGION}/")
    assert json.loads(by_name["Train"]["Arguments"]["HyperParameters"]["sagemaker_submit_directory"]) == code
    assert by_name["RegisterModel"]["Arguments"]["ModelPackageGroupName"] == "mlp-dev-churn"


def test_prod_trains_on_its_configured_instance_count_by_default():
    # Given prod's configuration (several training instances), Then that is the parameter's default
    parameters = {p["Name"]: p["DefaultValue"] for p in deployed_definition(training_template("prod"))["Parameters"]}
    assert parameters["TrainingInstanceCount"] == load_config("prod").training.training_instance_count == 2


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_model_package_group_is_retained(env_name):
    template = training_template(env_name)
    template.has_resource(
        "AWS::SageMaker::ModelPackageGroup",
        {
            "Properties": {"ModelPackageGroupName": f"mlp-{env_name}-churn"},
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_nothing_schedules_the_pipeline_the_feature_orchestration_starts_it(dev):
    # Then there is no rule or schedule here (the feature stack starts the pipeline by its name)
    for resource_type in ("AWS::Events::Rule", "AWS::Scheduler::Schedule"):
        dev.resource_count_is(resource_type, 0)


def test_role_is_assumed_by_sagemaker_only(dev):
    dev.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
                ]
            }
        },
    )


def test_role_is_granted_exactly_its_data_code_image_logs_and_sagemaker_resources(dev):
    allowed = grants(dev)
    (key,) = [k for k, p in dev.to_json()["Parameters"].items() if p.get("Default") == "/mlp-dev/lake/key-arn"]
    key, role = f"<{key}>", f"<{_role_id(dev)}.Arn>"
    curated = "arn:aws:s3:::mlp-dev-curated-<AWS::AccountId>-<AWS::Region>"
    artifacts = "arn:aws:s3:::mlp-dev-artifacts-<AWS::AccountId>-<AWS::Region>"
    code = "arn:aws:s3:::" + _asset_object(dev).removeprefix("s3://")
    sagemaker = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker"
    jobs = {
        "processing": f"{sagemaker}:processing-job/pipelines-*",
        "training": f"{sagemaker}:training-job/pipelines-*",
    }
    group, packages = f"{sagemaker}:model-package-group/mlp-dev-churn", f"{sagemaker}:model-package/mlp-dev-churn/*"
    experiment = f"{sagemaker}:experiment/mlp-dev-training"
    trials, components = f"{sagemaker}:experiment-trial/*", f"{sagemaker}:experiment-trial-component/*"
    expected = [
        (("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"), {curated, artifacts}),
        (("s3:GetObject",), {f"{curated}/curated/training_set/*", f"{artifacts}/training/*", code}),
        (("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"), {f"{artifacts}/training/*"}),
        (("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"), {key}),
        (
            ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
            {f"arn:aws:ecr:{REGION}:141502667606:repository/sagemaker-xgboost"},
        ),
        (("ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"), {"*"}),
        (
            ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
            {f"{logs}/ProcessingJobs:*", f"{logs}/TrainingJobs:*"},
        ),
        (
            ("sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"),
            {jobs["processing"]},
        ),
        (
            ("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"),
            {jobs["training"]},
        ),
        (
            ("sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"),
            {group, packages},
        ),
        (("sagemaker:CreateExperiment", "sagemaker:DescribeExperiment"), {experiment}),
        (("sagemaker:CreateTrial", "sagemaker:DescribeTrial"), {trials}),
        (("sagemaker:AssociateTrialComponent", "sagemaker:DescribeTrialComponent"), {components, trials}),
        (("sagemaker:AddTags",), {*jobs.values(), group, packages, experiment, trials, components}),
        (("iam:PassRole",), {role}),
    ]
    # Then every action is allowed on exactly these resources, and nothing else is allowed
    assert allowed == {action: resources for actions, resources in expected for action in actions}


def test_conditions_bound_the_broad_grants(dev):
    statements = [flatten(s) for s in one(dev, "AWS::IAM::Policy")[1]["Properties"]["PolicyDocument"]["Statement"]]
    conditions = {json.dumps(s["Action"]): s.get("Condition") for s in statements}
    # Then the role passes itself only to SageMaker, grants on the key only for AWS resources
    # (the instances' volumes), and puts metrics only into SageMaker's namespaces
    assert conditions['"iam:PassRole"'] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert conditions['"kms:CreateGrant"'] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert conditions['"cloudwatch:PutMetricData"'] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}


def test_prod_writes_the_monitoring_baseline_to_exactly_the_two_objects_the_schedule_reads():
    # Given prod (Model Monitor on)
    prod = training_template("prod")
    by_name = steps(deployed_definition(prod))
    artifacts = "mlp-prod-artifacts-<AWS::AccountId>-<AWS::Region>"
    # Then the quality check writes to the real artifacts bucket's baseline prefix
    output = by_name["DataQualityBaseline"]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    assert output["S3Uri"] == f"s3://{artifacts}/serving/monitoring/baseline"
    # And the role may write exactly those two files, and pull the analyzer image of the region
    allowed = grants(prod)
    baseline = f"arn:aws:s3:::{artifacts}/serving/monitoring/baseline"
    assert allowed["s3:PutObject"] == {
        f"arn:aws:s3:::{artifacts}/training/*",
        f"{baseline}/statistics.json",
        f"{baseline}/constraints.json",
    }
    assert allowed["ecr:BatchGetImage"] == {
        f"arn:aws:ecr:{REGION}:141502667606:repository/sagemaker-xgboost",
        f"arn:aws:ecr:{REGION}:468650794304:repository/sagemaker-model-monitor-analyzer",
    }


def test_dev_without_model_monitor_has_no_baseline_step(deployed):
    assert "DataQualityBaseline" not in steps(deployed) and "MonitoringBaselineDataset" not in steps(deployed)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_no_cdk_nag_finding_remains(env_name):
    assert nag_findings(training_stack(env_name)) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_cfn_lint_reports_nothing_with_informational_checks(env_name):
    assert cfn_lint_findings(training_stack(env_name)) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_stack_carries_the_environments_termination_protection(env_name):
    assert training_stack(env_name).termination_protection is (env_name == "prod")


def test_a_stack_without_a_concrete_region_is_refused():
    # Given an environment-agnostic stack (its region is a token): image URIs are per region
    with pytest.raises(ValueError, match="concrete region"):
        TrainingStack(App(), "Agnostic", config=load_config("dev"))
