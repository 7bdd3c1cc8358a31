"""Kinesis -> Lambda consumers with the safe defaults every stream consumer in the platform uses.

Partial batch responses, bisect on error, finite retries, a finite maximum record age, an encrypted
SQS on-failure destination and an iterator-age alarm: a poison pill ends in the DLQ with its
metadata instead of blocking the shard, and a consumer that falls behind pages someone.

A consumer either polls the stream (shared throughput: every reader of a shard shares its 2 MB/s
and 5 reads/s) or, with ``enhanced_fan_out``, reads through its own registered stream consumer
(``AWS::Kinesis::StreamConsumer``): a dedicated 2 MB/s per shard pushed over HTTP/2, so that it
neither slows the other readers nor is slowed by them. Both kinds keep the same safe settings.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import Names as CdkNames
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from platform_core.config import ConsumerConfig
from stacks.constructs.access import allow, allow_key
from stacks.constructs.failure_queue import failure_queue

# What Lambda does with the stream itself for a fan-out consumer (the execution-role permissions of
# the Lambda guide for Kinesis sources, minus the account-wide ListStreams), and with the consumer:
# describe it and subscribe to its shards. Exact actions: no kinesis:* anywhere.
FAN_OUT_STREAM_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)
FAN_OUT_CONSUMER_ACTIONS = ("kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard")
MAX_CONSUMER_NAME_LENGTH = 128  # Kinesis limit


class KinesisConsumer(Construct):
    """Attach ``function`` to ``stream`` with partial-failure semantics and a DLQ."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        function: lambda_.IFunction,
        settings: ConsumerConfig,
        key: kms.IKey,
        removal_policy: RemovalPolicy,
        dead_letter_queue_name: str,
        starting_position: lambda_.StartingPosition = lambda_.StartingPosition.TRIM_HORIZON,
        enhanced_fan_out: bool = False,
        consumer_name: str | None = None,
    ) -> None:
        """``dead_letter_queue_name``: ``Names.dead_letter_queue(<function>)``, the name alarms find it by.

        ``enhanced_fan_out``: read through a dedicated stream consumer named ``consumer_name``
        (unique per stream; by default derived from this construct's path) instead of polling.
        """
        super().__init__(scope, construct_id)
        self.dead_letter_queue = failure_queue(
            self,
            "OnFailureQueue",
            holds="the coordinates of stream batches the consumer gave up on (to replay from the stream)",
            removal_policy=removal_policy,
            key=key,
            queue_name=dead_letter_queue_name,
        )
        on_failure = sources.SqsDlq(self.dead_letter_queue)
        # Exactly one of the two is set: the polling event source, or the fan-out consumer and its mapping.
        self.event_source: sources.KinesisEventSource | None = None
        self.stream_consumer: kinesis.StreamConsumer | None = None
        self.event_source_mapping: lambda_.EventSourceMapping | None = None
        if enhanced_fan_out:
            self.stream_consumer = kinesis.StreamConsumer(
                self,
                "StreamConsumer",
                stream=stream,
                stream_consumer_name=consumer_name
                or CdkNames.unique_resource_name(self, max_length=MAX_CONSUMER_NAME_LENGTH, separator="-"),
            )
            # A plain mapping rather than KinesisConsumerEventSource: that one grants the stream's
            # whole read set through the CDK's grant helpers; the grants below are exact.
            self.event_source_mapping = lambda_.EventSourceMapping(
                self,
                "EventSourceMapping",
                target=function,
                event_source_arn=self.stream_consumer.stream_consumer_arn,
                starting_position=starting_position,
                batch_size=settings.batch_size,
                max_batching_window=Duration.seconds(settings.max_batching_window_seconds),
                parallelization_factor=settings.parallelization_factor,
                bisect_batch_on_error=True,
                retry_attempts=settings.retry_attempts,
                max_record_age=Duration.seconds(settings.max_record_age_seconds),
                report_batch_item_failures=True,
                on_failure=on_failure,
            )
            self._grant_fan_out(function, stream, self.stream_consumer)
            # Lambda checks the role when it creates the mapping: the grants must exist by then.
            role_policy = function.role.node.try_find_child("DefaultPolicy") if function.role is not None else None
            if role_policy is not None:
                self.event_source_mapping.node.add_dependency(role_policy)
        else:
            self.event_source = sources.KinesisEventSource(
                stream,
                starting_position=starting_position,
                batch_size=settings.batch_size,
                max_batching_window=Duration.seconds(settings.max_batching_window_seconds),
                parallelization_factor=settings.parallelization_factor,
                bisect_batch_on_error=True,
                retry_attempts=settings.retry_attempts,
                max_record_age=Duration.seconds(settings.max_record_age_seconds),
                report_batch_item_failures=True,
                on_failure=on_failure,
            )
            function.add_event_source(self.event_source)
        self.iterator_age_alarm = cloudwatch.Alarm(
            self,
            "IteratorAgeAlarm",
            alarm_description=f"{function.node.path} is falling behind its stream",
            metric=function.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(1)),
            threshold=settings.iterator_age_alarm_seconds * 1000,
            evaluation_periods=5,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dlq_depth_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterDepthAlarm",
            alarm_description=f"Records of {function.node.path} ended in the dead-letter queue",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    @property
    def event_source_arn(self) -> str:
        """What the mapping reads: the fan-out consumer's ARN, or the stream's."""
        if self.stream_consumer is not None:
            return self.stream_consumer.stream_consumer_arn
        assert self.event_source is not None
        return self.event_source.stream.stream_arn

    @staticmethod
    def _grant_fan_out(function: lambda_.IFunction, stream: kinesis.IStream, consumer: kinesis.StreamConsumer) -> None:
        """The function's role reads the stream's shards through the consumer (Lambda reads with the
        execution role); records of a KMS-encrypted stream need the stream key to decrypt."""
        allow(function, FAN_OUT_STREAM_ACTIONS, [stream.stream_arn])
        allow(function, FAN_OUT_CONSUMER_ACTIONS, [consumer.stream_consumer_arn])
        if stream.encryption_key is not None:
            allow_key(function, stream.encryption_key, decrypt=True)
