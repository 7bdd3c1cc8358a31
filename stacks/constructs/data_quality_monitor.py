"""SageMaker Model Monitor on the endpoint: hourly data quality of the captured requests against
the training pipeline's baseline.

    training pipeline (DataQualityBaseline) ─> s3://<artifacts>/serving/monitoring/baseline/{statistics,constraints}.json
    endpoint <prefix>-inference: state change to IN_SERVICE ─┐
    schedule rate(monitor_setup_rate_hours) ─────────────────┴─> EventBridge ─> Step Functions <prefix>-inference-data-quality-setup
        ListEndpoints (ours, InService?) ─ no ─> done (the next IN_SERVICE event comes back)
                                         └ yes ─> CreateMonitoringSchedule ─ exists ─> UpdateMonitoringSchedule
    schedule <prefix>-inference-data-quality (hourly) ─> analyzer job: captures of the hour vs the baseline
        ─> reports under serving/monitoring/reports/, per-feature metrics (aws/sagemaker/Endpoints/data-metrics)

Why the schedule is not a CloudFormation resource: SageMaker refuses a monitoring schedule for an
endpoint that does not exist, and the endpoint exists only once the deployer served a first approved
model (it is the deployer's, not CloudFormation's). A template with the schedule would fail in every
fresh account. So the stack owns everything the schedule needs (the role, the job's definition as
data, the set-up workflow and its triggers) and the workflow creates the schedule, or brings it up to
date, whenever the endpoint enters service and once per period. The job's definition is inline in
the schedule (no separate job-definition resource, which SageMaker cannot update in place).

Like the endpoint, the schedule outlives the stack: deleting the stack or turning Model Monitor off
leaves it running; delete it with ``aws sagemaker delete-monitoring-schedule`` (docs/serving.md).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnMapping, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipelines.definition import BASELINE_CONSTRAINTS, BASELINE_STATISTICS, MONITORING_BASELINE_PREFIX
from platform_core.config import PlatformConfig
from platform_core.names import DATA_CAPTURE_PREFIX, MONITORING_PREFIX, Names
from stacks.constructs.access import allow, allow_bucket_listing, allow_key, allow_objects, flatten_reference
from stacks.constructs.dependencies import depend_on_role_policy_only
from stacks.constructs.failure_queue import failure_queue
from stacks.constructs.lake_refs import LakeRefs
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import log_retention
from stacks.policies import data_removal_policy

# Model Monitor's analyzer image is published per region by AWS; the account ids are AWS's (the same
# table as the SageMaker SDK's, which the training pipeline's baseline step uses).
MODEL_MONITOR_ACCOUNTS = {
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-central-1": "048819808253",
    "ap-northeast-1": "574779866223",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
}
ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"
# Where the analyzer publishes its per-feature metrics (dimensions Endpoint and MonitoringSchedule).
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
REPORTS_PREFIX = f"{MONITORING_PREFIX}reports/"
_PROCESSING = "/opt/ml/processing"
# An hourly schedule's jobs must finish within the hour (SageMaker's limit for hourly schedules).
MAX_RUNTIME_SECONDS = 3600


def setup_state_machine_name(names: Names) -> str:
    """The workflow that creates or updates the monitoring schedule (alarms find it by this name)."""
    return f"{names.data_quality_monitoring_schedule}-setup"


def baseline_uris(artifacts_bucket_name: str) -> dict[str, str]:
    """The baseline the schedule reads: exactly the objects the training pipeline's baseline step writes."""
    prefix = f"s3://{artifacts_bucket_name}/{MONITORING_BASELINE_PREFIX}"
    return {"statistics": f"{prefix}{BASELINE_STATISTICS}", "constraints": f"{prefix}{BASELINE_CONSTRAINTS}"}


