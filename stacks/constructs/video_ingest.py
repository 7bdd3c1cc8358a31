"""The video ingest function (lambdas/video_ingest) on a schedule per camera, with its failure path
and the alarms a person needs: per camera, unreachable for minutes, a failed run, no run at all;
for the function, failed invocations and schedule events EventBridge could not deliver.

Why no reserved concurrency of 1 per camera: exclusivity per camera already comes from the lease in
the watermark table (a conditional write; a second run on the same camera finds it held, reports
``busy`` and touches nothing), and a reservation could only be per function, i.e. for all cameras
at once, where it would serialise unrelated cameras and take capacity from the account pool.
Concurrency is bounded anyway: one scheduled invocation per camera and period, overlapping only
when a run outlasts the period (with the defaults, timeout 90 s and rate(1 minute), at most two per
camera, the second of which finds the lease held and returns at once).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import Names
from platform_core.schemas.video import VIDEO_FRAMES_PREFIX, VIDEO_QUARANTINE_PREFIX, VIDEO_SEGMENT_PREFIX
from stacks.constructs.access import allow, allow_key, allow_objects
from stacks.constructs.failure_queue import failure_queue
from stacks.constructs.lambda_packaging import REPO_ROOT, MissingLambdaDependenciesError
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import RUNTIME, PlatformFunction
from stacks.policies import data_removal_policy

FUNCTION = "video_ingest"
VIDEO_LAYER_DIR = REPO_ROOT / "build" / "video-deps"
# The EMF namespace the function writes (VIDEO_METRICS_NAMESPACE) and the alarms read.
METRICS_NAMESPACE = "MLPlatform/Video"
# Lambda allows 4 KB for all environment variables together; the other variables need < 500 bytes.
MAX_CAMERAS_JSON_BYTES = 3500

GE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD


@jsii.implements(lambda_.IDestination)
class QueueDestination:
    """An SQS on-failure destination granted with exact actions.

    CDK's ``SqsDestination`` grants ``kms:ReEncrypt*`` and ``kms:GenerateDataKey*`` on the queue's key;
    the function already holds the exact key actions SendMessage needs (GenerateDataKey, Decrypt)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, _scope: Construct, fn: lambda_.IFunction, *, type: lambda_.DestinationType | None = None
    ) -> lambda_.DestinationConfig:
        allow(fn, ["sqs:SendMessage"], [self._queue.queue_arn])
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


def video_layer_dir() -> Path:
    """The built PyAV layer (``python/`` inside), or a clear error telling how to build it."""
    if not (VIDEO_LAYER_DIR / "python" / "av").is_dir():
        raise MissingLambdaDependenciesError(
            f"{VIDEO_LAYER_DIR}/python/av is missing: run `make setup` (its rule .stamps/video-deps builds "
            "the PyAV layer from lambdas/video_ingest/requirements.txt for manylinux_2_28 without Docker)"
        )
    return VIDEO_LAYER_DIR


def cameras_environment(config: PlatformConfig) -> str:
    """``VIDEO_CAMERAS``: the cameras as compact JSON, refused at synth when it cannot fit Lambda's 4 KB."""
    text = json.dumps([camera.to_dict() for camera in config.video.cameras], separators=(",", ":"))
    if len(text.encode()) > MAX_CAMERAS_JSON_BYTES:
        raise ValueError(
            f"{len(config.video.cameras)} cameras need {len(text.encode())} bytes of VIDEO_CAMERAS, more than "
            f"{MAX_CAMERAS_JSON_BYTES} fit in Lambda's environment; move the list to SSM Parameter Store or S3"
        )
    return text


