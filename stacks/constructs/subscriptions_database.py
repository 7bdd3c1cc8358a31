"""The OLTP source of change data capture: Aurora PostgreSQL Serverless v2 holding ``subscriptions``.

- logical replication on (``rds.logical_replication``) for DMS, which reads the write-ahead log
  through a replication slot; ``wal_sender_timeout = 0`` so that PostgreSQL never drops an idle
  DMS connection (DMS keeps the slot moving with its own heartbeat);
- private isolated subnets only, storage, Performance Insights and logs encrypted with the lake key,
  IAM authentication, deletion protection, automated backups, enhanced monitoring;
- the administrator's credentials in Secrets Manager (lake key), rotated by a Secrets Manager
  hosted rotation function inside the VPC;
- the Data API on, so that the ``db_migrator`` custom resource applies ``db/migrations`` on every
  deploy without a network path to the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from platform_core.config import PlatformConfig
from stacks.constructs.access import allow, allow_key
from stacks.constructs.nag import acknowledge
from stacks.constructs.platform_function import PlatformFunction, log_retention
from stacks.policies import data_removal_policy

# 16.x: supported by DMS as a source (3.5.3+; Serverless always runs a current engine) and by the
# Data API on Aurora Serverless v2.
ENGINE = rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_16_9)
DATABASE_NAME = "subscriptions"
ADMIN_USER = "platform_admin"
# Characters that break connection strings or shell quoting in the tools that read the secret.
_EXCLUDED_PASSWORD_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"  # noqa: S105 (not a password)
_MIGRATION_FILE = re.compile(r"V([1-9][0-9]*)__([A-Za-z0-9_]+)\.sql")

REPLICATION_PARAMETERS = {
    "rds.logical_replication": "1",
    "wal_sender_timeout": "0",
}


def migration_properties(migrations_dir: Path) -> list[dict[str, str]]:
    """``db/migrations/V<n>__<description>.sql`` as the custom resource's ``Migrations`` property.

    The SQL travels in the template: a new file changes the property, so CloudFormation sends an
    Update and the migrator applies exactly the new versions.
    """
    migrations = []
    for path in sorted(migrations_dir.glob("*.sql")):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise ValueError(f"{path.name}: migrations are named V<version>__<description>.sql")
        migrations.append({"Version": match.group(1), "Description": match.group(2), "Sql": path.read_text()})
    if not migrations:
        raise ValueError(f"no migrations in {migrations_dir}")
    return sorted(migrations, key=lambda m: int(m["Version"]))


class SubscriptionsDatabase(Construct):
    """The cluster, its credentials and rotation, and the migrations applied on deploy.

    ``availability_zones`` places the writer in the first zone and, when ``platform.cdc.db_reader``
    is on, a reader in the second (Aurora fails over to it).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        availability_zones: Sequence[str],
        platform: PlatformConfig,
        key: kms.IKey,
        migrations_dir: Path,
        secrets_endpoint: ec2.IConnectable,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = platform.cdc
        retain = data_removal_policy(platform)
        self.database_name = DATABASE_NAME
        self.port = settings.db_port
        cluster_identifier = f"{platform.resource_prefix}-subscriptions"

        self.parameter_group = rds.ParameterGroup(
            self,
            "ClusterParameters",
            engine=ENGINE,
            description=f"{cluster_identifier}: logical replication for DMS change data capture",
            parameters=REPLICATION_PARAMETERS,
        )
        # The cluster's PostgreSQL log group, created first so that it has a retention and the key.
        self.log_group = logs.LogGroup(
            self,
            "PostgresLogs",
            log_group_name=f"/aws/rds/cluster/{cluster_identifier}/postgresql",
            retention=log_retention(platform.log_retention_days),
            encryption_key=key,
            removal_policy=retain,
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            cluster_identifier=cluster_identifier,
            engine=ENGINE,
            writer=self._instance("Writer", availability_zones[0], key),
            readers=[self._instance("Reader", availability_zones[1], key, reader=True)] if settings.db_reader else [],
            serverless_v2_min_capacity=settings.db_min_acu,
            serverless_v2_max_capacity=settings.db_max_acu,
            vpc=vpc,
            vpc_subnets=subnets,
            port=settings.db_port,
            default_database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_generated_secret(
                ADMIN_USER,
                encryption_key=key,
                exclude_characters=_EXCLUDED_PASSWORD_CHARACTERS,
            ),
            parameter_group=self.parameter_group,
            storage_encrypted=True,
            storage_encryption_key=key,
            iam_authentication=True,
            enable_data_api=True,
            deletion_protection=not platform.destroy_data_on_teardown,
            backup=rds.BackupProps(
                retention=Duration.days(settings.db_backup_retention_days), preferred_window="02:00-03:00"
            ),
            preferred_maintenance_window="sun:03:30-sun:04:30",
            copy_tags_to_snapshot=True,
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=Duration.seconds(60),
            removal_policy=retain,
        )
        self.cluster.node.add_dependency(self.log_group)
        secret = self.cluster.secret
        assert secret is not None  # generated credentials always come with a secret
        self.secret: secretsmanager.ISecret = secret
        # The credentials of a retained cluster are retained with it.
        generated = self.cluster.node.find_child("Secret")
        assert isinstance(generated, secretsmanager.Secret)
        generated.apply_removal_policy(retain)
        self._rotate(vpc, subnets, platform, secrets_endpoint)
        self.migrations = self._migrations(platform, key, migrations_dir)
        self._acknowledge()

    def _instance(self, construct_id: str, zone: str, key: kms.IKey, *, reader: bool = False) -> rds.IClusterInstance:
        return rds.ClusterInstance.serverless_v2(
            construct_id,
            availability_zone=zone,
            # A reader in the writer's promotion tier scales with it, so a failover lands on an
            # instance that already has the writer's capacity.
            scale_with_writer=reader or None,
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
            enable_performance_insights=True,
            performance_insight_encryption_key=key,
        )

    def _rotate(
        self,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        platform: PlatformConfig,
        secrets_endpoint: ec2.IConnectable,
    ) -> None:
        """Hosted single-user rotation: a function AWS maintains, in the VPC, reaching the cluster
        on its port and Secrets Manager through the interface endpoint (there is no NAT)."""
        self.rotation_security_group = ec2.SecurityGroup(
            self,
            "RotationSecurityGroup",
            vpc=vpc,
            description="Secret rotation function of the subscriptions database",
            allow_all_outbound=False,
        )
        self.rotation_security_group.connections.allow_to(
            self.cluster, ec2.Port.tcp(self.port), "Rotation to the database"
        )
        self.rotation_security_group.connections.allow_to(secrets_endpoint, ec2.Port.tcp(443), "Secrets Manager")
        self.rotation = self.secret.add_rotation_schedule(
            "Rotation",
            automatically_after=Duration.days(platform.cdc.db_secret_rotation_days),
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                function_name=f"{platform.resource_prefix}-subscriptions-rotation",
                vpc=vpc,
                vpc_subnets=subnets,
                security_groups=[self.rotation_security_group],
                exclude_characters=_EXCLUDED_PASSWORD_CHARACTERS,
            ),
        )

    def _migrations(self, platform: PlatformConfig, key: kms.IKey, migrations_dir: Path) -> CustomResource:
        self.migrator = PlatformFunction(
            self,
            "Migrator",
            name="db_migrator",
            platform=platform,
            settings=platform.cdc.migrator,
            key=key,
            description="Custom resource: applies db/migrations through the RDS Data API",
            environment={"SECONDS_PER_MIGRATION": "60"},
        )
        function = self.migrator.function
        allow(
            function,
            [
                "rds-data:ExecuteStatement",
                "rds-data:BeginTransaction",
                "rds-data:CommitTransaction",
                "rds-data:RollbackTransaction",
            ],
            [self.cluster.cluster_arn],
        )
        # The Data API reads the credentials with the caller's permissions.
        allow(function, ["secretsmanager:GetSecretValue"], [self.secret.secret_arn])
        allow_key(function, key, decrypt=True)
        acknowledge(
            function,
            {
                "NIST.800.53.R5-LambdaDLQ": (
                    "CloudFormation invokes the custom resource and records every failure in the stack "
                    "events; a queued request could not be answered later (its pre-signed URL expires)."
                ),
                "Serverless-LambdaDLQ": (
                    "Custom resource: CloudFormation shows each failure with its reason in the stack events."
                ),
                "Serverless-LambdaAsyncFailureDestination": (
                    "Custom resource: CloudFormation shows each failure with its reason in the stack events."
                ),
                "NIST.800.53.R5-LambdaConcurrency": (
                    "Invoked once per deployment by CloudFormation; a reservation would only take capacity "
                    "from the account pool."
                ),
            },
        )
        resource = CustomResource(
            self,
            "Migrations",
            service_token=function.function_arn,
            resource_type="Custom::DatabaseMigrations",
            properties={
                "ClusterArn": self.cluster.cluster_arn,
                "SecretArn": self.secret.secret_arn,
                "Database": DATABASE_NAME,
                "Migrations": migration_properties(migrations_dir),
            },
        )
        # The writer must be up before statements can run (the cluster and secret are referenced).
        resource.node.add_dependency(self.cluster.node.find_child("Writer"))
        return resource

    def _acknowledge(self) -> None:
        acknowledge(
            self.cluster.node.find_child("MonitoringRole"),
            {
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonRDSEnhancedMonitoringRole]": (
                    "Enhanced monitoring needs exactly this AWS-maintained service policy (it writes the "
                    "RDSOSMetrics log group); AWS updates it with the service."
                ),
            },
        )
        acknowledge(
            self.cluster,
            {
                "NIST.800.53.R5-RDSInBackupPlan": (
                    "Aurora's continuous automated backups (point-in-time restore within the configured "
                    "retention) protect the cluster; an AWS Backup plan is an account-level choice."
                ),
            },
        )

    @property
    def endpoint_hostname(self) -> str:
        return self.cluster.cluster_endpoint.hostname
