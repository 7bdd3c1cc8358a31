"""How stateless stacks find the stateful resources: by name, never by stack export.

Buckets and streams have deterministic names derived from the configuration; the key's ARN is
published once in SSM by the data lake stack. Nothing here creates a CloudFormation export, so
a stateless stack can change or disappear without ever blocking an update of the data lake.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import Names


@dataclass(frozen=True)
class LakeRefs:
    key: kms.IKey
    raw_bucket: s3.IBucket
    curated_bucket: s3.IBucket
    artifacts_bucket: s3.IBucket
    clickstream_stream: kinesis.IStream
    cdc_stream: kinesis.IStream
    database_name: str
    video_metadata_stream: kinesis.IStream


def bucket_name(config: PlatformConfig, purpose: str) -> str:
    return Names(config).bucket(purpose, account=Aws.ACCOUNT_ID, region=Aws.REGION)


def stream_arn(scope: Construct, name: str) -> str:
    return Stack.of(scope).format_arn(service="kinesis", resource="stream", resource_name=name)


def import_lake(scope: Construct, config: PlatformConfig) -> LakeRefs:
    """References to the data lake stack's resources, resolved by name at deploy time."""
    names = Names(config)
    key_arn = ssm.StringParameter.value_for_string_parameter(scope, names.lake_key_arn_parameter)

    def bucket(construct_id: str, purpose: str) -> s3.IBucket:
        return s3.Bucket.from_bucket_attributes(
            scope, construct_id, bucket_name=bucket_name(config, purpose), encryption_key=key
        )

    key = kms.Key.from_key_arn(scope, "LakeKeyRef", key_arn)
    return LakeRefs(
        key=key,
        raw_bucket=bucket("RawBucketRef", "raw"),
        curated_bucket=bucket("CuratedBucketRef", "curated"),
        artifacts_bucket=bucket("ArtifactsBucketRef", "artifacts"),
        clickstream_stream=kinesis.Stream.from_stream_attributes(
            scope,
            "ClickstreamStreamRef",
            stream_arn=stream_arn(scope, names.clickstream_stream),
            encryption_key=key,
        ),
        cdc_stream=kinesis.Stream.from_stream_attributes(
            scope, "CdcStreamRef", stream_arn=stream_arn(scope, names.cdc_stream), encryption_key=key
        ),
        database_name=names.glue_database,
        video_metadata_stream=kinesis.Stream.from_stream_attributes(
            scope,
            "VideoMetadataStreamRef",
            stream_arn=stream_arn(scope, names.video_metadata_stream),
            encryption_key=key,
        ),
    )