class DataQualityMonitor(Construct):
    """The monitoring role, the schedule's configuration and the workflow that puts it in place."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        lake: LakeRefs,
        endpoint_name: str,
        endpoint_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        if platform.serving.serverless:
            raise ValueError("Model Monitor needs data capture, which serverless endpoints do not support")
        names = Names(platform)
        stack = Stack.of(self)
        self._platform = platform
        self.endpoint_name = endpoint_name
        self.schedule_name = names.data_quality_monitoring_schedule
        self.schedule_arn = stack.format_arn(
            service="sagemaker", resource="monitoring-schedule", resource_name=self.schedule_name
        )
        self.baseline = baseline_uris(lake.artifacts_bucket.bucket_name)
        # AWS's account of the analyzer image in this region (a mapping: the region may be a token).
        accounts = {region: {"account": account} for region, account in MODEL_MONITOR_ACCOUNTS.items()}
        self._image_account = CfnMapping(self, "ModelMonitorImageAccounts", mapping=accounts).find_in_map(
            stack.region, "account"
        )
        self.role = self._monitoring_role(lake, endpoint_arn)
        self.schedule_config = self._schedule_config(lake)
        self.state_machine = self._setup(names, lake)
        self.rules = self._triggers(names)

    # -- the role the monitoring jobs run with ------------------------------------------------------
    def _monitoring_role(self, lake: LakeRefs, endpoint_arn: str) -> iam.Role:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "MonitoringRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Model Monitor data quality jobs of the inference endpoint",
        )
        allow_objects(
            role,
            lake.raw_bucket,
            prefixes=[f"{DATA_CAPTURE_PREFIX}{self.endpoint_name}/"],
            actions=["s3:GetObject"],
            reason="Model Monitor reads the endpoint's capture files of each hour (one object per capture file).",
        )
        allow(
            role,
            ["s3:GetObject"],
            [
                lake.artifacts_bucket.arn_for_objects(f"{MONITORING_BASELINE_PREFIX}{name}")
                for name in (BASELINE_STATISTICS, BASELINE_CONSTRAINTS)
            ],
        )
        allow_objects(
            role,
            lake.artifacts_bucket,
            prefixes=[REPORTS_PREFIX],
            actions=["s3:PutObject"],
            reason="Each monitoring run writes its report files under its own folder of the reports prefix.",
        )
        allow_bucket_listing(role, lake.raw_bucket)
        allow_key(role, lake.key, encrypt=True, decrypt=True)
        # Volumes encrypted with the lake key: SageMaker creates grants for the job's instances.
        allow(role, ["kms:CreateGrant"], [lake.key.key_arn], Bool={"kms:GrantIsForAWSResource": "true"})
        allow(role, ["sagemaker:DescribeEndpoint"], [endpoint_arn])
        allow(role, ["ecr:GetAuthorizationToken"], ["*"])
        allow(
            role,
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [f"arn:{stack.partition}:ecr:{stack.region}:{self._image_account}:repository/{ANALYZER_REPOSITORY}"],
        )
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/ProcessingJobs:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        allow(role, ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], [log_groups])
        allow(
            role,
            ["cloudwatch:PutMetricData"],
            ["*"],
            StringEquals={"cloudwatch:namespace": DATA_METRICS_NAMESPACE},
        )
        acknowledge(
            role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                    "permissions; metrics are limited to Model Monitor's data-metrics namespace by a condition."
                ),
                f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(log_groups))}]": (
                    "SageMaker names each monitoring job's log stream <job name>/<host>-<timestamp> at run time."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": "Explicit statements for this one monitoring role.",
            },
        )
        return role

    # -- the schedule, as data ----------------------------------------------------------------------
    def _schedule_config(self, lake: LakeRefs) -> dict[str, Any]:
        """``MonitoringScheduleConfig`` of CreateMonitoringSchedule / UpdateMonitoringSchedule."""
        stack = Stack.of(self)
        serving = self._platform.serving
        key_arn = lake.key.key_arn
        image = f"{self._image_account}.dkr.ecr.{stack.region}.{stack.url_suffix}/{ANALYZER_REPOSITORY}"
        return {
            "ScheduleConfig": {"ScheduleExpression": serving.monitor_schedule_expression},
            "MonitoringJobDefinition": {
                "BaselineConfig": {
                    "ConstraintsResource": {"S3Uri": self.baseline["constraints"]},
                    "StatisticsResource": {"S3Uri": self.baseline["statistics"]},
                },
                "MonitoringAppSpecification": {"ImageUri": image},
                # The analyzer gets the captures' location and format from SageMaker; these two say
                # where it writes its reports and that it publishes the per-feature metrics.
                "Environment": {"output_path": f"{_PROCESSING}/output", "publish_cloudwatch_metrics": "Enabled"},
                "MonitoringInputs": [
                    {
                        "EndpointInput": {
                            "EndpointName": self.endpoint_name,
                            "LocalPath": f"{_PROCESSING}/input/endpoint",
                            "S3DataDistributionType": "FullyReplicated",
                            "S3InputMode": "File",
                        }
                    }
                ],
                "MonitoringOutputConfig": {
                    "KmsKeyId": key_arn,
                    "MonitoringOutputs": [
                        {
                            "S3Output": {
                                "LocalPath": f"{_PROCESSING}/output",
                                "S3Uri": f"s3://{lake.artifacts_bucket.bucket_name}/{REPORTS_PREFIX.rstrip('/')}",
                                "S3UploadMode": "EndOfJob",
                            }
                        }
                    ],
                },
                "MonitoringResources": {
                    "ClusterConfig": {
                        "InstanceCount": 1,
                        "InstanceType": serving.monitor_instance_type,
                        "VolumeSizeInGB": serving.monitor_volume_gb,
                        "VolumeKmsKeyId": key_arn,
                    }
                },
                "NetworkConfig": {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": True},
                "RoleArn": self.role.role_arn,
                "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
            },
        }

    # -- the workflow that creates or updates the schedule ------------------------------------------
    def _setup(self, names: Names, lake: LakeRefs) -> sfn.StateMachine:
        find = tasks.CallAwsService(
            self,
            "FindEndpointInService",
            comment="Is the endpoint in service? (ListEndpoints: no error to interpret when it does not exist)",
            service="sagemaker",
            action="listEndpoints",
            iam_action="sagemaker:ListEndpoints",
            iam_resources=["*"],
            parameters={"NameContains": self.endpoint_name, "StatusEquals": "InService"},
            result_selector={"Endpoints.$": "$.Endpoints"},
            result_path="$.inService",
        )
        create = self._schedule_call("CreateSchedule", "createMonitoringSchedule", "Create the schedule")
        update = self._schedule_call(
            "UpdateSchedule",
            "updateMonitoringSchedule",
            "The schedule exists: bring its configuration up to date (the same request)",
        )
        # A schedule still settling from a previous change answers "in use" for a little while.
        update.add_retry(
            errors=["SageMaker.ResourceInUseException"],
            interval=Duration.seconds(30),
            backoff_rate=2,
            max_attempts=4,
        )
        create.add_catch(update, errors=["SageMaker.ResourceInUseException"], result_path=sfn.JsonPath.DISCARD)
        not_yet = sfn.Succeed(
            self, "NoEndpointInService", comment="Nothing to monitor yet: the endpoint's next IN_SERVICE event returns"
        )
        definition = find.next(
            sfn.Choice(self, "IsEndpointInService")
            .when(sfn.Condition.is_present("$.inService.Endpoints[0]"), create)
            .otherwise(not_yet)
        )
        name = setup_state_machine_name(names)
        log_group = logs.LogGroup(
            self,
            "SetupLogs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=log_retention(self._platform.log_retention_days),
            encryption_key=lake.key,
        )
        machine = sfn.StateMachine(
            self,
            "Setup",
            state_machine_name=name,
            comment=f"Creates or updates the Model Monitor schedule {self.schedule_name} of {self.endpoint_name}",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.minutes(30),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        depend_on_role_policy_only(machine, machine.role)
        acknowledge(
            machine.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "sagemaker:ListEndpoints, X-Ray and vended log delivery support no resource-level "
                    "permissions; the schedule calls are limited to this one monitoring schedule."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The policy is generated from the workflow's tasks for this one role; a managed policy "
                    "would be attached to nothing else."
                ),
            },
        )
        return machine

    def _schedule_call(self, construct_id: str, action: str, comment: str) -> tasks.CallAwsService:
        """CreateMonitoringSchedule or UpdateMonitoringSchedule with the one request, on the one schedule."""
        return tasks.CallAwsService(
            self,
            construct_id,
            comment=comment,
            service="sagemaker",
            action=action,
            iam_action=f"sagemaker:{action[0].upper()}{action[1:]}",
            iam_resources=[self.schedule_arn],
            # The schedule runs its jobs with the monitoring role: creating or updating it passes the role.
            additional_iam_statements=[
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[self.role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                )
            ],
            parameters={"MonitoringScheduleName": self.schedule_name, "MonitoringScheduleConfig": self.schedule_config},
            result_path=sfn.JsonPath.DISCARD,
        )

    # -- what starts it -----------------------------------------------------------------------------
    def _triggers(self, names: Names) -> list[events.Rule]:
        undelivered = failure_queue(
            self,
            "UndeliveredStarts",
            holds="monitoring set-up starts EventBridge could not deliver",
            removal_policy=data_removal_policy(self._platform),
        )
        role = iam.Role(
            self,
            "TriggerRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"EventBridge rules that start {setup_state_machine_name(names)}",
        )
        acknowledge(role, {"NIST.800.53.R5-IAMNoInlinePolicy": "The one states:StartExecution statement of the rules."})

        def target() -> targets.SfnStateMachine:
            return targets.SfnStateMachine(
                self.state_machine,
                role=role,
                dead_letter_queue=undelivered,
                retry_attempts=10,
                max_event_age=Duration.hours(2),
            )

        in_service = events.Rule(
            self,
            "EndpointInService",
            description=f"{self.endpoint_name} entered service -> create or update its monitoring schedule",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Endpoint State Change"],
                detail={"EndpointName": [self.endpoint_name], "EndpointStatus": ["IN_SERVICE"]},
            ),
            targets=[target()],
        )
        periodic = events.Rule(
            self,
            "PeriodicSetup",
            description=f"Keeps {self.schedule_name} as configured (a changed setting, a deleted schedule)",
            schedule=events.Schedule.rate(Duration.hours(self._platform.serving.monitor_setup_rate_hours)),
            targets=[target()],
        )
        return [in_service, periodic]
