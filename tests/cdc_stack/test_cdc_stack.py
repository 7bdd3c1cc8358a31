"""The CDC stack: source database, DMS Serverless, processor, schema registry, history job."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from platform_core.config import PlatformConfig, load_config
from platform_core.schema import avro_schema, glue_columns
from platform_core.schemas.cdc import (
    CHURN_LABEL,
    REGISTERED_SCHEMAS,
    SUBSCRIPTION_HISTORY,
    TRANSITION,
)
from stacks.cdc_stack import REGISTRY_DIR, CdcStack
from stacks.constructs.schema_registry import schema_versions
from stacks.constructs.subscriptions_database import migration_properties
from tests.cdc_stack.migrator_fakes import MIGRATIONS_DIR
from tests.infra.harness import build_stack, cfn_lint_findings, nag_findings

pytestmark = pytest.mark.xdist_group("cdk")

ENVIRONMENTS = ("dev", "prod")


def _build(env_name: str) -> Stack:
    return build_stack(lambda app, config, env: CdcStack(app, "Cdc", config=config, env=env), env_name)


@pytest.fixture(scope="module")
def stacks() -> dict[str, Stack]:
    return {env_name: _build(env_name) for env_name in ENVIRONMENTS}


@pytest.fixture(scope="module")
def templates(stacks: dict[str, Stack]) -> dict[str, Template]:
    return {env_name: Template.from_stack(stack) for env_name, stack in stacks.items()}


def only(template: Template, resource_type: str) -> dict[str, Any]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"{resource_type}: {sorted(found)}"
    return dict(next(iter(found.values())))


def config(env_name: str) -> PlatformConfig:
    return load_config(env_name)


# ---------------------------------------------------------------------------------------------
# Scanners
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_cdk_nag_reports_nothing_open(stacks: dict[str, Stack], env_name: str) -> None:
    assert nag_findings(stacks[env_name]) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_cfn_lint_reports_nothing(stacks: dict[str, Stack], env_name: str) -> None:
    assert cfn_lint_findings(stacks[env_name]) == []


def test_lake_resources_are_found_by_name_not_by_export(templates: dict[str, Template]) -> None:
    rendered = json.dumps(templates["dev"].to_json())
    assert "Fn::ImportValue" not in rendered
    assert "stream/mlp-dev-cdc" in rendered


# ---------------------------------------------------------------------------------------------
# Source database
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_cluster_is_serverless_v2_encrypted_protected_and_reachable_by_the_data_api(
    templates: dict[str, Template], env_name: str
) -> None:
    settings = config(env_name).cdc
    cluster = only(templates[env_name], "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": settings.db_min_acu,
        "MaxCapacity": settings.db_max_acu,
    }
    assert props["StorageEncrypted"] is True
    assert "SsmParameterValue" in json.dumps(props["KmsKeyId"])  # the lake key, looked up in SSM
    assert props["DeletionProtection"] is True
    assert props["BackupRetentionPeriod"] == settings.db_backup_retention_days
    assert props["EnableIAMDatabaseAuthentication"] is True
    assert props["EnableHttpEndpoint"] is True
    assert props["Port"] == settings.db_port != 5432
    assert cluster["DeletionPolicy"] == "Retain"


def test_logical_replication_is_on_for_dms(templates: dict[str, Template]) -> None:
    groups = only(templates["dev"], "AWS::RDS::DBClusterParameterGroup")
    assert groups["Properties"]["Parameters"] == {"rds.logical_replication": "1", "wal_sender_timeout": "0"}
    assert groups["Properties"]["Family"].startswith("aurora-postgresql")


@pytest.mark.parametrize(("env_name", "instances"), [("dev", 1), ("prod", 2)])
def test_a_reader_in_a_second_zone_only_where_configured(
    templates: dict[str, Template], env_name: str, instances: int
) -> None:
    assert config(env_name).cdc.db_reader is (instances == 2)
    found = templates[env_name].find_resources("AWS::RDS::DBInstance")
    assert len(found) == instances
    zones = sorted(json.dumps(r["Properties"]["AvailabilityZone"]) for r in found.values())
    assert len(set(zones)) == instances  # Fn::Select 0 and 1 of Fn::GetAZs: different zones
    for instance in found.values():
        assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
        assert instance["Properties"]["PubliclyAccessible"] is False


def test_the_network_is_private_with_endpoints_instead_of_nat(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    services = sorted(r["Properties"]["ServiceName"] for r in template.find_resources("AWS::EC2::VPCEndpoint").values())
    assert services == ["com.amazonaws.eu-west-1.kinesis-streams", "com.amazonaws.eu-west-1.secretsmanager"]
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})
    for subnet in template.find_resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_credentials_are_kms_encrypted_rotated_in_the_vpc_and_retained(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    secret = only(template, "AWS::SecretsManager::Secret")
    assert "SsmParameterValue" in json.dumps(secret["Properties"]["KmsKeyId"])
    assert secret["DeletionPolicy"] == "Retain"
    template.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {
            "HostedRotationLambda": Match.object_like(
                {"RotationType": "PostgreSQLSingleUser", "VpcSubnetIds": Match.any_value()}
            ),
            "RotationRules": {"ScheduleExpression": f"rate({config('dev').cdc.db_secret_rotation_days} days)"},
        },
    )


def test_the_migrations_are_applied_on_deploy_by_the_migrator(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    migrations = only(template, "Custom::DatabaseMigrations")
    props = migrations["Properties"]
    assert props["Migrations"] == migration_properties(MIGRATIONS_DIR)
    assert props["Migrations"][0]["Version"] == "1"
    assert props["Database"] == "subscriptions"
    assert "SubscriptionsDatabaseClusterWriter" in " ".join(migrations["DependsOn"])
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "lambdas.db_migrator.handler.handler", "FunctionName": "mlp-dev-db-migrator"},
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": [
                                    "rds-data:BeginTransaction",
                                    "rds-data:CommitTransaction",
                                    "rds-data:ExecuteStatement",
                                    "rds-data:RollbackTransaction",
                                ],
                                "Resource": Match.object_like({"Fn::Join": Match.any_value()}),
                            }
                        )
                    ]
                )
            }
        },
    )


# ---------------------------------------------------------------------------------------------
# DMS
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_dms_serverless_replicates_full_load_and_changes_multi_az_only_in_prod(
    templates: dict[str, Template], env_name: str
) -> None:
    settings = config(env_name).cdc
    props = only(templates[env_name], "AWS::DMS::ReplicationConfig")["Properties"]
    assert props["ReplicationType"] == "full-load-and-cdc"
    compute = props["ComputeConfig"]
    assert compute["MultiAZ"] is settings.dms_multi_az is (env_name == "prod")
    assert compute["MaxCapacityUnits"] == settings.dms_max_capacity_units
    assert compute["MinCapacityUnits"] == settings.dms_min_capacity_units
    (rule,) = props["TableMappings"]["rules"]
    templates[env_name].has_output("ReplicationConfigArn", {"Value": {"Ref": Match.string_like_regexp("^Replication")}})
    assert rule["rule-type"] == "selection"
    assert rule["rule-action"] == "include"
    assert rule["object-locator"] == {"schema-name": "public", "table-name": "subscriptions"}


def test_task_settings_carry_a_full_before_image_and_logging(templates: dict[str, Template]) -> None:
    settings = only(templates["dev"], "AWS::DMS::ReplicationConfig")["Properties"]["ReplicationSettings"]
    assert settings["BeforeImageSettings"] == {
        "EnableBeforeImage": True,
        "FieldName": "before-image",
        "ColumnFilter": "all",
    }
    assert settings["Logging"]["EnableLogging"] is True
    assert {c["Id"] for c in settings["Logging"]["LogComponents"]} >= {"SOURCE_CAPTURE", "TARGET_APPLY"}


def test_the_target_is_the_cdc_stream_in_json_keyed_by_primary_key(templates: dict[str, Template]) -> None:
    templates["dev"].has_resource_properties(
        "AWS::DMS::Endpoint",
        {
            "EndpointType": "target",
            "EngineName": "kinesis",
            "KinesisSettings": Match.object_like(
                {
                    "StreamArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-dev-cdc",
                    "MessageFormat": "json",
                    "IncludeTransactionDetails": True,
                    "IncludePartitionValue": True,
                    "PartitionIncludeSchemaTable": True,
                    "ServiceAccessRoleArn": Match.any_value(),
                }
            ),
        },
    )


def test_the_source_reads_its_credentials_from_secrets_manager_over_tls(templates: dict[str, Template]) -> None:
    templates["dev"].has_resource_properties(
        "AWS::DMS::Endpoint",
        {
            "EndpointType": "source",
            "EngineName": "aurora-postgresql",
            "DatabaseName": "subscriptions",
            "SslMode": "require",
            "PostgreSqlSettings": Match.object_like(
                {"SecretsManagerSecretId": Match.any_value(), "SecretsManagerAccessRoleArn": Match.any_value()}
            ),
        },
    )
    assert "Password" not in json.dumps(templates["dev"].find_resources("AWS::DMS::Endpoint"))


def test_the_stream_role_may_only_put_to_the_stream(templates: dict[str, Template]) -> None:
    templates["dev"].has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": ["kinesis:DescribeStream", "kinesis:PutRecord", "kinesis:PutRecords"],
                            "Effect": "Allow",
                            "Resource": "arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-dev-cdc",
                        }
                    ]
                )
            }
        },
    )


def test_the_account_level_dms_roles_are_created_by_name_and_retained(templates: dict[str, Template]) -> None:
    roles = templates["dev"].find_resources(
        "AWS::IAM::Role", {"Properties": {"RoleName": Match.string_like_regexp("^dms-")}}
    )
    assert sorted(r["Properties"]["RoleName"] for r in roles.values()) == ["dms-cloudwatch-logs-role", "dms-vpc-role"]
    assert {r["DeletionPolicy"] for r in roles.values()} == {"Retain"}
    subnet_group = only(templates["dev"], "AWS::DMS::ReplicationSubnetGroup")
    assert any("VpcRole" in dependency for dependency in subnet_group["DependsOn"])


def test_replication_failures_and_latency_alarm_with_thresholds_from_config(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    template.has_resource_properties(
        "AWS::Events::Rule",
        {"EventPattern": {"source": ["aws.dms"], "detail": {"category": ["Failure"]}}, "Targets": Match.any_value()},
    )
    threshold = config("dev").cdc.dms_latency_alarm_seconds
    for metric in ("CDCLatencySource", "CDCLatencyTarget"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Threshold": threshold,
                "Metrics": [Match.object_like({"Expression": f'SELECT MAX({metric}) FROM "AWS/DMS"'})],
                "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:mlp-dev-alarms"],
            },
        )


# ---------------------------------------------------------------------------------------------
# CDC processor
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_processor_consumes_the_cdc_stream_with_the_consumer_defaults(
    templates: dict[str, Template], env_name: str
) -> None:
    consumer = config(env_name).cdc.consumer
    templates[env_name].has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": f"arn:aws:kinesis:eu-west-1:123456789012:stream/mlp-{env_name}-cdc",
            "BatchSize": consumer.batch_size,
            "MaximumBatchingWindowInSeconds": consumer.max_batching_window_seconds,
            "ParallelizationFactor": consumer.parallelization_factor,
            "MaximumRetryAttempts": consumer.retry_attempts,
            "MaximumRecordAgeInSeconds": consumer.max_record_age_seconds,
            "BisectBatchOnFunctionError": True,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
        },
    )


def test_the_processor_is_configured_for_the_code(templates: dict[str, Template]) -> None:
    templates["dev"].has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "lambdas.cdc_processor.handler.handler",
            "FunctionName": "mlp-dev-cdc-processor",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "STATE_TABLE": Match.any_value(),
                        "LAKE_BUCKET": Match.any_value(),
                        "ERRORS_BUCKET": Match.any_value(),
                        "ERRORS_PREFIX": "errors/cdc/",
                        "BEFORE_IMAGE_FIELD": "before-image",
                        "SOURCE_SCHEMA": "public",
                        "DEDUP_TTL_DAYS": str(config("dev").cdc.idempotency_ttl_days),
                    }
                )
            },
        },
    )
    templates["dev"].has_resource_properties("AWS::SQS::Queue", {"QueueName": "mlp-dev-cdc-processor-dlq"})


def test_the_state_table_has_ttl_pitr_the_lake_key_and_is_retained(templates: dict[str, Template]) -> None:
    table = only(templates["dev"], "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "user_id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert "SsmParameterValue" in json.dumps(props["SSESpecification"]["KMSMasterKeyId"])
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_the_processor_may_do_exactly_what_its_code_does(templates: dict[str, Template]) -> None:
    policies = templates["dev"].find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("^ProcessorRole")}]}}
    )
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    table_statement = next(s for s in statements if "dynamodb:PutItem" in s["Action"])
    assert table_statement["Action"] == ["dynamodb:BatchGetItem", "dynamodb:PutItem"]
    (objects,) = [s for s in statements if s["Action"] == "s3:PutObject"]
    resources = [json.dumps(resource) for resource in objects["Resource"]]
    assert len(resources) == 3
    for prefix in ("/cdc/transitions/*", "/cdc/snapshots/*", "/errors/cdc/*"):
        (resource,) = [r for r in resources if prefix in r]
        assert "mlp-dev-raw-" in resource


# ---------------------------------------------------------------------------------------------
# Schema registry, catalog, history job
# ---------------------------------------------------------------------------------------------


def test_each_registered_schema_is_in_the_registry_with_backward_compatibility(
    templates: dict[str, Template],
) -> None:
    template = templates["dev"]
    registry = only(template, "AWS::Glue::Registry")
    assert registry["Properties"]["Name"] == "mlp-dev-cdc"
    assert registry["DeletionPolicy"] == "Retain"
    schemas = template.find_resources("AWS::Glue::Schema")
    assert sorted(s["Properties"]["Name"] for s in schemas.values()) == sorted(s.name for s in REGISTERED_SCHEMAS)
    for schema in REGISTERED_SCHEMAS:
        (cfn,) = [s for s in schemas.values() if s["Properties"]["Name"] == schema.name]
        assert cfn["Properties"]["Compatibility"] == "BACKWARD"
        assert cfn["Properties"]["DataFormat"] == "AVRO"
        assert cfn["DeletionPolicy"] == "Retain"
        versions = schema_versions(REGISTRY_DIR, schema)
        assert json.loads(cfn["Properties"]["SchemaDefinition"]) == json.loads(versions[0])
    # Every checked-in version after v1 is one SchemaVersion resource.
    extra_versions = sum(len(schema_versions(REGISTRY_DIR, s)) - 1 for s in REGISTERED_SCHEMAS)
    template.resource_count_is("AWS::Glue::SchemaVersion", extra_versions)


def test_history_and_labels_tables_take_their_columns_from_the_schemas(templates: dict[str, Template]) -> None:
    tables = templates["dev"].find_resources("AWS::Glue::Table")
    by_name = {t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"] for t in tables.values()}
    assert sorted(by_name) == ["cdc_snapshots", "cdc_transitions", "churn_labels", "subscription_history"]
    for name, schema, prefix in (
        ("subscription_history", SUBSCRIPTION_HISTORY, "/curated/subscription_history/"),
        ("churn_labels", CHURN_LABEL, "/curated/churn_labels/"),
    ):
        storage = by_name[name]["StorageDescriptor"]
        assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [
            (c["name"], c["type"]) for c in glue_columns(schema)
        ]
        assert "ParquetHiveSerDe" in storage["SerdeInfo"]["SerializationLibrary"]
        location = json.dumps(storage["Location"])
        assert "mlp-dev-curated-" in location and prefix in location


def test_the_transitions_table_reads_the_avro_change_log_by_date(templates: dict[str, Template]) -> None:
    tables = templates["dev"].find_resources("AWS::Glue::Table")
    (transitions,) = [
        t["Properties"]["TableInput"]
        for t in tables.values()
        if t["Properties"]["TableInput"]["Name"] == "cdc_transitions"
    ]
    storage = transitions["StorageDescriptor"]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.avro.AvroSerDe"
    assert json.loads(transitions["Parameters"]["avro.schema.literal"]) == avro_schema(TRANSITION)
    assert [(k["Name"], k["Type"]) for k in transitions["PartitionKeys"]] == [("date", "string")]
    assert transitions["Parameters"]["projection.date.format"] == "yyyy-MM-dd"
    location = json.dumps(storage["Location"])
    assert "mlp-dev-raw-" in location and "/cdc/transitions/" in location


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_history_job_is_glue_5_with_workers_from_config_and_the_code_arguments(
    templates: dict[str, Template], env_name: str
) -> None:
    platform = config(env_name)
    job = only(templates[env_name], "AWS::Glue::Job")["Properties"]
    assert job["Name"] == f"mlp-{env_name}-subscription-history"
    assert job["GlueVersion"] == "5.0"
    assert job["WorkerType"] == platform.glue.worker_type
    assert job["NumberOfWorkers"] == platform.glue.number_of_workers
    assert job["Command"]["ScriptLocation"].endswith(".py")
    arguments = job["DefaultArguments"]
    assert arguments["--churn_window_days"] == str(platform.cdc.churn_window_days)
    assert f"mlp-{env_name}-raw-" in json.dumps(arguments["--lake_bucket"])
    assert f"mlp-{env_name}-curated-" in json.dumps(arguments["--curated_bucket"])
    assert arguments["--job-bookmark-option"] == "job-bookmark-disable"  # full rebuild on every run
    assert arguments["--enable-continuous-cloudwatch-log"] == "true"
    assert arguments["--extra-py-files"].endswith(".zip")
    configuration = only(templates[env_name], "AWS::Glue::SecurityConfiguration")["Properties"]
    assert configuration["Name"] == job["Name"]
    encryption = configuration["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
