"""Video ingestion from cameras (docs/video.md):

    cameras (HLS URL, or a Kinesis Video stream kvs:<name>) --EventBridge schedule per camera-->
        λ video_ingest --> raw lake video/…, video-frames/…, video-quarantine/…
                       --> Kinesis video-metadata --> Firehose (Parquet) --> raw lake video-metadata/…
                       <-> DynamoDB watermark + lease per camera

The ``video-metadata`` stream, the raw bucket, the key and the Glue database come from the data
lake stack (deploy it first), found by name. This stack also holds state of its own, the watermark
table and the cameras' Kinesis Video streams: both are retained unless a dev stack explicitly opted
in to teardown, and the stack carries the environment's termination protection.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import (
    VIDEO_METADATA_BACKUP_PREFIX,
    VIDEO_METADATA_ERROR_PREFIX,
    VIDEO_METADATA_RAW_PREFIX,
    VIDEO_METADATA_RAW_TABLE,
    Names,
)
from stacks.constructs.camera_streams import CameraStreams
from stacks.constructs.lake_delivery import LakeDelivery
from stacks.constructs.lake_refs import import_lake
from stacks.constructs.lake_table import LakeTable, hourly_projection
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import log_retention
from stacks.constructs.video_ingest import VideoIngest
from stacks.constructs.video_lake import VIDEO_METADATA_TABLE, VIDEO_TIMESTAMP_FORMATS
from stacks.policies import data_removal_policy


class VideoStack(Stack):
    """Camera streams, the scheduled ingest, its watermark table, and video metadata into the lake."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        names = Names(config)
        lake = import_lake(self, config)

        self.camera_streams = CameraStreams(
            self,
            "CameraStreams",
            cameras=config.video.cameras,
            key=lake.key,
            removal_policy=data_removal_policy(config),
        )
        self.watermark_table = self._watermark_table(config, lake.key)
        self.ingest = VideoIngest(
            self,
            "Ingest",
            config=config,
            raw_bucket=lake.raw_bucket,
            key=lake.key,
            metadata_stream=lake.video_metadata_stream,
            watermark_table=self.watermark_table,
            camera_stream_arns=self.camera_streams.stream_arns,
            alarm_topic=self._alarm_topic(names),
        )

        location = f"s3://{lake.raw_bucket.bucket_name}/{VIDEO_METADATA_RAW_PREFIX}"
        self.metadata_table = LakeTable(
            self,
            "MetadataTable",
            catalog_id=self.account,
            database_name=lake.database_name,
            table_name=VIDEO_METADATA_RAW_TABLE,
            schema=VIDEO_METADATA_TABLE,
            location=location,
            parameters=hourly_projection(location),
        )
        # The events are already in the table's shape (checked against their schemas when built):
        # no transform, partitioned by the hour they arrived.
        self.metadata_delivery = LakeDelivery(
            self,
            "MetadataDelivery",
            delivery_stream_name=names.video_metadata_firehose,
            source_stream=lake.video_metadata_stream,
            bucket=lake.raw_bucket,
            key=lake.key,
            transform=None,
            database_name=lake.database_name,
            table_name=VIDEO_METADATA_RAW_TABLE,
            data_prefix=VIDEO_METADATA_RAW_PREFIX,
            error_prefix=VIDEO_METADATA_ERROR_PREFIX,
            backup_prefix=VIDEO_METADATA_BACKUP_PREFIX,
            settings=config.video.metadata_delivery,
            log_retention=log_retention(config.log_retention_days),
            timestamp_formats=VIDEO_TIMESTAMP_FORMATS,
        )
        self.metadata_delivery.delivery_stream.node.add_dependency(self.metadata_table)

    def _watermark_table(self, config: PlatformConfig, key: kms.IKey) -> dynamodb.Table:
        """One item per camera: watermark, lease and the step in flight (lambdas/video_ingest/watermark.py)."""
        table = dynamodb.Table(
            self,
            "WatermarkTable",
            table_name=Names(config).video_watermark_table,
            partition_key=dynamodb.Attribute(name="camera_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=not config.destroy_data_on_teardown,
            removal_policy=data_removal_policy(config),
        )
        acknowledge(
            table,
            {
                "NIST.800.53.R5-DynamoDBInBackupPlan": (
                    "Point-in-time recovery keeps 35 days of continuous backups of a few items per camera; "
                    "an AWS Backup plan is an account-level choice."
                ),
            },
        )
        return table

    def _alarm_topic(self, names: Names) -> sns.ITopic:
        """The platform's alarm topic (observability stack), by name: no cross-stack reference."""
        arn = self.format_arn(service="sns", resource=names.alarm_topic, arn_format=ArnFormat.NO_RESOURCE_NAME)
        return sns.Topic.from_topic_arn(self, "AlarmTopicRef", arn)
