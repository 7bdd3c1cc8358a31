"""Stateful stack: everything that holds data lives here, apart from the code that moves it.

Replacing or deleting a stateless stack never touches these resources; in ``prod`` every one of
them is retained on deletion and the stack has termination protection.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from platform_core.config import PlatformConfig, StreamConfig
from platform_core.names import ATHENA_RESULTS_PREFIX, Names
from stacks.constructs.lake_key import LakeKey
from stacks.constructs.lake_refs import bucket_name
from stacks.constructs.nag import acknowledge
from stacks.constructs.secure_bucket import access_logs_bucket, secure_bucket
from stacks.constructs.video_lake import video_lifecycle_rules
from stacks.policies import data_removal_policy


class DataLakeStack(Stack):
    """KMS key, lake buckets, Kinesis streams, Glue database and the Athena workgroup."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        names = Names(config)
        lake = config.lake

        self.key = LakeKey(self, "LakeKey", config=config).key
        ssm.StringParameter(
            self,
            "LakeKeyArnParameter",
            parameter_name=names.lake_key_arn_parameter,
            string_value=self.key.key_arn,
            description="ARN of the lake key; stateless stacks look it up here instead of importing an export",
        )
        self.access_logs_bucket = access_logs_bucket(
            self, "AccessLogsBucket", config=config, bucket_name=bucket_name(config, "access-logs")
        )
        self.raw_bucket = secure_bucket(
            self,
            "RawBucket",
            config=config,
            bucket_name=bucket_name(config, "raw"),
            key=self.key,
            access_logs=self.access_logs_bucket,
            purpose="raw",
            extra_lifecycle_rules=[
                s3.LifecycleRule(
                    id="TierRawData",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(lake.raw_infrequent_access_after_days),
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER,
                            transition_after=Duration.days(lake.raw_glacier_after_days),
                        ),
                    ],
                ),
                # Each camera's segments, frames and quarantined segments expire after its retention.
                *video_lifecycle_rules(config.video.cameras),
            ],
        )
        self.curated_bucket = secure_bucket(
            self,
            "CuratedBucket",
            config=config,
            bucket_name=bucket_name(config, "curated"),
            key=self.key,
            access_logs=self.access_logs_bucket,
            purpose="curated",
        )
        self.artifacts_bucket = secure_bucket(
            self,
            "ArtifactsBucket",
            config=config,
            bucket_name=bucket_name(config, "artifacts"),
            key=self.key,
            access_logs=self.access_logs_bucket,
            purpose="artifacts",
        )

        self.clickstream_stream = self._stream(
            "ClickstreamStream", names.clickstream_stream, config.clickstream.stream, config
        )
        self.cdc_stream = self._stream("CdcStream", names.cdc_stream, config.cdc.stream, config)
        # Small records (one per video segment): one shard's worth is plenty, on demand keeps it simple.
        self.video_metadata_stream = self._stream(
            "VideoMetadataStream", names.video_metadata_stream, StreamConfig(), config
        )

        self.glue_database_name = names.glue_database
        self.glue_database = glue.CfnDatabase(
            self,
            "LakeDatabase",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=names.glue_database,
                description=f"{config.resource_prefix}: raw and curated lake tables",
            ),
        )
        self.glue_database.apply_removal_policy(data_removal_policy(config))

        self.athena_workgroup = athena.CfnWorkGroup(
            self,
            "AnalyticsWorkGroup",
            name=names.athena_workgroup,
            description="Queries over the lake; settings enforced on every client",
            recursive_delete_option=False,
            state="ENABLED",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=lake.athena_bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.artifacts_bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=self.key.key_arn
                    ),
                ),
            ),
        )

    def _stream(self, construct_id: str, name: str, settings: StreamConfig, config: PlatformConfig) -> kinesis.Stream:
        on_demand = settings.mode == "ON_DEMAND"
        stream = kinesis.Stream(
            self,
            construct_id,
            stream_name=name,
            stream_mode=kinesis.StreamMode.ON_DEMAND if on_demand else kinesis.StreamMode.PROVISIONED,
            shard_count=None if on_demand else settings.shard_count,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.key,
            retention_period=Duration.hours(settings.retention_hours),
            removal_policy=data_removal_policy(config),
        )
        acknowledge(
            stream,
            {
                "AwsSolutions-KDS3": (
                    "The stream uses the customer-managed lake key on purpose: rotation, key policy and "
                    "audit are ours, and consumers are granted decrypt explicitly."
                ),
            },
        )
        return stream
