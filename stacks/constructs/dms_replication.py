"""AWS DMS Serverless: full load + ongoing replication of ``public.subscriptions`` into Kinesis.

The records are DMS's Kinesis JSON format (``data`` / ``metadata``) with transaction details, the
partition value and a full before image under ``before-image`` (the contract of
``lambdas/cdc_processor``); the Kinesis partition key is the primary key, prefixed with schema and
table, so every change of one user lands on one shard, in commit order.

Also here: the replication's security group, subnet group, endpoint roles, the account-level DMS
service roles (optional, see ``CdcConfig.create_dms_service_roles``) and two small alarms: a
replication failure (EventBridge) and CDC latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dms as dms
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from platform_core.config import PlatformConfig
from platform_core.schemas.cdc import DEFAULT_BEFORE_IMAGE_FIELD, SOURCE_SCHEMA_NAME, SOURCE_TABLE_NAME
from stacks.constructs.access import allow, allow_key
from stacks.constructs.failure_queue import failure_queue
from stacks.constructs.nag import acknowledge
from stacks.policies import data_removal_policy


def table_mappings(schema_name: str = SOURCE_SCHEMA_NAME, table_name: str = SOURCE_TABLE_NAME) -> dict[str, Any]:
    """Select exactly the replicated table (DMS's default Kinesis partition key is its primary key)."""
    return {
        "rules": [
            {
                "rule-type": "selection",
                "rule-id": "1",
                "rule-name": f"include-{schema_name}-{table_name}",
                "object-locator": {"schema-name": schema_name, "table-name": table_name},
                "rule-action": "include",
                "filters": [],
            }
        ]
    }


def replication_settings(before_image_field: str = DEFAULT_BEFORE_IMAGE_FIELD) -> dict[str, Any]:
    """Task settings: before images of every column, logging on, and one apply thread.

    A single apply thread keeps DMS's commit order on the stream; the processor still tolerates
    reordering (it compares source positions), but in order is cheaper (no stale changes).
    """
    logged = ("SOURCE_UNLOAD", "SOURCE_CAPTURE", "TARGET_LOAD", "TARGET_APPLY", "TASK_MANAGER")
    return {
        "BeforeImageSettings": {"EnableBeforeImage": True, "FieldName": before_image_field, "ColumnFilter": "all"},
        "Logging": {
            "EnableLogging": True,
            "LogComponents": [{"Id": component, "Severity": "LOGGER_SEVERITY_DEFAULT"} for component in logged],
        },
        "FullLoadSettings": {"TargetTablePrepMode": "DO_NOTHING"},
        "TargetMetadata": {"ParallelApplyThreads": 0, "ParallelLoadThreads": 0},
        "ErrorBehavior": {
            # A record DMS cannot convert is logged and skipped, not a reason to stop the stream.
            "DataErrorPolicy": "LOG_ERROR",
            "ApplyErrorInsertPolicy": "LOG_ERROR",
            "ApplyErrorUpdatePolicy": "LOG_ERROR",
        },
    }


class DmsReplication(Construct):
    """Replicates the database that ``source_secret`` opens into ``target_stream``.

    ``source`` is the cluster's connectable (its security group lets the replication in);
    ``endpoints`` are the interface endpoints DMS Serverless must use (Kinesis, Secrets Manager).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: PlatformConfig,
        vpc: ec2.IVpc,
        subnet_ids: Sequence[str],
        source: ec2.IConnectable,
        source_port: int,
        source_secret: secretsmanager.ISecret,
        database_name: str,
        target_stream: kinesis.IStream,
        key: kms.IKey,
        endpoints: Sequence[ec2.IConnectable],
    ) -> None:
        super().__init__(scope, construct_id)
        settings = platform.cdc
        prefix = platform.resource_prefix
        self.identifier = f"{prefix}-subscriptions-cdc"

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="DMS Serverless replication", allow_all_outbound=False
        )
        self.security_group.connections.allow_to(source, ec2.Port.tcp(source_port), "DMS to the source database")
        for endpoint in endpoints:
            self.security_group.connections.allow_to(endpoint, ec2.Port.tcp(443), "DMS to AWS service endpoints")

        service_roles = self._service_roles() if settings.create_dms_service_roles else []
        self.subnet_group = dms.CfnReplicationSubnetGroup(
            self,
            "SubnetGroup",
            replication_subnet_group_identifier=self.identifier,
            replication_subnet_group_description=f"{prefix}: subnets of the CDC replication",
            subnet_ids=list(subnet_ids),
        )
        for role in service_roles:
            # DMS checks dms-vpc-role when the subnet group is created.
            self.subnet_group.node.add_dependency(role)

        self.source_endpoint = self._source_endpoint(prefix, source_secret, database_name, key)
        self.target_endpoint = self._target_endpoint(prefix, target_stream, key)
        self.replication = dms.CfnReplicationConfig(
            self,
            "Replication",
            replication_config_identifier=self.identifier,
            resource_identifier=self.identifier,
            replication_type="full-load-and-cdc",
            source_endpoint_arn=self.source_endpoint.ref,
            target_endpoint_arn=self.target_endpoint.ref,
            table_mappings=table_mappings(),
            replication_settings=replication_settings(),
            compute_config=dms.CfnReplicationConfig.ComputeConfigProperty(
                min_capacity_units=settings.dms_min_capacity_units,
                max_capacity_units=settings.dms_max_capacity_units,
                multi_az=settings.dms_multi_az,
                replication_subnet_group_id=self.subnet_group.ref,
                vpc_security_group_ids=[self.security_group.security_group_id],
                kms_key_id=key.key_arn,
                preferred_maintenance_window="sun:04:30-sun:05:00",
            ),
        )
        self.failure_queue, self.failure_alarm = self._failure_alarm(prefix, data_removal_policy(platform))
        self.latency_alarms = [self._latency_alarm(metric, settings.dms_latency_alarm_seconds) for metric in _LATENCY]

    @property
    def replication_config_arn(self) -> str:
        return self.replication.ref

    def _service_roles(self) -> list[iam.Role]:
        """The account-level roles DMS looks up by fixed name.

        Only one stack per account can create them (a second one fails on the name), and removing
        them would break every other DMS user of the account, so they are retained.
        """
        roles = []
        for construct_id, name, policy in (
            ("VpcRole", "dms-vpc-role", "service-role/AmazonDMSVPCManagementRole"),
            ("CloudWatchLogsRole", "dms-cloudwatch-logs-role", "service-role/AmazonDMSCloudWatchLogsRole"),
        ):
            role = iam.Role(
                self,
                construct_id,
                role_name=name,
                assumed_by=iam.ServicePrincipal("dms.amazonaws.com"),
                managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(policy)],
                description=f"AWS DMS service role {name} (account-wide, found by name)",
            )
            role.apply_removal_policy(RemovalPolicy.RETAIN)
            acknowledge(
                role,
                {
                    f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]": (
                        f"DMS requires {name} with exactly this AWS-maintained service policy; DMS finds the "
                        "role by name and AWS updates the policy with the service."
                    ),
                },
            )
            roles.append(role)
        return roles

    def _source_endpoint(
        self, prefix: str, secret: secretsmanager.ISecret, database_name: str, key: kms.IKey
    ) -> dms.CfnEndpoint:
        # DMS reads the credentials (host, port, user, password) from the secret with this role,
        # so the endpoint never holds a password and follows every rotation.
        self.secrets_role = iam.Role(
            self,
            "SecretsAccessRole",
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal(f"dms.{Aws.REGION}.amazonaws.com"),
                iam.ServicePrincipal("dms.amazonaws.com"),
            ),
            description="DMS: read the source database's credentials",
        )
        allow(self.secrets_role, ["secretsmanager:GetSecretValue"], [secret.secret_arn])
        allow_key(self.secrets_role, key, decrypt=True)
        _acknowledge_inline(self.secrets_role)
        return dms.CfnEndpoint(
            self,
            "SourceEndpoint",
            endpoint_identifier=f"{prefix}-subscriptions-source",
            endpoint_type="source",
            engine_name="aurora-postgresql",
            database_name=database_name,
            ssl_mode="require",
            kms_key_id=key.key_arn,
            postgre_sql_settings=dms.CfnEndpoint.PostgreSqlSettingsProperty(
                secrets_manager_access_role_arn=self.secrets_role.role_arn,
                secrets_manager_secret_id=secret.secret_arn,
                # The heartbeat moves the replication slot while the table is quiet, so the slot
                # never pins write-ahead log that nobody needs.
                heartbeat_enable=True,
                heartbeat_frequency=5,
                # Schema changes arrive through db/migrations, not through DMS's DDL event triggers.
                capture_ddls=False,
                map_boolean_as_boolean=True,
            ),
        )

    def _target_endpoint(self, prefix: str, stream: kinesis.IStream, key: kms.IKey) -> dms.CfnEndpoint:
        self.stream_role = iam.Role(
            self,
            "StreamAccessRole",
            assumed_by=iam.ServicePrincipal("dms.amazonaws.com"),
            description="DMS: put change records to the cdc stream",
        )
        allow(
            self.stream_role, ["kinesis:DescribeStream", "kinesis:PutRecord", "kinesis:PutRecords"], [stream.stream_arn]
        )
        allow_key(self.stream_role, key, encrypt=True)
        _acknowledge_inline(self.stream_role)
        return dms.CfnEndpoint(
            self,
            "TargetEndpoint",
            endpoint_identifier=f"{prefix}-cdc-stream-target",
            endpoint_type="target",
            engine_name="kinesis",
            kms_key_id=key.key_arn,
            kinesis_settings=dms.CfnEndpoint.KinesisSettingsProperty(
                stream_arn=stream.stream_arn,
                message_format="json",
                service_access_role_arn=self.stream_role.role_arn,
                include_transaction_details=True,
                include_partition_value=True,
                partition_include_schema_table=True,
                include_null_and_empty=True,
                include_table_alter_operations=False,
                include_control_details=False,
            ),
        )

    def _failure_alarm(self, prefix: str, removal_policy: RemovalPolicy) -> tuple[sqs.Queue, cloudwatch.Alarm]:
        """DMS failure events are kept in a queue (a person reads them there) that pages when non-empty.

        The queue is SQS-encrypted rather than with the lake key: EventBridge can only deliver to a
        KMS-encrypted queue whose key policy names it, and the lake key's policy belongs to the data
        lake stack. The events hold identifiers and messages, no data.
        """
        queue = failure_queue(
            self,
            "FailureEvents",
            holds="DMS failure events",
            removal_policy=removal_policy,
            queue_name=f"{prefix}-dms-failure-events",
        )
        rule = events.Rule(
            self,
            "FailureRule",
            description=f"{prefix}: a DMS replication or task failed",
            event_pattern=events.EventPattern(source=["aws.dms"], detail={"category": ["Failure"]}),
            targets=[targets.SqsQueue(queue)],
        )
        self.failure_rule = rule
        acknowledge(
            rule,
            {
                "Serverless-EventBusDLQ": (
                    "The rule's only target is itself a durable queue in the same account; EventBridge "
                    "retries delivery to it for 24 hours, and a second queue would guard a queue."
                ),
            },
        )
        alarm = cloudwatch.Alarm(
            self,
            "FailureAlarm",
            alarm_description="A DMS replication failed: its event is in the failure queue",
            metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        return queue, alarm

    def _latency_alarm(self, metric_name: str, threshold_seconds: int) -> cloudwatch.Alarm:
        """The highest DMS latency in the account and region (a Metrics Insights query needs no
        dimension names, which differ between serverless replications and replication tasks)."""
        expression = cloudwatch.MathExpression(
            expression=f'SELECT MAX({metric_name}) FROM "AWS/DMS"',  # noqa: S608 (metric names are constants)
            label=f"max {metric_name} (seconds)",
            period=Duration.minutes(1),
        )
        return cloudwatch.Alarm(
            self,
            f"{metric_name}Alarm",
            alarm_description=(
                f"DMS {metric_name} above {threshold_seconds} s for 5 minutes: changes reach the cdc stream late"
            ),
            metric=expression,
            threshold=threshold_seconds,
            evaluation_periods=5,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


_LATENCY = ("CDCLatencySource", "CDCLatencyTarget")


def _acknowledge_inline(role: iam.Role) -> None:
    acknowledge(
        role,
        {
            "NIST.800.53.R5-IAMNoInlinePolicy": (
                "The policy is generated from explicit least-privilege grants for this one role; a "
                "managed policy would be attached to nothing else."
            ),
        },
    )