class VideoIngest(Construct):
    """``lambdas/video_ingest`` with its PyAV layer, one EventBridge schedule per camera, an
    encrypted on-failure queue for its asynchronous invocations, and per-camera alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        raw_bucket: s3.IBucket,
        key: kms.IKey,
        metadata_stream: kinesis.IStream,
        watermark_table: dynamodb.ITable,
        camera_stream_arns: Sequence[str],
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        names, video = Names(config), config.video
        self._config = config
        self._alarm_topic = alarm_topic
        self.alarms: list[cloudwatch.Alarm] = []

        # Only this function carries FFmpeg (~107 MB): a second layer next to the shared one.
        self.layer = lambda_.LayerVersion(
            self,
            "PyAvLayer",
            code=lambda_.Code.from_asset(str(video_layer_dir())),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="PyAV with FFmpeg (lambdas/video_ingest/requirements.txt, manylinux_2_28 wheels)",
        )
        self.platform_function = PlatformFunction(
            self,
            "Function",
            name=FUNCTION,
            platform=config,
            settings=video.ingest,
            key=key,
            description="Polls the cameras' HLS playlists; stores, probes and announces each segment once",
            environment={
                "VIDEO_RAW_BUCKET": raw_bucket.bucket_name,
                "VIDEO_METADATA_STREAM": metadata_stream.stream_name,
                "VIDEO_WATERMARK_TABLE": watermark_table.table_name,
                "VIDEO_CAMERAS": cameras_environment(config),
                "VIDEO_POLL_INTERVAL_SECONDS": f"{video.poll_interval_seconds:g}",
                "VIDEO_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            extra_layers=[self.layer],
        )
        self.function = self.platform_function.function
        # The physical name the observability stack's alarms find it by (Names.function).
        resource = self.function.node.default_child
        assert isinstance(resource, lambda_.CfnFunction)
        resource.function_name = names.function(FUNCTION)

        self._grant(raw_bucket, key, metadata_stream, watermark_table, camera_stream_arns)
        self.failures = self._on_failure_queue(key, names.dead_letter_queue(FUNCTION))
        self.function.configure_async_invoke(
            on_failure=QueueDestination(self.failures),
            retry_attempts=video.async_retry_attempts,
            max_event_age=Duration.seconds(video.max_event_age_seconds),
        )
        self.undelivered_schedules = self._undelivered_schedules_queue()
        self.schedules = {camera.camera_id: self._schedule(camera.camera_id) for camera in video.cameras}
        self._acknowledge_invocation()

        for camera in video.cameras:
            self._camera_alarms(camera.camera_id)
        self._alarm(
            "FailedRunsAlarm",
            f"{config.resource_prefix} video ingest failed invocations",
            "invocations failed or expired and are kept in the on-failure queue with their error",
            self.failures.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            operator=GT,
        )
        self._alarm(
            "UndeliveredSchedulesAlarm",
            f"{config.resource_prefix} video ingest undelivered schedules",
            "EventBridge could not invoke the function for a camera (see the queue's messages)",
            self.undelivered_schedules.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            operator=GT,
        )

    # -- permissions ---------------------------------------------------------------------------

    def _grant(
        self,
        bucket: s3.IBucket,
        key: kms.IKey,
        stream: kinesis.IStream,
        table: dynamodb.ITable,
        camera_stream_arns: Sequence[str],
    ) -> None:
        """Exactly the calls lambdas/video_ingest makes (sinks.py, watermark.py, kvs.py)."""
        function = self.function
        allow_objects(
            function,
            bucket,
            prefixes=[VIDEO_SEGMENT_PREFIX, VIDEO_FRAMES_PREFIX, VIDEO_QUARANTINE_PREFIX],
            actions=["s3:PutObject"],
            reason="Segments, frames and quarantined bytes are written at keys derived from camera and sequence.",
        )
        allow_objects(
            function,
            bucket,
            prefixes=[VIDEO_SEGMENT_PREFIX, VIDEO_QUARANTINE_PREFIX],
            actions=["s3:GetObject"],
            reason="A run that takes over an interrupted step reads the segment it may already have stored.",
        )
        # Without ListBucket, S3 answers GetObject on a missing key with 403 instead of 404, and the
        # recovery of an interrupted step (sinks.read -> None) would fail instead of going on.
        allow(function, ["s3:ListBucket"], [bucket.bucket_arn])
        allow(function, ["kinesis:PutRecord"], [stream.stream_arn])
        allow(function, ["dynamodb:UpdateItem"], [table.table_arn])
        # S3 SSE-KMS writes and reads, Kinesis and DynamoDB encrypted with the lake key.
        allow_key(function, key, encrypt=True, decrypt=True)
        if camera_stream_arns:
            allow(
                function,
                ["kinesisvideo:GetDataEndpoint", "kinesisvideo:GetHLSStreamingSessionURL"],
                list(camera_stream_arns),
            )

    # -- invocation ----------------------------------------------------------------------------

    def _on_failure_queue(self, key: kms.IKey, name: str) -> sqs.Queue:
        """Failed runs (bad event, misconfiguration, crash, expired in the async queue) with their error."""
        queue = failure_queue(
            self,
            "OnFailureQueue",
            holds="failed video ingest runs with their error",
            removal_policy=data_removal_policy(self._config),
            key=key,
            queue_name=name,
        )
        return queue

    def _undelivered_schedules_queue(self) -> sqs.Queue:
        """Schedule events EventBridge could not hand to Lambda.

        SQS-managed encryption: EventBridge may write to it without a grant in the lake key's policy,
        and it holds only the constant ``{"camera_id": ...}`` inputs."""
        queue = failure_queue(
            self,
            "UndeliveredSchedules",
            holds="camera schedule events EventBridge could not deliver",
            removal_policy=data_removal_policy(self._config),
        )
        return queue

    def _schedule(self, camera_id: str) -> events.Rule:
        video = self._config.video
        return events.Rule(
            self,
            f"Schedule-{camera_id}",
            description=f"{self._config.resource_prefix}: ingest camera {camera_id}",
            schedule=events.Schedule.rate(Duration.minutes(video.schedule_rate_minutes)),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object({"camera_id": camera_id}),
                    dead_letter_queue=self.undelivered_schedules,
                    retry_attempts=2,
                    max_event_age=Duration.seconds(video.max_event_age_seconds),
                )
            ],
        )

    def _acknowledge_invocation(self) -> None:
        acknowledge(
            self.function,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "Invoked asynchronously by EventBridge with an SQS on-failure destination, which keeps the "
                    "event together with the error and request context; a DLQ would be a poorer second copy."
                ),
                "Serverless-LambdaDLQ": (
                    "Asynchronous invocations fail into the on-failure destination (SQS) with their error."
                ),
                "NIST.800.53.R5-LambdaConcurrency": (
                    "Each camera is exclusive through its lease in the watermark table; a function-wide reservation "
                    "would serialise unrelated cameras, and one schedule per camera already bounds concurrency."
                ),
            },
        )

    # -- alarms --------------------------------------------------------------------------------

    def _camera_alarms(self, camera_id: str) -> None:
        video, prefix = self._config.video, self._config.resource_prefix

        def metric(name: str, statistic: str, minutes: int) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"camera_id": camera_id},
                statistic=statistic,
                period=Duration.minutes(minutes),
            )

        # Minimum = 1: the camera was unreachable on every run of the period, not just once.
        self._alarm(
            f"Unreachable-{camera_id}",
            f"{prefix} video {camera_id} unreachable",
            f"every run for {video.unreachable_alarm_minutes} minutes found the camera unreachable",
            metric("CameraUnreachable", "Minimum", video.unreachable_alarm_minutes),
            threshold=1,
            operator=GE,
        )
        self._alarm(
            f"IngestErrors-{camera_id}",
            f"{prefix} video {camera_id} ingest errors",
            "a run failed: bad playlist, sequence reset (see the runbook in docs/video.md) or an error",
            metric("IngestErrors", "Maximum", video.error_alarm_minutes),
            threshold=1,
            operator=GE,
        )
        # Every run reports IngestErrors (0 when healthy), so no report at all for three periods
        # means nobody ingests the camera (schedule disabled, function failing before it reports).
        # Three periods, so that a camera just added does not page before its first run reported.
        self._alarm(
            f"Silent-{camera_id}",
            f"{prefix} video {camera_id} silent",
            f"no run reported on the camera for {3 * video.error_alarm_minutes} minutes",
            metric("IngestErrors", "SampleCount", video.error_alarm_minutes),
            threshold=1,
            operator=LT,
            periods=3,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )

    def _alarm(
        self,
        construct_id: str,
        name: str,
        why: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        operator: cloudwatch.ComparisonOperator,
        periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=f"{name}: {why}.",
            metric=metric,
            threshold=threshold,
            comparison_operator=operator,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(actions.SnsAction(self._alarm_topic))
        alarm.add_ok_action(actions.SnsAction(self._alarm_topic))
        self.alarms.append(alarm)
        return alarm
