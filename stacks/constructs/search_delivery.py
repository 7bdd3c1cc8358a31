"""Stream to search: a second Firehose that reads the clickstream stream into OpenSearch.

A separate consumer of the stream with its own transform function (the same code as the lake's,
deployed again), its own role and its own error prefix: nothing here is shared with the path that
feeds the lake, so a slow or broken domain can never hold the lake back. Daily indices
(``clickstream-YYYY-MM-DD``), failed documents kept in the raw bucket under ``errors/opensearch/``.
"""

from __future__ import annotations

from aws_cdk import Aws, CfnResource
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.names import SEARCH_ERROR_PREFIX, SEARCH_INDEX_PREFIX, SEARCH_REJECTS_PREFIX
from stacks.constructs.access import allow, allow_bucket_listing, allow_key, allow_objects
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction
from stacks.constructs.search_domain import HTTPS, WRITE_ACTIONS, SearchDomain, open_https
from stacks.constructs.search_network import SearchNetwork

_DAY_SUFFIX = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
# Firehose creates and deletes its own network interfaces in the domain's subnets with its role.
_VPC_DELIVERY_ACTIONS = [
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces",
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
]


class SearchDelivery(Construct):
    """Kinesis ``clickstream`` -> transform -> OpenSearch ``clickstream-*``, failures to S3."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        delivery_stream_name: str,
        transform_function_name: str,
        source_stream: kinesis.IStream,
        domain: SearchDomain,
        network: SearchNetwork,
        bucket: s3.IBucket,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.observability
        self.transform = self._transform(config, transform_function_name, bucket, key)

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description=f"Firehose {delivery_stream_name}: read the stream, transform, index into OpenSearch",
        )
        allow(
            self.role,
            ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"],
            [source_stream.stream_arn],
        )
        allow_key(self.role, key, encrypt=True, decrypt=True)
        allow(
            self.role,
            ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
            [self.transform.function.function_arn],
        )
        allow(self.role, ["es:DescribeDomain", "es:DescribeDomains", "es:DescribeDomainConfig"], [domain.domain_arn])
        allow(self.role, _VPC_DELIVERY_ACTIONS, ["*"])
        allow_bucket_listing(self.role, bucket)
        allow_objects(
            self.role,
            bucket,
            prefixes=[SEARCH_ERROR_PREFIX],
            actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            reason="Firehose writes failed documents with generated names under errors/opensearch/ only.",
        )
        # The domain admits the role on the HTTP API; the security plugin limits it to clickstream-*.
        domain.allow_http(self.role, WRITE_ACTIONS)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description=f"Firehose {delivery_stream_name}: HTTPS to the search domain only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.security_group_id(domain.security_group.security_group_id), HTTPS, "Firehose to OpenSearch"
        )
        self.ingress = open_https(
            self,
            "DomainIngress",
            source=self.security_group,
            target=domain.security_group,
            description="Firehose to OpenSearch",
        )

        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, encryption_key=key)
        delivery_log = logs.LogStream(
            self, "DeliveryLog", log_group=self.log_group, log_stream_name="DestinationDelivery"
        )
        backup_log = logs.LogStream(self, "BackupLog", log_group=self.log_group, log_stream_name="BackupDelivery")
        allow(self.role, ["logs:CreateLogStream", "logs:PutLogEvents"], [self.log_group.log_group_arn])

        kms_config = firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
            kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(awskms_key_arn=key.key_arn)
        )
        transform_buffer = config.clickstream.firehose
        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=delivery_stream_name,
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=source_stream.stream_arn, role_arn=self.role.role_arn
            ),
            amazonopensearchservice_destination_configuration=firehose.CfnDeliveryStream.AmazonopensearchserviceDestinationConfigurationProperty(
                domain_arn=domain.domain_arn,
                index_name=SEARCH_INDEX_PREFIX,
                # clickstream-YYYY-MM-DD: small daily indices that the retention policy deletes whole.
                index_rotation_period="OneDay",
                role_arn=self.role.role_arn,
                buffering_hints=firehose.CfnDeliveryStream.AmazonopensearchserviceBufferingHintsProperty(
                    interval_in_seconds=settings.opensearch_buffer_interval_seconds,
                    size_in_m_bs=settings.opensearch_buffer_size_mb,
                ),
                retry_options=firehose.CfnDeliveryStream.AmazonopensearchserviceRetryOptionsProperty(
                    duration_in_seconds=settings.opensearch_retry_seconds
                ),
                # Firehose's own ids are stable across its retries, so a retried bulk never duplicates.
                document_id_options=firehose.CfnDeliveryStream.DocumentIdOptionsProperty(
                    default_document_id_format="FIREHOSE_DEFAULT"
                ),
                s3_backup_mode="FailedDocumentsOnly",
                s3_configuration=firehose.CfnDeliveryStream.S3DestinationConfigurationProperty(
                    bucket_arn=bucket.bucket_arn,
                    role_arn=self.role.role_arn,
                    prefix=f"{SEARCH_ERROR_PREFIX}{_DAY_SUFFIX}",
                    error_output_prefix=f"{SEARCH_ERROR_PREFIX}!{{firehose:error-output-type}}/{_DAY_SUFFIX}",
                    compression_format="GZIP",
                    encryption_configuration=kms_config,
                    buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                        interval_in_seconds=300, size_in_m_bs=5
                    ),
                    cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                        enabled=True,
                        log_group_name=self.log_group.log_group_name,
                        log_stream_name=backup_log.log_stream_name,
                    ),
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=delivery_log.log_stream_name,
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="Lambda",
                            parameters=[
                                _param("LambdaArn", self.transform.function.function_arn),
                                _param("BufferSizeInMBs", f"{transform_buffer.transform_buffer_size_mb:g}"),
                                _param(
                                    "BufferIntervalInSeconds", str(transform_buffer.transform_buffer_interval_seconds)
                                ),
                                _param("NumberOfRetries", "3"),
                            ],
                        )
                    ],
                ),
                vpc_configuration=firehose.CfnDeliveryStream.VpcConfigurationProperty(
                    role_arn=self.role.role_arn,
                    security_group_ids=[self.security_group.security_group_id],
                    subnet_ids=[subnet.subnet_id for subnet in network.subnets.subnets],
                ),
            ),
        )
        # Firehose checks its permissions (and creates its ENIs) on creation: the policy comes first.
        policy = self.role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            self.delivery_stream.node.add_dependency(policy)
        self.delivery_stream.node.add_dependency(self.ingress)
        acknowledge(
            self.role,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "Firehose manages its network interfaces in the domain's VPC; the EC2 describe and "
                    "network-interface actions it needs support no resource-level scoping."
                ),
                "NIST.800.53.R5-IAMNoInlinePolicy": "Explicit least-privilege statements for this delivery role only.",
            },
        )
        acknowledge(
            self.delivery_stream,
            {
                "AwsSolutions-KDF1": (
                    "The source is a Kinesis stream encrypted with the lake key; Firehose server-side "
                    "encryption applies only to Direct PUT, and the backup bucket is KMS-encrypted."
                ),
            },
        )

    def _transform(
        self, config: PlatformConfig, function_name: str, bucket: s3.IBucket, key: kms.IKey
    ) -> PlatformFunction:
        settings = config.clickstream
        transform = PlatformFunction(
            self,
            "TransformFunction",
            name="clickstream_transform",
            platform=config,
            settings=settings.transform,
            key=key,
            description="Search copy of the clickstream transform (validate, enrich) for OpenSearch",
            environment={
                "IP_PROTECTION": settings.ip_protection,
                "REJECTS_BUCKET": bucket.bucket_name,
                # Its own prefix: the lake's reject counts stay the lake's.
                "REJECTS_PREFIX": SEARCH_REJECTS_PREFIX,
            },
        )
        resource = transform.function.node.default_child
        assert isinstance(resource, CfnResource)
        resource.add_property_override("FunctionName", function_name)
        allow_objects(
            transform.function,
            bucket,
            prefixes=[SEARCH_REJECTS_PREFIX],
            actions=["s3:PutObject"],
            reason="The transform writes one rejects file per batch, named by a hash of its record ids.",
        )
        allow_key(transform.function, key, encrypt=True)
        acknowledge(
            transform.function,
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
        return transform


def _param(name: str, value: str) -> firehose.CfnDeliveryStream.ProcessorParameterProperty:
    return firehose.CfnDeliveryStream.ProcessorParameterProperty(parameter_name=name, parameter_value=value)
