"""Firehose delivery into the raw lake: Lambda transform, Parquet, dynamic partitions, error output.

Without a transform, records that are already in their table's shape (e.g. the video events, each
checked against its schema when it was built) are converted as they are and partitioned by the hour
they arrived, which Firehose knows without any code.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from platform_core.config import FirehoseConfig
from stacks.constructs.access import allow, allow_bucket_listing, allow_key, allow_objects
from stacks.constructs.nag import acknowledge

# Firehose fills these from the transform's metadata.partitionKeys and from its own error type.
PARTITIONED_SUFFIX = (
    "year=!{partitionKeyFromLambda:year}/month=!{partitionKeyFromLambda:month}/"
    "day=!{partitionKeyFromLambda:day}/hour=!{partitionKeyFromLambda:hour}/"
)
# Without a transform: the hour (UTC) of the oldest record's arrival on the source stream.
ARRIVAL_SUFFIX = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
ERROR_SUFFIX = "!{firehose:error-output-type}/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"


class LakeDelivery(Construct):
    """A Firehose stream from a Kinesis stream (or Direct PUT) to Parquet in the raw bucket.

    With ``transform``, the function's ``partitionKeys`` (year, month, day, hour) partition the data;
    with ``transform=None`` the records are converted as they arrive and partitioned by arrival hour.
    ``timestamp_formats`` tell the Parquet conversion how timestamps are written (Joda patterns or
    ``millis``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        delivery_stream_name: str,
        source_stream: kinesis.IStream | None,
        bucket: s3.IBucket,
        key: kms.IKey,
        transform: lambda_.IFunction | None,
        database_name: str,
        table_name: str,
        data_prefix: str,
        error_prefix: str,
        backup_prefix: str,
        settings: FirehoseConfig,
        log_retention: logs.RetentionDays,
        timestamp_formats: Sequence[str] = ("millis",),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description=f"Firehose {delivery_stream_name}: read the source, transform, write the lake",
        )
        allow_bucket_listing(self.role, bucket)
        allow_objects(
            self.role,
            bucket,
            prefixes=[data_prefix, error_prefix, backup_prefix],
            actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            reason="Firehose writes objects with generated names under its own data, error and backup prefixes.",
        )
        allow_key(self.role, key, encrypt=True, decrypt=True)
        if transform is not None:
            allow(self.role, ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"], [transform.function_arn])
        allow(
            self.role,
            ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
            [
                stack.format_arn(service="glue", resource="catalog"),
                stack.format_arn(service="glue", resource="database", resource_name=database_name),
                stack.format_arn(service="glue", resource="table", resource_name=f"{database_name}/{table_name}"),
            ],
        )
        acknowledge(
            self.role,
            {
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "Explicit least-privilege statements for this delivery stream's role only."
                ),
            },
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, encryption_key=key)
        delivery_log = logs.LogStream(
            self, "DeliveryLog", log_group=self.log_group, log_stream_name="DestinationDelivery"
        )
        backup_log = logs.LogStream(self, "BackupLog", log_group=self.log_group, log_stream_name="BackupDelivery")
        self.log_group.grant_write(self.role)

        source_configuration = None
        encryption_input = None
        if source_stream is not None:
            allow(
                self.role,
                [
                    "kinesis:DescribeStream",
                    "kinesis:GetShardIterator",
                    "kinesis:GetRecords",
                    "kinesis:ListShards",
                ],
                [source_stream.stream_arn],
            )
            source_configuration = firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=source_stream.stream_arn, role_arn=self.role.role_arn
            )
        else:
            encryption_input = firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="CUSTOMER_MANAGED_CMK", key_arn=key.key_arn
            )

        kms_config = firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
            kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(awskms_key_arn=key.key_arn)
        )
        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=delivery_stream_name,
            delivery_stream_type="KinesisStreamAsSource" if source_stream is not None else "DirectPut",
            kinesis_stream_source_configuration=source_configuration,
            delivery_stream_encryption_configuration_input=encryption_input,
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=f"{data_prefix}{PARTITIONED_SUFFIX if transform is not None else ARRIVAL_SUFFIX}",
                error_output_prefix=f"{error_prefix}{ERROR_SUFFIX}",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=settings.buffer_interval_seconds, size_in_m_bs=settings.buffer_size_mb
                ),
                # Parquet compresses its own pages (Snappy); the file itself stays uncompressed.
                compression_format="UNCOMPRESSED",
                encryption_configuration=kms_config,
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=delivery_log.log_stream_name,
                ),
                processing_configuration=_lambda_processing(transform, settings) if transform is not None else None,
                dynamic_partitioning_configuration=(
                    firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                        enabled=True,
                        retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(duration_in_seconds=300),
                    )
                    if transform is not None
                    else None
                ),
                data_format_conversion_configuration=firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                    enabled=True,
                    input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                        deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                            # As the records write them (the clickstream transform: epoch milliseconds).
                            hive_json_ser_de=firehose.CfnDeliveryStream.HiveJsonSerDeProperty(
                                timestamp_formats=list(timestamp_formats)
                            )
                        )
                    ),
                    output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                        serializer=firehose.CfnDeliveryStream.SerializerProperty(
                            parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(compression="SNAPPY")
                        )
                    ),
                    schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                        catalog_id=Aws.ACCOUNT_ID,
                        database_name=database_name,
                        table_name=table_name,
                        region=Aws.REGION,
                        role_arn=self.role.role_arn,
                        version_id="LATEST",
                    ),
                ),
                # Every source record is also kept as it arrived, so a bug in the transform never loses data.
                s3_backup_mode="Enabled",
                s3_backup_configuration=firehose.CfnDeliveryStream.S3DestinationConfigurationProperty(
                    bucket_arn=bucket.bucket_arn,
                    role_arn=self.role.role_arn,
                    prefix=f"{backup_prefix}year=!{{timestamp:yyyy}}/month=!{{timestamp:MM}}/day=!{{timestamp:dd}}/",
                    error_output_prefix=f"{error_prefix}backup-{ERROR_SUFFIX}",
                    compression_format="GZIP",
                    encryption_configuration=kms_config,
                    buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                        interval_in_seconds=settings.buffer_interval_seconds, size_in_m_bs=64
                    ),
                    cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                        enabled=True,
                        log_group_name=self.log_group.log_group_name,
                        log_stream_name=backup_log.log_stream_name,
                    ),
                ),
            ),
        )
        # Firehose checks its permissions on creation: create the role's policy first.
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        if default_policy is not None:
            self.delivery_stream.node.add_dependency(default_policy)
        if source_stream is not None:
            acknowledge(
                self.delivery_stream,
                {
                    "AwsSolutions-KDF1": (
                        "The source is a Kinesis stream encrypted with the lake key; Firehose server-side "
                        "encryption applies only to Direct PUT, and the destination is KMS-encrypted."
                    ),
                },
            )


def _lambda_processing(
    transform: lambda_.IFunction, settings: FirehoseConfig
) -> firehose.CfnDeliveryStream.ProcessingConfigurationProperty:
    return firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
        enabled=True,
        processors=[
            firehose.CfnDeliveryStream.ProcessorProperty(
                type="Lambda",
                parameters=[
                    _param("LambdaArn", transform.function_arn),
                    _param("BufferSizeInMBs", f"{settings.transform_buffer_size_mb:g}"),
                    _param("BufferIntervalInSeconds", str(settings.transform_buffer_interval_seconds)),
                    _param("NumberOfRetries", "3"),
                ],
            )
        ],
    )


def _param(name: str, value: str) -> firehose.CfnDeliveryStream.ProcessorParameterProperty:
    return firehose.CfnDeliveryStream.ProcessorParameterProperty(parameter_name=name, parameter_value=value)
