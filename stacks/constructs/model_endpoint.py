"""The real-time endpoint's deployment machinery: the deployer, what wakes it, and its guard rails.

    Model Registry (group <prefix>-churn): Approved / Rejected ─┐
    SageMaker endpoint state change (<prefix>-inference) ───────┼─> EventBridge ─> λ model_deployer
    schedule rate(reconcile_rate_minutes) ──────────────────────┘        │
        creates model (from the package) + endpoint config (serverless | instances + data capture)
        creates / updates the endpoint (blue/green, canary, rollback on the alarms below)
        registers target-tracking autoscaling once the endpoint is in service (instances)
        publishes the serving manifest (SSM) and the version's transform (artifacts bucket)

The endpoint itself is not a CloudFormation resource: it exists only once a model is approved, it
changes with every approval, and SageMaker's blue/green deployment, not a stack update, must
carry it from one model to the next. The deployer's calls are idempotent (``lambdas/model_deployer``).

The construct also owns the role SageMaker runs the model with (endpoint, data capture, batch
transform), the rollback alarms (instance endpoints), and, when enabled, Model Monitor's data
quality monitoring (``data_quality_monitor.py``: set up at run time, since it needs the endpoint).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from constructs import Construct

from lambdas.model_deployer.settings import environment as deployer_environment
from platform_core.config import PlatformConfig
from platform_core.names import DATA_CAPTURE_PREFIX, SERVING_MODELS_PREFIX, Names
from platform_core.schemas.serving import PREDICTIONS_PREFIX
from stacks.constructs.access import allow, allow_bucket_listing, allow_key, allow_objects, flatten_reference
from stacks.constructs.data_quality_monitor import DataQualityMonitor
from stacks.constructs.failure_queue import failure_queue
from stacks.constructs.lake_refs import LakeRefs
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction
from stacks.policies import data_removal_policy

FUNCTION = "model_deployer"
_COLON_RESOURCE_NAME = ArnFormat.COLON_RESOURCE_NAME
BATCH_INPUT = "serving/batch-input/"


class ModelEndpoint(Construct):
    """The deployer function, its triggers, the model execution role and the rollback alarms."""

    def __init__(self, scope: Construct, construct_id: str, *, platform: PlatformConfig, lake: LakeRefs) -> None:
        super().__init__(scope, construct_id)
        names = Names(platform)
        serving = platform.serving
        if platform.is_production and not serving.serverless and serving.min_instances < 2:
            raise ValueError("production endpoints need at least two instances (SageMaker spreads them over AZs)")
        stack = Stack.of(self)
        self._names = names
        self.endpoint_name = names.inference_endpoint
        self.endpoint_arn = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=self.endpoint_name)
        self.execution_role = self._execution_role(lake)
        self.rollback_alarms = [] if serving.serverless else self._rollback_alarms(platform)
        self.deployer = self._deployer(platform, lake)
        self.rules = self._triggers(platform)
        self.monitoring: DataQualityMonitor | None = None
        if serving.model_monitor_enabled:
            self.monitoring = DataQualityMonitor(
                self,
                "DataQualityMonitor",
                platform=platform,
                lake=lake,
                endpoint_name=self.endpoint_name,
                endpoint_arn=self.endpoint_arn,
            )

    # -- the role SageMaker runs the model with ----------------------------------------------------
    def _execution_role(self, lake: LakeRefs) -> iam.Role:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "ModelExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker runs the churn model with this role (endpoint, data capture, batch transform)",
        )
        allow_objects(
            role,
            lake.artifacts_bucket,
            prefixes=[""],
            actions=["s3:GetObject"],
            reason=(
                "Model archives are wherever the training pipeline wrote them in the artifacts bucket; "
                "the model package names the exact object, read-only."
            ),
        )
        allow_objects(
            role,
            lake.raw_bucket,
            prefixes=[DATA_CAPTURE_PREFIX],
            actions=["s3:PutObject"],
            reason="Data capture writes one object per capture file under the capture prefix.",
        )
        allow_objects(
            role,
            lake.curated_bucket,
            prefixes=[BATCH_INPUT],
            actions=["s3:GetObject"],
            reason="Batch transform reads the exported features of each run under the batch input prefix.",
        )
        allow_objects(
            role,
            lake.curated_bucket,
            prefixes=[PREDICTIONS_PREFIX],
            actions=["s3:PutObject", "s3:AbortMultipartUpload"],
            reason="Batch transform writes one output object per input file under the predictions prefix.",
        )
        allow_bucket_listing(role, lake.curated_bucket)
        allow_key(role, lake.key, encrypt=True, decrypt=True)
        # Instance volumes encrypted with the lake key: SageMaker creates grants for the instances.
        allow(role, ["kms:CreateGrant"], [lake.key.key_arn], Bool={"kms:GrantIsForAWSResource": "true"})
        allow(role, ["ecr:GetAuthorizationToken"], ["*"])
        repositories = stack.format_arn(service="ecr", resource="repository", resource_name="*")
        allow(
            role,
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            [repositories],
        )
        log_groups = stack.format_arn(
            service="logs", resource="log-group", resource_name="/aws/sagemaker/*", arn_format=_COLON_RESOURCE_NAME
        )
        allow(
            role,
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [log_groups],
        )
        allow(role, ["cloudwatch:PutMetricData"], ["*"], StringLike={"cloudwatch:namespace": "/aws/sagemaker/*"})
        acknowledge(
            role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
                    "permissions; metrics are limited to SageMaker's namespaces by a condition."
                ),
                **_wildcard(
                    self,
                    repositories,
                    "The serving image is the one the training pipeline registered in this account's ECR; "
                    "its repository is known only from the model package.",
                ),
                **_wildcard(
                    self,
                    log_groups,
                    "SageMaker names the log groups of endpoints and transform jobs after them "
                    "(/aws/sagemaker/Endpoints/<name>, /aws/sagemaker/TransformJobs).",
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": "Explicit least-privilege statements for this one model execution role.",
            },
        )
        return role

    # -- rollback alarms ------------------------------------------------------------------------------
    def _rollback_alarms(self, platform: PlatformConfig) -> list[cloudwatch.Alarm]:
        """One-minute alarms that SageMaker watches during a blue/green deployment (fast, unlike the
        five-minute operational alarms of the observability stack)."""
        serving = platform.serving
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": self._names.inference_variant}
        errors_name, latency_name = self._names.endpoint_rollback_alarms
        errors = cloudwatch.Alarm(
            self,
            "RollbackOnErrors",
            alarm_name=errors_name,
            alarm_description="Server errors of the endpoint during a deployment: SageMaker rolls it back.",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="Invocation5XXErrors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=Duration.minutes(1),
            ),
            threshold=serving.rollback_5xx_per_minute,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            "RollbackOnLatency",
            alarm_name=latency_name,
            alarm_description="p99 model latency over budget for two minutes during a deployment: rolled back.",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="ModelLatency",  # microseconds
                dimensions_map=dimensions,
                statistic="p99",
                period=Duration.minutes(1),
            ),
            threshold=serving.rollback_latency_ms * 1000,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return [errors, latency]

    # -- the deployer -------------------------------------------------------------------------------
    def _deployer(self, platform: PlatformConfig, lake: LakeRefs) -> PlatformFunction:
        names = self._names
        stack = Stack.of(self)
        capture_uri = f"s3://{lake.raw_bucket.bucket_name}/{DATA_CAPTURE_PREFIX.rstrip('/')}"
        function = PlatformFunction(
            self,
            "Deployer",
            name=FUNCTION,
            platform=platform,
            settings=platform.serving.deployer,
            key=lake.key,
            description="Keeps the inference endpoint on the latest approved churn model package",
            environment=deployer_environment(
                platform,
                execution_role_arn=self.execution_role.role_arn,
                kms_key_arn=lake.key.key_arn,
                artifacts_bucket=lake.artifacts_bucket.bucket_name,
                capture_s3_uri=capture_uri,
            ),
        )
        resource = function.function.node.default_child
        assert isinstance(resource, lambda_.CfnFunction)
        resource.function_name = names.function(FUNCTION)  # alarms find it by this name
        self.failures = failure_queue(
            self,
            "DeployerFailures",
            holds="deployer events that failed (the next trigger reconciles anyway)",
            removal_policy=data_removal_policy(platform),
            key=lake.key,
            queue_name=names.dead_letter_queue(FUNCTION),
        )
        function.function.configure_async_invoke(
            max_event_age=Duration.hours(1),
            retry_attempts=2,
            on_failure=destinations.SqsDestination(self.failures),
        )
        self._grant_deployer(function, lake, stack)
        return function

    def _grant_deployer(self, function: PlatformFunction, lake: LakeRefs, stack: Stack) -> None:
        names = self._names
        fn = function.function

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        group = names.model_package_group
        releases = f"{self.endpoint_name}-v*"
        packages = arn("model-package", f"{group}/*")
        models, configs = arn("model", releases), arn("endpoint-config", releases)
        scaling_alarms = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"TargetTracking-endpoint/{self.endpoint_name}/*",
            arn_format=_COLON_RESOURCE_NAME,
        )
        allow(fn, ["sagemaker:ListModelPackages"], ["*"])
        allow(fn, ["sagemaker:DescribeModelPackage"], [packages])
        allow(fn, ["sagemaker:ListModels", "sagemaker:ListEndpointConfigs", "sagemaker:ListEndpoints"], ["*"])
        allow(fn, ["sagemaker:CreateModel", "sagemaker:AddTags"], [models])
        allow(
            fn, ["sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:AddTags"], [configs]
        )
        allow(
            fn,
            ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:AddTags"],
            [self.endpoint_arn],
        )
        allow(
            fn,
            ["iam:PassRole"],
            [self.execution_role.role_arn],
            StringEquals={"iam:PassedToService": "sagemaker.amazonaws.com"},
        )
        # SageMaker checks the rollback alarms with the caller's permissions.
        if self.rollback_alarms:
            allow(fn, ["cloudwatch:DescribeAlarms"], [alarm.alarm_arn for alarm in self.rollback_alarms])
        allow(
            fn,
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DescribeScalingPolicies",
            ],
            ["*"],
        )
        # Target tracking creates its alarms with the caller's permissions.
        allow(
            fn, ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"], [scaling_alarms]
        )
        allow(
            fn,
            ["iam:CreateServiceLinkedRole"],
            [
                stack.format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                )
            ],
            StringLike={"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"},
        )
        allow_objects(
            fn,
            lake.artifacts_bucket,
            prefixes=[""],
            actions=["s3:GetObject"],
            reason=(
                "The deployer reads the model archive the package names (anywhere the training pipeline "
                "wrote it in the artifacts bucket) to copy out its transform and metadata."
            ),
        )
        allow_objects(
            fn,
            lake.artifacts_bucket,
            prefixes=[SERVING_MODELS_PREFIX],
            actions=["s3:PutObject"],
            reason="One folder per deployed model version under the serving models prefix.",
        )
        allow(fn, ["s3:ListBucket"], [lake.artifacts_bucket.bucket_arn])
        allow_key(fn, lake.key, encrypt=True, decrypt=True)
        allow(fn, ["kms:CreateGrant"], [lake.key.key_arn], Bool={"kms:GrantIsForAWSResource": "true"})
        allow(
            fn,
            ["ssm:GetParameter", "ssm:PutParameter"],
            [
                stack.format_arn(
                    service="ssm", resource="parameter", resource_name=names.serving_manifest_parameter.lstrip("/")
                )
            ],
        )
        acknowledge(
            function.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "List operations of SageMaker and every Application Auto Scaling action support no "
                    "resource-level permissions; writes are limited to this endpoint's resources."
                ),
                **_wildcard(self, packages, "Every version of the platform's own model package group."),
                **_wildcard(self, models, "Models of this endpoint's releases, named <endpoint>-v<version>-<hash>."),
                **_wildcard(self, configs, "Configurations of this endpoint's releases, named like their models."),
                **_wildcard(
                    self,
                    scaling_alarms,
                    "The alarms target tracking creates for this endpoint's variant (named by AWS).",
                ),
            },
        )
        acknowledge(
            function.role,
            {
                f"AwsSolutions-IAM5[Action::{action}]": (
                    "Generated by the CDK for the asynchronous on-failure destination: sending to the "
                    "KMS-encrypted failure queue, on the lake key only."
                )
                for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
            },
        )
        acknowledge(
            fn,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "Asynchronous invocations that fail go to the on-failure destination (an encrypted SQS "
                    "queue), which replaces a dead-letter queue."
                ),
                "Serverless-LambdaDLQ": "Failures go to the async on-failure destination, an encrypted SQS queue.",
            },
        )

    # -- triggers -----------------------------------------------------------------------------------
    def _triggers(self, platform: PlatformConfig) -> list[events.Rule]:
        undelivered = failure_queue(
            self,
            "UndeliveredEvents",
            holds="model approval events EventBridge could not deliver to the deployer",
            removal_policy=data_removal_policy(platform),
        )
        target = targets.LambdaFunction(
            self.deployer.function,
            dead_letter_queue=undelivered,
            retry_attempts=10,
            max_event_age=Duration.hours(2),
        )
        approvals = events.Rule(
            self,
            "ModelPackageApprovals",
            description=f"Approvals and rejections in {self._names.model_package_group} -> model deployer",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={
                    "ModelPackageGroupName": [self._names.model_package_group],
                    # A rejection matters when it hits the served version: the deployer rolls back.
                    "ModelApprovalStatus": ["Approved", "Rejected"],
                },
            ),
            targets=[target],
        )
        endpoint_changes = events.Rule(
            self,
            "EndpointStateChanges",
            description=f"State changes of {self.endpoint_name} -> model deployer (finish a deployment)",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Endpoint State Change"],
                detail={"EndpointName": [self.endpoint_name]},
            ),
            targets=[target],
        )
        reconcile = events.Rule(
            self,
            "Reconcile",
            description="Periodic reconciliation of the inference endpoint with the model registry",
            schedule=events.Schedule.rate(Duration.minutes(platform.serving.reconcile_rate_minutes)),
            targets=[target],
        )
        return [approvals, endpoint_changes, reconcile]


def _wildcard(scope: Construct, arn: str, reason: str) -> dict[str, str]:
    """The cdk-nag acknowledgment of a wildcard resource, with the evidence as cdk-nag writes it."""
    return {f"AwsSolutions-IAM5[Resource::{flatten_reference(Stack.of(scope).resolve(arn))}]": reason}
