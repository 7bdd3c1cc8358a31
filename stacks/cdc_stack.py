"""Change data capture of subscriptions:

    Aurora PostgreSQL (subscriptions) --DMS Serverless--> Kinesis ``cdc`` --> λ cdc_processor
        --> DynamoDB state (per user, idempotency) + Avro change log in the raw lake
        --> Glue job subscription_history --> SCD2 history + churn labels (curated Parquet)

The stream, buckets, key and Glue database come from the data lake stack (deploy it first). This
stack holds stateful resources of its own (the database, the state table, the schema registry);
each is retained unless a dev stack explicitly opted in to teardown, and the stack carries the
environment's termination protection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, CfnResource, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from lambdas.cdc_processor.store import TTL_ATTRIBUTE
from platform_core.config import PlatformConfig
from platform_core.names import Names
from platform_core.schema import Schema, avro_schema, glue_columns
from platform_core.schemas.cdc import (
    CDC_ERROR_PREFIX,
    CDC_SNAPSHOTS_PREFIX,
    CDC_TRANSITIONS_PREFIX,
    CHURN_LABEL,
    CHURN_LABELS_PREFIX,
    DEFAULT_BEFORE_IMAGE_FIELD,
    PRIMARY_KEY,
    REGISTERED_SCHEMAS,
    SOURCE_SCHEMA_NAME,
    STATE_SNAPSHOT,
    SUBSCRIPTION_HISTORY,
    SUBSCRIPTION_HISTORY_PREFIX,
    TRANSITION,
)
from stacks.constructs.access import allow, allow_bucket_listing, allow_key, allow_objects
from stacks.constructs.dms_replication import DmsReplication
from stacks.constructs.glue_job import GlueJob
from stacks.constructs.kinesis_consumer import KinesisConsumer
from stacks.constructs.lake_refs import LakeRefs, import_lake
from stacks.constructs.lake_table import LakeTable
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction, log_retention
from stacks.constructs.schema_registry import SchemaRegistry
from stacks.constructs.subscriptions_database import SubscriptionsDatabase
from stacks.policies import data_removal_policy

REPO_ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = REPO_ROOT / "db" / "migrations"
REGISTRY_DIR = REPO_ROOT / "platform_core" / "schemas" / "registry"
HISTORY_SCRIPT = REPO_ROOT / "glue_jobs" / "subscription_history.py"

SUBSCRIPTION_HISTORY_TABLE = "subscription_history"
CHURN_LABELS_TABLE = "churn_labels"
TRANSITIONS_TABLE = "cdc_transitions"
SNAPSHOTS_TABLE = "cdc_snapshots"

_ISOLATED = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
_ZONES = 2

_AVRO = {
    "input_format": "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
    "serde": "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
}


class CdcStack(Stack):
    """The subscriptions database, its replication, the CDC processor and the history job."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, termination_protection=config.termination_protection, **kwargs)
        names = Names(config)
        lake = import_lake(self, config)

        self.vpc, self.endpoints = self._network(config, lake.key)
        self.database = SubscriptionsDatabase(
            self,
            "SubscriptionsDatabase",
            vpc=self.vpc,
            subnets=_ISOLATED,
            availability_zones=self.availability_zones,
            platform=config,
            key=lake.key,
            migrations_dir=MIGRATIONS_DIR,
            secrets_endpoint=self.endpoints["SecretsManager"],
        )
        _name_function(self.database.migrator, names.function("db_migrator"))

        self.replication = DmsReplication(
            self,
            "Replication",
            platform=config,
            vpc=self.vpc,
            subnet_ids=self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
            source=self.database.cluster,
            source_port=self.database.port,
            source_secret=self.database.secret,
            database_name=self.database.database_name,
            target_stream=lake.cdc_stream,
            key=lake.key,
            endpoints=list(self.endpoints.values()),
        )
        # DMS reads the table's metadata when the replication starts: the table exists first.
        self.replication.replication.node.add_dependency(self.database.migrations)
        CfnOutput(
            self,
            "ReplicationConfigArn",
            value=self.replication.replication_config_arn,
            description="Start once after the first deploy: aws dms start-replication "
            "--start-replication-type start-replication --replication-config-arn <this>",
        )

        self.state_table = self._state_table(config, lake.key)
        self.processor = self._processor(config, lake)

        self.schema_registry = SchemaRegistry(
            self,
            "SchemaRegistry",
            registry_name=f"{config.resource_prefix}-cdc",
            schemas=REGISTERED_SCHEMAS,
            registry_dir=REGISTRY_DIR,
            removal_policy=data_removal_policy(config),
            description=f"{config.resource_prefix}: Avro schemas of the CDC change log",
        )
        self.tables = self._lake_tables(lake)
        self.history_job = self._history_job(config, lake)
        self._page_on(
            names.alarm_topic,
            [
                self.processor_consumer.iterator_age_alarm,
                self.processor_consumer.dlq_depth_alarm,
                self.replication.failure_alarm,
                *self.replication.latency_alarms,
            ],
        )

    @property
    def availability_zones(self) -> list[str]:
        """Two zones of the region, resolved by CloudFormation (``Fn::GetAZs``).

        Overridden so that synthesis needs no availability-zone lookup, hence no AWS credentials.
        """
        return [Fn.select(index, Fn.get_azs()) for index in range(_ZONES)]

    # -----------------------------------------------------------------------------------------
    # Network
    # -----------------------------------------------------------------------------------------

    def _network(self, config: PlatformConfig, key: kms.IKey) -> tuple[ec2.Vpc, dict[str, ec2.InterfaceVpcEndpoint]]:
        """Private isolated subnets in two zones, no NAT and no internet gateway.

        Only what runs inside needs a path out, through interface endpoints: DMS Serverless must
        reach Kinesis and Secrets Manager through endpoints, and the rotation function reaches
        Secrets Manager. Lambda functions outside the VPC reach the cluster through the Data API.
        """
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.cdc.vpc_cidr),
            max_azs=_ZONES,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24)
            ],
            # Closes the default security group (nothing here uses it), through a CDK custom resource.
            restrict_default_security_group=True,
        )
        _drop_redundant_dependency(self, "Custom::VpcRestrictDefaultSGCustomResourceProvider")
        flow_logs = logs.LogGroup(
            self,
            "VpcFlowLogs",
            retention=log_retention(config.log_retention_days),
            encryption_key=key,
        )
        flow_log = vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        acknowledge(
            flow_log,
            {
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The flow log's delivery role holds only the statements for its own log group, "
                    "generated with the flow log; a managed policy would be attached to nothing else."
                ),
            },
        )
        endpoints = {
            name: vpc.add_interface_endpoint(
                f"{name}Endpoint", service=service, subnets=_ISOLATED, open=False, private_dns_enabled=True
            )
            for name, service in (
                ("SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER),
                ("Kinesis", ec2.InterfaceVpcEndpointAwsService.KINESIS_STREAMS),
            )
        }
        return vpc, endpoints

    # -----------------------------------------------------------------------------------------
    # CDC processor
    # -----------------------------------------------------------------------------------------

    def _state_table(self, config: PlatformConfig, key: kms.IKey) -> dynamodb.Table:
        """Per-user state and dedup markers of the processor (see lambdas/cdc_processor/store.py)."""
        table = dynamodb.Table(
            self,
            "StateTable",
            table_name=f"{config.resource_prefix}-cdc-state",
            partition_key=dynamodb.Attribute(name=PRIMARY_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=not config.destroy_data_on_teardown,
            removal_policy=data_removal_policy(config),
        )
        acknowledge(
            table,
            {
                "NIST.800.53.R5-DynamoDBInBackupPlan": (
                    "Point-in-time recovery keeps continuous backups for 35 days, and the state can be "
                    "rebuilt from the change log; an AWS Backup plan is an account-level choice."
                ),
            },
        )
        return table

    def _processor(self, config: PlatformConfig, lake: LakeRefs) -> PlatformFunction:
        settings, names = config.cdc, Names(config)
        processor = PlatformFunction(
            self,
            "Processor",
            name="cdc_processor",
            platform=config,
            settings=settings.processor,
            key=lake.key,
            description="DMS change records -> subscription transitions, per-user state, Avro change log",
            environment={
                "STATE_TABLE": self.state_table.table_name,
                "LAKE_BUCKET": lake.raw_bucket.bucket_name,
                "ERRORS_BUCKET": lake.raw_bucket.bucket_name,
                "ERRORS_PREFIX": CDC_ERROR_PREFIX,
                "BEFORE_IMAGE_FIELD": DEFAULT_BEFORE_IMAGE_FIELD,
                "SOURCE_SCHEMA": SOURCE_SCHEMA_NAME,
                "DEDUP_TTL_DAYS": str(settings.idempotency_ttl_days),
            },
        )
        _name_function(processor, names.function("cdc_processor"))
        function = processor.function
        consumer = KinesisConsumer(
            self,
            "ProcessorConsumer",
            stream=lake.cdc_stream,
            function=function,
            settings=settings.consumer,
            key=lake.key,
            removal_policy=data_removal_policy(config),
            dead_letter_queue_name=names.dead_letter_queue("cdc_processor"),
        )
        # Exactly the calls lambdas/cdc_processor/store.py makes: BatchGetItem (states, markers)
        # and TransactWriteItems of Put actions (authorised as PutItem).
        allow(function, ["dynamodb:BatchGetItem", "dynamodb:PutItem"], [self.state_table.table_arn])
        allow_objects(
            function,
            lake.raw_bucket,
            prefixes=[CDC_TRANSITIONS_PREFIX, CDC_SNAPSHOTS_PREFIX, CDC_ERROR_PREFIX],
            actions=["s3:PutObject"],
            reason="The processor writes change-log and error objects under keys derived from each batch.",
        )
        allow_key(function, lake.key, encrypt=True, decrypt=True)
        acknowledge(
            function,
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
            processor.role,
            {
                f"AwsSolutions-IAM5[Action::{action}]": (
                    "Generated by the CDK for the event source mapping's on-failure destination: sending "
                    "to the KMS-encrypted dead-letter queue, on the lake key only."
                )
                for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
            },
        )
        self.processor_consumer = consumer
        return processor

    # -----------------------------------------------------------------------------------------
    # Catalog and history
    # -----------------------------------------------------------------------------------------

    def _lake_tables(self, lake: LakeRefs) -> dict[str, Construct]:
        raw, curated = lake.raw_bucket.bucket_name, lake.curated_bucket.bucket_name
        tables: dict[str, Construct] = {
            SUBSCRIPTION_HISTORY_TABLE: LakeTable(
                self,
                "SubscriptionHistoryTable",
                catalog_id=self.account,
                database_name=lake.database_name,
                table_name=SUBSCRIPTION_HISTORY_TABLE,
                schema=SUBSCRIPTION_HISTORY,
                location=f"s3://{curated}/{SUBSCRIPTION_HISTORY_PREFIX}",
            ),
            CHURN_LABELS_TABLE: LakeTable(
                self,
                "ChurnLabelsTable",
                catalog_id=self.account,
                database_name=lake.database_name,
                table_name=CHURN_LABELS_TABLE,
                schema=CHURN_LABEL,
                location=f"s3://{curated}/{CHURN_LABELS_PREFIX}",
            ),
        }
        for construct_id, table_name, schema, prefix in (
            ("TransitionsTable", TRANSITIONS_TABLE, TRANSITION, CDC_TRANSITIONS_PREFIX),
            ("SnapshotsTable", SNAPSHOTS_TABLE, STATE_SNAPSHOT, CDC_SNAPSHOTS_PREFIX),
        ):
            tables[table_name] = self._avro_table(
                construct_id, lake.database_name, table_name, schema, f"s3://{raw}/{prefix}"
            )
        return tables

    def _avro_table(
        self, construct_id: str, database_name: str, table_name: str, schema: Schema, location: str
    ) -> glue.CfnTable:
        """An Avro change-log table, partitioned by ``date=YYYY-MM-DD`` (projected, no crawler).

        The reader schema is the one the processor writes with (``avro_schema``), which the
        registry tests keep equal to the newest registered version.
        """
        avro = json.dumps(avro_schema(schema), separators=(",", ":"))
        return glue.CfnTable(
            self,
            construct_id,
            catalog_id=self.account,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table_name,
                description=schema.doc,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "avro",
                    "avro.schema.literal": avro,
                    "projection.enabled": "true",
                    "projection.date.type": "date",
                    "projection.date.format": "yyyy-MM-dd",
                    "projection.date.range": "2000-01-01,NOW",
                    "projection.date.interval": "1",
                    "projection.date.interval.unit": "DAYS",
                    "storage.location.template": f"{location}date=${{date}}/",
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name="date", type="string", comment="UTC date of change_time")
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format=_AVRO["input_format"],
                    output_format=_AVRO["output_format"],
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=_AVRO["serde"], parameters={"avro.schema.literal": avro}
                    ),
                    columns=[glue.CfnTable.ColumnProperty(**c) for c in glue_columns(schema)],
                ),
            ),
        )

    def _history_job(self, config: PlatformConfig, lake: LakeRefs) -> GlueJob:
        """SCD2 history and churn labels, rebuilt in full on each run (so no job bookmarks)."""
        job = GlueJob(
            self,
            "HistoryJob",
            job_name=Names(config).glue_job("subscription_history"),
            script=HISTORY_SCRIPT,
            platform=config,
            settings=config.glue,
            key=lake.key,
            description="CDC snapshot log -> subscription history (SCD2) and churn labels",
            arguments={
                "--lake_bucket": lake.raw_bucket.bucket_name,
                "--curated_bucket": lake.curated_bucket.bucket_name,
                "--churn_window_days": str(config.cdc.churn_window_days),
            },
            bookmarks=False,
        )
        allow_bucket_listing(job.role, lake.raw_bucket)
        allow_objects(
            job.role,
            lake.raw_bucket,
            prefixes=[CDC_SNAPSHOTS_PREFIX],
            actions=["s3:GetObject"],
            reason="The job reads every snapshot object of the change log.",
        )
        allow_bucket_listing(job.role, lake.curated_bucket)
        allow_objects(
            job.role,
            lake.curated_bucket,
            prefixes=[SUBSCRIPTION_HISTORY_PREFIX, CHURN_LABELS_PREFIX],
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            reason="The job overwrites both datasets (delete, then multipart writes) and reads the labels back.",
        )
        return job

    def _page_on(self, topic_name: str, alarms: list[cloudwatch.Alarm]) -> None:
        """Every alarm notifies the platform's alarm topic, found by name (Names.alarm_topic)."""
        topic = sns.Topic.from_topic_arn(self, "AlarmTopicRef", self.format_arn(service="sns", resource=topic_name))
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))


def _name_function(function: PlatformFunction, name: str) -> None:
    """The physical name other stacks' alarms and dashboards find the function by (Names.function)."""
    resource = function.function.node.default_child
    assert isinstance(resource, lambda_.CfnFunction)
    resource.function_name = name


def _drop_redundant_dependency(stack: Stack, provider_id: str) -> None:
    """The CDK's custom resource provider declares DependsOn on the role its handler already
    references (cfn-lint W3005); the reference alone orders them."""
    handler = stack.node.find_child(provider_id).node.find_child("Handler")
    assert isinstance(handler, CfnResource)
    handler.add_deletion_override("DependsOn")
