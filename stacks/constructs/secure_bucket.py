"""S3 buckets with the platform's defaults: private, TLS-only, versioned, KMS, logged."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from platform_core.config import PlatformConfig
from stacks.constructs.nag import acknowledge
from stacks.policies import data_removal_policy

_REPLICATION_REASON = (
    "Cross-region replication is a disaster-recovery choice made per account (it needs a second "
    "region and its own key); versioning is on so that it can be added without data migration."
)


def access_logs_bucket(scope: Construct, construct_id: str, *, config: PlatformConfig, bucket_name: str) -> s3.Bucket:
    """The bucket that receives S3 server access logs of every other bucket."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name,
        # Server access log delivery supports only SSE-S3 on the target bucket.
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=data_removal_policy(config),
        lifecycle_rules=[
            s3.LifecycleRule(
                id="ExpireAccessLogs",
                expiration=Duration.days(config.lake.access_logs_expire_after_days),
                noncurrent_version_expiration=Duration.days(config.lake.noncurrent_versions_expire_after_days),
                abort_incomplete_multipart_upload_after=Duration.days(
                    config.lake.incomplete_multipart_abort_after_days
                ),
            )
        ],
    )
    acknowledge(
        bucket,
        {
            "AwsSolutions-S1": "This is the access-log bucket itself; logging it into itself would loop.",
            "NIST.800.53.R5-S3BucketLoggingEnabled": "This is the access-log bucket itself; logging it into itself would loop.",
            "NIST.800.53.R5-S3DefaultEncryptionKMS": "S3 server access log delivery only supports SSE-S3 target buckets.",
            "NIST.800.53.R5-S3BucketReplicationEnabled": _REPLICATION_REASON,
        },
    )
    return bucket


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    config: PlatformConfig,
    bucket_name: str,
    key: kms.IKey,
    access_logs: s3.IBucket,
    purpose: str,
    extra_lifecycle_rules: Sequence[s3.LifecycleRule] = (),
) -> s3.Bucket:
    """A data bucket: KMS (bucket keys on), TLS only, versioned, no public access, logged."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{purpose}/",
        removal_policy=data_removal_policy(config),
        lifecycle_rules=[
            s3.LifecycleRule(
                id="AbortIncompleteUploadsAndOldVersions",
                abort_incomplete_multipart_upload_after=Duration.days(
                    config.lake.incomplete_multipart_abort_after_days
                ),
                noncurrent_version_expiration=Duration.days(config.lake.noncurrent_versions_expire_after_days),
            ),
            *extra_lifecycle_rules,
        ],
    )
    acknowledge(bucket, {"NIST.800.53.R5-S3BucketReplicationEnabled": _REPLICATION_REASON})
    return bucket
