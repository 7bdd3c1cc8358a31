"""Clickstream ingestion: collector API -> Kinesis -> Firehose (transform, Parquet) -> raw lake."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import (
    CLICKSTREAM_BACKUP_PREFIX,
    CLICKSTREAM_ERROR_PREFIX,
    CLICKSTREAM_RAW_PREFIX,
    CLICKSTREAM_RAW_TABLE,
    CLICKSTREAM_REJECTS_PREFIX,
    Names,
)
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from stacks.constructs.access import allow, allow_key, allow_objects
from stacks.constructs.collector_api import CollectorApi
from stacks.constructs.lake_delivery import LakeDelivery
from stacks.constructs.lake_refs import import_lake
from stacks.constructs.lake_table import LakeTable, hourly_projection
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction, log_retention
from stacks.policies import data_removal_policy


class ClickstreamStack(Stack):
    """Stateless: replacing anything here never touches the stream or the lake."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = Names(config)
        lake = import_lake(self, config)
        stream, raw_bucket, key, database_name = (
            lake.clickstream_stream,
            lake.raw_bucket,
            lake.key,
            lake.database_name,
        )
        settings = config.clickstream
        retention = log_retention(config.log_retention_days)

        self.raw_table = LakeTable(
            self,
            "RawTable",
            catalog_id=self.account,
            database_name=database_name,
            table_name=CLICKSTREAM_RAW_TABLE,
            schema=CLICKSTREAM_RAW,
            location=f"s3://{raw_bucket.bucket_name}/{CLICKSTREAM_RAW_PREFIX}",
            parameters=hourly_projection(f"s3://{raw_bucket.bucket_name}/{CLICKSTREAM_RAW_PREFIX}"),
        )

        transform_environment = {
            "IP_PROTECTION": settings.ip_protection,
            "REJECTS_BUCKET": raw_bucket.bucket_name,
            "REJECTS_PREFIX": CLICKSTREAM_REJECTS_PREFIX,
        }
        ip_hash_secret = None
        if settings.ip_protection == "hash":
            ip_hash_secret = self._ip_hash_secret(config, key)
            transform_environment["IP_HASH_SECRET_ARN"] = ip_hash_secret.secret_arn

        self.transform = PlatformFunction(
            self,
            "TransformFunction",
            name="clickstream_transform",
            platform=config,
            settings=settings.transform,
            key=key,
            description="Firehose transform: validate, normalise, enrich clickstream events",
            environment=transform_environment,
        )
        if ip_hash_secret is not None:
            allow(self.transform.function, ["secretsmanager:GetSecretValue"], [ip_hash_secret.secret_arn])
            allow_key(self.transform.function, key, decrypt=True)
        allow_objects(
            self.transform.function,
            raw_bucket,
            prefixes=[CLICKSTREAM_REJECTS_PREFIX],
            actions=["s3:PutObject"],
            reason="The transform writes one rejects file per batch, named by a hash of its record ids.",
        )
        allow_key(self.transform.function, key, encrypt=True)
        acknowledge(
            self.transform.function,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "Firehose invokes the transform synchronously and keeps every record it cannot "
                    "transform in the error output; a DLQ applies only to asynchronous invocations."
                ),
                "Serverless-LambdaDLQ": (
                    "Synchronous Firehose invocation: failed records go to the Firehose error output, not a DLQ."
                ),
                "Serverless-LambdaAsyncFailureDestination": (
                    "Synchronous Firehose invocation: failed records go to the Firehose error output."
                ),
                "NIST.800.53.R5-LambdaConcurrency": (
                    "Firehose bounds concurrency itself (one invocation per shard buffer); a reservation "
                    "would only take capacity from the account pool."
                ),
            },
        )

        self.delivery = LakeDelivery(
            self,
            "LakeDelivery",
            delivery_stream_name=names.clickstream_firehose,
            source_stream=stream,
            bucket=raw_bucket,
            key=key,
            transform=self.transform.function,
            database_name=database_name,
            table_name=CLICKSTREAM_RAW_TABLE,
            data_prefix=CLICKSTREAM_RAW_PREFIX,
            error_prefix=CLICKSTREAM_ERROR_PREFIX,
            backup_prefix=CLICKSTREAM_BACKUP_PREFIX,
            settings=settings.firehose,
            log_retention=retention,
        )
        self.delivery.delivery_stream.node.add_dependency(self.raw_table)

        self.collector = CollectorApi(
            self,
            "Collector",
            api_name=f"{config.resource_prefix}-collector",
            stream=stream,
            key=key,
            settings=settings.collector,
            log_retention=retention,
        )

        if settings.iot_rule_enabled:
            self._iot_ingestion(config, raw_bucket, key, database_name, retention)

    def _ip_hash_secret(self, config: PlatformConfig, key: kms.IKey) -> secretsmanager.Secret:
        """The HMAC key for ``ip_protection = "hash"``: generated, encrypted, kept on deletion."""
        secret = secretsmanager.Secret(
            self,
            "IpHashKey",
            description="HMAC key that pseudonymises client IPs in the lake",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=48, exclude_punctuation=True),
            removal_policy=data_removal_policy(config),
        )
        acknowledge(
            secret,
            {
                "AwsSolutions-SMG4": (
                    "Rotating the HMAC key would change every pseudonymised IP and break joins across "
                    "time; it is rotated deliberately with a re-keying job, not on a schedule."
                ),
                "NIST.800.53.R5-SecretsManagerRotationEnabled": (
                    "Scheduled rotation would silently change IP pseudonyms; rotation is a planned re-keying."
                ),
            },
        )
        return secret

    def _iot_ingestion(
        self,
        config: PlatformConfig,
        raw_bucket: s3.IBucket,
        key: kms.IKey,
        database_name: str,
        retention: logs.RetentionDays,
    ) -> None:
        """Devices publish to an IoT topic; a rule forwards them to a Direct PUT Firehose into the lake."""
        names = Names(config)
        iot_delivery = LakeDelivery(
            self,
            "IotLakeDelivery",
            delivery_stream_name=f"{names.clickstream_firehose}-iot",
            source_stream=None,
            bucket=raw_bucket,
            key=key,
            transform=self.transform.function,
            database_name=database_name,
            table_name=CLICKSTREAM_RAW_TABLE,
            data_prefix=CLICKSTREAM_RAW_PREFIX,
            error_prefix=CLICKSTREAM_ERROR_PREFIX,
            backup_prefix=CLICKSTREAM_BACKUP_PREFIX,
            settings=config.clickstream.firehose,
            log_retention=retention,
        )
        rule_role = iam.Role(self, "IotRuleRole", assumed_by=iam.ServicePrincipal("iot.amazonaws.com"))
        allow(
            rule_role,
            ["firehose:PutRecord", "firehose:PutRecordBatch"],
            [iot_delivery.delivery_stream.attr_arn],
        )
        allow_key(rule_role, key, encrypt=True)
        allow_objects(
            rule_role,
            raw_bucket,
            prefixes=[f"{CLICKSTREAM_ERROR_PREFIX}iot-rule/"],
            actions=["s3:PutObject"],
            reason="The IoT rule's error action writes one object per undeliverable message.",
        )
        acknowledge(
            rule_role,
            {"NIST.800.53.R5-IAMNoInlinePolicy": "Explicit statements for this IoT rule role only."},
        )
        iot.CfnTopicRule(
            self,
            "IotClickstreamRule",
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=f"SELECT * FROM '{config.clickstream.iot_topic}'",  # noqa: S608 (topic from typed config)
                aws_iot_sql_version="2016-03-23",
                rule_disabled=False,
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        firehose=iot.CfnTopicRule.FirehoseActionProperty(
                            delivery_stream_name=iot_delivery.delivery_stream.ref,
                            role_arn=rule_role.role_arn,
                            separator="\n",
                        )
                    )
                ],
                # A message the rule cannot deliver is kept with the error in the lake.
                error_action=iot.CfnTopicRule.ActionProperty(
                    s3=iot.CfnTopicRule.S3ActionProperty(
                        bucket_name=raw_bucket.bucket_name,
                        key=f"{CLICKSTREAM_ERROR_PREFIX}iot-rule/${{timestamp()}}-${{newuuid()}}.json",
                        role_arn=rule_role.role_arn,
                    )
                ),
            ),
        )
