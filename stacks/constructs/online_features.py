"""The online features consumer: clickstream stream -> λ online_features -> Feature Store (online).

The function keeps each signed-in user's recent events in a DynamoDB table (idempotent by
``event_id``, see ``lambdas/online_features/state.py``), recomputes the user's clickstream features
and puts one record into the online store. Records it cannot use go to an encrypted SQS queue with
their reason; batches that keep failing go to the consumer's on-failure queue.

The state table and the rejects queue hold data: both are retained unless a dev stack explicitly
opted in to teardown.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import Names
from platform_core.schemas.features import RECORD_IDENTIFIER
from stacks.constructs.access import allow, allow_key
from stacks.constructs.kinesis_consumer import KinesisConsumer
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction

FUNCTION = "online_features"
# The item attribute DynamoDBStateStore writes as the expiry (epoch seconds); the tests check that
# the store really writes it.
STATE_TTL_ATTRIBUTE = "expires_at"
REJECTS_RETENTION = Duration.days(14)  # SQS's maximum: time for a person to look at them


class OnlineFeatures(Construct):
    """``lambdas/online_features`` on the clickstream stream, with its state table and rejects queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        stream: kinesis.IStream,
        key: kms.IKey,
        feature_group_name: str,
        feature_group_arn: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        names = Names(platform)
        self.state_table = dynamodb.Table(
            self,
            "StateTable",
            table_name=names.online_features_state_table,
            partition_key=dynamodb.Attribute(name=RECORD_IDENTIFIER, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=STATE_TTL_ATTRIBUTE,
            deletion_protection=not platform.destroy_data_on_teardown,
            removal_policy=removal_policy,
        )
        acknowledge(
            self.state_table,
            {
                "NIST.800.53.R5-DynamoDBInBackupPlan": (
                    "Point-in-time recovery keeps continuous backups for 35 days, and the state can be "
                    "rebuilt by replaying the stream; an AWS Backup plan is an account-level choice."
                ),
            },
        )
        self.rejects_queue = sqs.Queue(
            self,
            "RejectsQueue",
            queue_name=names.online_features_rejects_queue,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=REJECTS_RETENTION,
            removal_policy=removal_policy,
        )
        acknowledge(
            self.rejects_queue,
            {
                "AwsSolutions-SQS3": (
                    "The queue is itself a dead end for records the features cannot use: people read "
                    "them with their reasons; nothing consumes them automatically."
                ),
                "Serverless-SQSRedrivePolicy": (
                    "The queue holds rejected records for a person to inspect; there is no consumer to redrive from."
                ),
            },
        )

        self.function = PlatformFunction(
            self,
            "Function",
            name=FUNCTION,
            platform=platform,
            settings=platform.features.online_function,
            key=key,
            description="Clickstream events -> per-user state -> user-clickstream online features",
            environment={
                "STATE_TABLE_NAME": self.state_table.table_name,
                "FEATURE_GROUP_NAME": feature_group_name,
                "REJECTS_QUEUE_URL": self.rejects_queue.queue_url,
                # The same gap as the Spark job's, so online and offline sessions agree.
                "SESSION_GAP_MINUTES": str(platform.glue.session_gap_minutes),
            },
        )
        function_resource = self.function.function.node.default_child
        assert isinstance(function_resource, lambda_.CfnFunction)
        function_resource.function_name = names.function(FUNCTION)  # alarms find it by this name

        self.consumer = KinesisConsumer(
            self,
            "Consumer",
            stream=stream,
            function=self.function.function,
            settings=platform.consumer,
            key=key,
            removal_policy=removal_policy,
            dead_letter_queue_name=names.dead_letter_queue(FUNCTION),
            # Its own read throughput where the stream has several busy readers (FeaturesConfig).
            enhanced_fan_out=platform.features.online_enhanced_fan_out,
            consumer_name=names.function(FUNCTION),
        )
        self._grant(key, feature_group_arn)
        self._acknowledge()

    def _grant(self, key: kms.IKey, feature_group_arn: str) -> None:
        """Exactly the calls of lambdas/online_features: GetItem/PutItem (state), PutRecord (online
        store), SendMessage (rejects); the key for the table, the queue and the online store."""
        function = self.function.function
        allow(function, ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem"], [self.state_table.table_arn])
        allow(function, ["sagemaker:PutRecord"], [feature_group_arn])
        allow(function, ["sqs:SendMessage"], [self.rejects_queue.queue_arn])
        allow_key(function, key, encrypt=True, decrypt=True)

    def _acknowledge(self) -> None:
        acknowledge(
            self.function.function,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "Invoked by a Kinesis event source mapping, whose on-failure destination (an SQS "
                    "queue) keeps every batch that failed; a function DLQ applies to async invocations only."
                ),
                "Serverless-LambdaDLQ": "Stream consumer: failed batches go to the event source mapping's SQS destination.",
                "NIST.800.53.R5-LambdaConcurrency": (
                    "Concurrency is bounded by the stream: shards times the parallelization factor of the "
                    "event source mapping."
                ),
            },
        )
        acknowledge(
            self.function.role,
            {
                f"AwsSolutions-IAM5[Action::{action}]": (
                    "Generated by the CDK for the event source mapping's on-failure destination: sending "
                    "to the KMS-encrypted dead-letter queue, on the lake key only."
                )
                for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
            },
        )
