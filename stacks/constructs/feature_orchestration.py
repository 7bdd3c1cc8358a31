"""The daily feature pipeline as a Step Functions state machine, started by an EventBridge schedule.

    ResolveAsOf -> SubscriptionHistory -> ( ClickstreamFeatures | SubscriptionFeatures )
                -> TrainingSet -> ResolveBaseline (λ baseline_metrics) -> StartTrainingPipeline -> Done
    any failure (after its retries) -> NotifyFailure (SNS) -> Failed

``as_of`` is the one instant the run computes features for: the execution input's ``as_of`` when
given (a back-fill or a re-run of a past day), else the schedule's time (the rule passes the
scheduled event's ``time``), else the execution's start time. The jobs get it as ``--as_of`` and
never read a clock, so a re-run of the same ``as_of`` rewrites exactly the same partitions.

Every Glue step waits for its run (``glue:startJobRun.sync``) and retries with exponential backoff;
the Glue jobs themselves have no retries of their own. The training pipeline is started with a
client token derived from the execution id, so a retried start never launches a second training.

The pipeline's quality gate registers a model only if its PR-AUC reaches the approved model's
(``BaselinePrAuc``). ``ResolveBaseline`` asks the ``baseline_metrics`` Lambda for that number
(:mod:`platform_core.model_baseline`: the group's approved version, its evaluation.json) and the
start passes it on; it is ``0.0`` while no model is approved. A Lambda rather than chained SDK
integrations: the same code serves the feedback loop's retraining, it validates the number (a
missing or malformed metric fails the run with its reason instead of a JSONPath error or a
silent 0), and it is tested against the registry's real API shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipelines.definition import EVALUATIONS_PREFIX
from platform_core.config import FeaturesConfig, PlatformConfig
from platform_core.names import Names
from platform_core.schemas.training import BASELINE_PR_AUC_PARAMETER
from stacks.constructs.access import allow, allow_key, allow_objects, flatten_reference
from stacks.constructs.failure_queue import failure_queue
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction, log_retention

AS_OF = "$.as_of"
BASELINE = "$.baseline"  # the approved model's PR-AUC, from ResolveBaseline
FAILURE = "$.failure"  # where a Catch puts the error, next to as_of (which the notification reports)


@dataclass(frozen=True)
class OrchestratedJobs:
    """Names of the Glue jobs the state machine runs."""

    subscription_history: str
    clickstream_features: str
    subscription_features: str
    training_set: str


class FeatureOrchestration(Construct):
    """State machine, its schedule, its failure topic and its encrypted logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        jobs: OrchestratedJobs,
        pipeline_name: str,
        model_package_group: str,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        removal_policy: RemovalPolicy,
        depends_on: Sequence[CfnResource] = (),
    ) -> None:
        """``model_package_group``: the group whose approved model sets the training's ``BaselinePrAuc``;
        ``artifacts_bucket``: where the training pipeline writes evaluation.json (read for that number);
        ``depends_on``: resources that must exist before a run can start (the Glue jobs of this stack)."""
        super().__init__(scope, construct_id)
        names = Names(platform)
        self._settings = platform.features
        self._removal_policy = removal_policy
        # The state machine's own key: Step Functions' log delivery must be allowed to decrypt with it
        # in the key policy, which only a key owned by this stack can grant (the lake key is imported).
        self.key = kms.Key(
            self,
            "Key",
            description=f"{platform.resource_prefix}: feature orchestration state machine",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            pending_window=Duration.days(30),
            removal_policy=removal_policy,
        )
        self.failure_topic = sns.Topic(
            self,
            "FailureTopic",
            topic_name=names.orchestration_failure_topic,
            display_name=f"{platform.resource_prefix} feature pipeline failures",
            master_key=key,
            enforce_ssl=True,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # /aws/vendedlogs/ keeps the account's CloudWatch Logs resource policy small.
            log_group_name=f"/aws/vendedlogs/states/{names.orchestration_state_machine}",
            retention=log_retention(platform.log_retention_days),
            encryption_key=key,
        )
        self.pipeline_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline_name
        )
        self.baseline = self._baseline_function(
            platform, model_package_group=model_package_group, artifacts_bucket=artifacts_bucket, key=key
        )

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=names.orchestration_state_machine,
            comment="Daily features: history, features, point-in-time training set, then training",
            definition_body=sfn.DefinitionBody.from_chainable(self._definition(jobs, pipeline_name)),
            timeout=Duration.minutes(self._settings.orchestration_timeout_minutes),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            encryption_configuration=sfn.CustomerManagedEncryptionConfiguration(self.key),
        )
        # Publishing to the KMS-encrypted topic.
        allow_key(self.state_machine, key, encrypt=True, decrypt=True)
        self._depend_on(depends_on)
        self.schedule = self._schedule(platform)
        self._acknowledge()

    def _depend_on(self, resources: Sequence[CfnResource]) -> None:
        """The state machine's DependsOn: ``resources`` and its role's policy, but not the role
        itself, which it already references (a redundant DependsOn is cfn-lint W3005)."""
        stack = Stack.of(self)
        state_machine = self.state_machine.node.default_child
        assert isinstance(state_machine, CfnResource)
        depends_on = [stack.get_logical_id(r) for r in resources]
        policy = self.state_machine.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            policy_resource = policy.node.default_child
            assert isinstance(policy_resource, CfnResource)
            depends_on.append(stack.get_logical_id(policy_resource))
        state_machine.add_override("DependsOn", depends_on)

    # -----------------------------------------------------------------------------------------
    # Definition
    # -----------------------------------------------------------------------------------------

    def _definition(self, jobs: OrchestratedJobs, pipeline_name: str) -> sfn.IChainable:
        notify = self._failure_path()
        history = self._glue("SubscriptionHistory", jobs.subscription_history, as_of=False)
        features = sfn.Parallel(self, "ComputeFeatures", result_path=sfn.JsonPath.DISCARD)
        features.branch(self._glue("ClickstreamFeatures", jobs.clickstream_features, as_of=True))
        features.branch(self._glue("SubscriptionFeatures", jobs.subscription_features, as_of=True))
        training_set = self._glue("TrainingSet", jobs.training_set, as_of=False)
        resolve_baseline = self._resolve_baseline()
        start_training = self._start_training(pipeline_name)
        for step in (history, features, training_set, resolve_baseline, start_training):
            step.add_catch(notify, errors=[sfn.Errors.ALL], result_path=FAILURE)

        given = sfn.Pass(self, "UseGivenAsOf", parameters={"as_of": sfn.JsonPath.string_at(AS_OF)})
        started = sfn.Pass(self, "UseStartTime", parameters={"as_of": sfn.JsonPath.string_at("$$.Execution.StartTime")})
        invalid = sfn.Fail(
            self,
            "InvalidAsOf",
            error="InvalidAsOf",
            cause="as_of must be an RFC 3339 timestamp with a zone, e.g. 2024-03-10T01:00:00Z",
        )
        resolve = (
            sfn.Choice(self, "ResolveAsOf")
            .when(sfn.Condition.and_(sfn.Condition.is_present(AS_OF), sfn.Condition.is_timestamp(AS_OF)), given)
            .when(sfn.Condition.is_present(AS_OF), invalid)
            .otherwise(started)
        )
        given.next(history)
        started.next(history)
        history.next(features).next(training_set).next(resolve_baseline).next(start_training).next(
            sfn.Succeed(self, "Done")
        )
        return resolve

    def _retry(self, state: sfn.TaskStateBase) -> None:
        settings: FeaturesConfig = self._settings
        # States.TaskFailed matches every task error except a timeout (a failed run, a throttled
        # API call, a concurrent run still finishing): all of them are worth a later attempt.
        state.add_retry(
            errors=[sfn.Errors.TASKS_FAILED, sfn.Errors.TIMEOUT],
            interval=Duration.seconds(settings.retry_interval_seconds),
            backoff_rate=settings.retry_backoff_rate,
            max_attempts=settings.retry_max_attempts,
        )

    def _glue(self, construct_id: str, job_name: str, *, as_of: bool) -> tasks.GlueStartJobRun:
        """Run a Glue job and wait for it; the state's output is its input (``as_of`` travels on)."""
        task = tasks.GlueStartJobRun(
            self,
            construct_id,
            glue_job_name=job_name,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            arguments=sfn.TaskInput.from_object({"--as_of": sfn.JsonPath.string_at(AS_OF)}) if as_of else None,
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry(task)
        return task

    def _resolve_baseline(self) -> tasks.LambdaInvoke:
        """The approved model's PR-AUC into ``$.baseline`` (``as_of`` travels on beside it).

        Lambda's own transient errors are retried by the task's default policy; a throttled
        invocation with the configured backoff. The function's errors (a missing or unreadable
        metric) are not retried: the run fails with the reason, which a person must act on.
        """
        task = tasks.LambdaInvoke(
            self,
            "ResolveBaseline",
            lambda_function=self.baseline.function,
            payload=sfn.TaskInput.from_object({"execution": sfn.JsonPath.execution_id}),
            result_selector={
                "baseline_pr_auc": sfn.JsonPath.string_at("$.Payload.baseline_pr_auc"),
                "model_package_arn": sfn.JsonPath.string_at("$.Payload.model_package_arn"),
                "source": sfn.JsonPath.string_at("$.Payload.source"),
            },
            result_path=BASELINE,
            retry_on_service_exceptions=True,
        )
        settings: FeaturesConfig = self._settings
        task.add_retry(
            errors=["Lambda.TooManyRequestsException"],
            interval=Duration.seconds(settings.retry_interval_seconds),
            backoff_rate=settings.retry_backoff_rate,
            max_attempts=settings.retry_max_attempts,
        )
        return task

    def _baseline_function(
        self, platform: PlatformConfig, *, model_package_group: str, artifacts_bucket: s3.IBucket, key: kms.IKey
    ) -> PlatformFunction:
        """``lambdas/baseline_metrics``: may list the group's packages, describe them and read the
        evaluation.json files the training pipeline writes, nothing else."""
        function = PlatformFunction(
            self,
            "BaselineMetrics",
            name="baseline_metrics",
            platform=platform,
            settings=platform.features.baseline_function,
            key=key,
            description="The approved churn model's PR-AUC: the BaselinePrAuc of the next training run",
            environment={"MODEL_PACKAGE_GROUP": model_package_group},
        )
        stack = Stack.of(self)
        packages = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{model_package_group}/*"
        )
        # ListModelPackages supports no resource-level permissions; describing is limited to the group.
        allow(function.role, ["sagemaker:ListModelPackages"], ["*"])
        allow(function.role, ["sagemaker:DescribeModelPackage"], [packages])
        allow_objects(
            function.role,
            artifacts_bucket,
            prefixes=[EVALUATIONS_PREFIX],
            actions=["s3:GetObject"],
            reason="Each pipeline execution writes its evaluation.json under training/evaluation/<execution id>/.",
        )
        allow_key(function.role, key, decrypt=True)  # the pipeline encrypts its outputs with the lake key
        acknowledge(
            function.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "X-Ray PutTraceSegments/PutTelemetryRecords and sagemaker:ListModelPackages support no "
                    "resource-level permissions; DescribeModelPackage is limited to the churn group's packages."
                ),
                f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(packages))}]": (
                    "Package versions are numbered by SageMaker at registration: the group's versions are the resource."
                ),
            },
        )
        acknowledge(
            function.function,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "Invoked synchronously by the state machine only: an error returns to it, which retries "
                    "or notifies the failure topic; there is no asynchronous event to keep."
                ),
                "Serverless-LambdaDLQ": "Synchronous invocation by the state machine: errors go back to it.",
                "Serverless-LambdaAsyncFailureDestination": (
                    "Never invoked asynchronously: only the state machine calls it, synchronously."
                ),
                "NIST.800.53.R5-LambdaConcurrency": (
                    "Called once per orchestration run (daily); reserving concurrency would only take it "
                    "from the account's pool."
                ),
            },
        )
        return function

    def _start_training(self, pipeline_name: str) -> tasks.CallAwsService:
        task = tasks.CallAwsService(
            self,
            "StartTrainingPipeline",
            service="sagemaker",
            action="startPipelineExecution",
            iam_action="sagemaker:StartPipelineExecution",
            iam_resources=[self.pipeline_arn],
            parameters={
                "PipelineName": pipeline_name,
                # One token per execution: a retried start returns the execution already started.
                "ClientRequestToken": sfn.JsonPath.hash(sfn.JsonPath.execution_id, "SHA-256"),
                "PipelineExecutionDescription": sfn.JsonPath.format(
                    "Training on features as of {}", sfn.JsonPath.string_at(AS_OF)
                ),
                # The quality gate's second bar: the approved model's PR-AUC (ResolveBaseline).
                "PipelineParameters": [
                    {"Name": BASELINE_PR_AUC_PARAMETER, "Value": sfn.JsonPath.string_at(f"{BASELINE}.baseline_pr_auc")}
                ],
            },
            result_selector={"pipeline_execution_arn": sfn.JsonPath.string_at("$.PipelineExecutionArn")},
            result_path="$.training",
        )
        self._retry(task)
        return task

    def _failure_path(self) -> tasks.SnsPublish:
        notify = tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self.failure_topic,
            subject="Feature pipeline failed",
            message=sfn.TaskInput.from_object(
                {
                    "state_machine": sfn.JsonPath.state_machine_name,
                    "execution": sfn.JsonPath.execution_id,
                    "as_of": sfn.JsonPath.string_at(AS_OF),
                    "error": sfn.JsonPath.string_at(f"{FAILURE}.Error"),
                    "cause": sfn.JsonPath.string_at(f"{FAILURE}.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry(notify)
        notify.next(sfn.Fail(self, "Failed", error_path=f"{FAILURE}.Error", cause_path=f"{FAILURE}.Cause"))
        return notify

    # -----------------------------------------------------------------------------------------
    # Schedule
    # -----------------------------------------------------------------------------------------

    def _schedule(self, platform: PlatformConfig) -> events.Rule:
        """The rule passes the scheduled instant as ``as_of``; starts it could not deliver are kept."""
        undelivered = failure_queue(
            self,
            "UndeliveredStarts",
            holds="schedule starts EventBridge could not deliver",
            removal_policy=self._removal_policy,
        )
        rule = events.Rule(
            self,
            "Schedule",
            description=f"Starts {Names(platform).orchestration_state_machine} with the scheduled time as as_of",
            schedule=events.Schedule.expression(self._settings.schedule_expression),
            enabled=self._settings.schedule_enabled,
        )
        # An explicit role (granted states:StartExecution on this state machine only by the target).
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"EventBridge schedule of {Names(platform).orchestration_state_machine}",
        )
        acknowledge(
            role,
            {
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The policy holds the one states:StartExecution statement the schedule needs; a "
                    "managed policy would be attached to nothing else."
                ),
            },
        )
        rule.add_target(
            targets.SfnStateMachine(
                self.state_machine,
                input=events.RuleTargetInput.from_object({"as_of": events.EventField.time}),
                role=role,
                dead_letter_queue=undelivered,
                retry_attempts=10,
                max_event_age=Duration.hours(2),
            )
        )
        return rule

    def _acknowledge(self) -> None:
        acknowledge(
            self.state_machine.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "Generated by the CDK: X-Ray tracing and CloudWatch Logs vended log delivery actions "
                    "support no resource-level permissions."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The policy is generated from the state machine's tasks (exact Glue jobs, topic, "
                    "function and pipeline) for this one role; a managed policy would be attached to nothing else."
                ),
                # LambdaInvoke allows the function and its versions (<arn>:*), which the task may name.
                f"AwsSolutions-IAM5[Resource::{flatten_reference(Stack.of(self).resolve(self.baseline.function.function_arn))}:*]": (
                    "Generated by the LambdaInvoke task: the baseline_metrics function's own versions and aliases."
                ),
            },
        )
