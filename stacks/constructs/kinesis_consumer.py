"""Kinesis -> Lambda consumers with the safe defaults every stream consumer in the platform uses.

Partial batch responses, bisect on error, finite retries, a finite maximum record age, an encrypted
SQS on-failure destination and an iterator-age alarm: a poison pill ends in the DLQ with its
metadata instead of blocking the shard, and a consumer that falls behind pages someone.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from constructs import Construct

from platform_core.config import ConsumerConfig
from stacks.constructs.failure_queue import failure_queue


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
    ) -> None:
        """``dead_letter_queue_name``: ``Names.dead_letter_queue(<function>)``, the name alarms find it by."""
        super().__init__(scope, construct_id)
        self.dead_letter_queue = failure_queue(
            self,
            "OnFailureQueue",
            holds="the coordinates of stream batches the consumer gave up on (to replay from the stream)",
            removal_policy=removal_policy,
            key=key,
            queue_name=dead_letter_queue_name,
        )
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
            on_failure=sources.SqsDlq(self.dead_letter_queue),
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
