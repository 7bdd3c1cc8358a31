"""The stateful stack: key, buckets, streams, catalog and Athena workgroup."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from platform_core.config import StreamConfig, load_config

pytestmark = pytest.mark.xdist_group("cdk")

STATEFUL_TYPES = ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Kinesis::Stream", "AWS::Glue::Database")


def test_key_rotates_and_lets_cloudwatch_logs_encrypt(template):
    lake = template("dev", "data_lake")
    lake.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True, "RotationPeriodInDays": 365})
    lake.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with([Match.object_like({"Sid": "AllowCloudWatchLogs", "Effect": "Allow"})])
            }
        },
    )


def test_every_data_bucket_is_private_versioned_kms_and_logged(template):
    lake = template("dev", "data_lake")
    buckets = lake.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 4  # raw, curated, artifacts, access logs
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        rules = props["LifecycleConfiguration"]["Rules"]
        abort_days = load_config("dev").lake.incomplete_multipart_abort_after_days
        assert {"DaysAfterInitiation": abort_days} in [r.get("AbortIncompleteMultipartUpload") for r in rules], (
            logical_id
        )
        algorithm = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        if "AccessLogs" in logical_id:
            assert algorithm == "AES256"  # server access log delivery needs SSE-S3
        else:
            assert algorithm == "aws:kms"
            assert props["LoggingConfiguration"]["DestinationBucketName"]


def test_buckets_refuse_plain_http(template):
    lake = template("dev", "data_lake")
    policies = lake.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 4
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for s in statements
        )


def test_raw_data_moves_to_cheaper_storage_on_the_configured_days(template):
    lake = template("dev", "data_lake")
    settings = load_config("dev").lake
    lake.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Id": "TierRawData",
                                "Transitions": [
                                    {
                                        "StorageClass": "STANDARD_IA",
                                        "TransitionInDays": settings.raw_infrequent_access_after_days,
                                    },
                                    {"StorageClass": "GLACIER", "TransitionInDays": settings.raw_glacier_after_days},
                                ],
                            }
                        )
                    ]
                )
            }
        },
    )


def _lake_key_arn(lake):
    (key_id,) = lake.find_resources("AWS::KMS::Key")
    return {"Fn::GetAtt": [key_id, "Arn"]}


def test_streams_are_on_demand_and_encrypted_with_the_lake_key(template):
    lake = template("dev", "data_lake")
    lake.resource_count_is("AWS::Kinesis::Stream", 3)
    lake.has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": "mlp-dev-clickstream",
            "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": _lake_key_arn(lake)},
            "RetentionPeriodHours": load_config("dev").clickstream.stream.retention_hours,
        },
    )
    assert "ShardCount" not in json.dumps(lake.find_resources("AWS::Kinesis::Stream"))


def test_a_provisioned_stream_takes_its_shards_and_retention_from_config():
    # Given a config that provisions the clickstream stream
    import dataclasses

    from stacks.data_lake_stack import DataLakeStack
    from tests.infra.harness import build_stack

    stream_config = StreamConfig(mode="PROVISIONED", shard_count=7, retention_hours=48)

    def factory(app, config, env):
        clickstream = dataclasses.replace(config.clickstream, stream=stream_config)
        return DataLakeStack(app, "DataLake", config=dataclasses.replace(config, clickstream=clickstream), env=env)

    # When the stateful stack is synthesised
    lake = Template.from_stack(build_stack(factory))

    # Then that stream has the configured shards and retention, still under the lake key
    lake.has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": "mlp-dev-clickstream",
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},
            "ShardCount": 7,
            "RetentionPeriodHours": 48,
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": _lake_key_arn(lake)},
        },
    )


def test_athena_workgroup_enforces_encryption_and_caps_scans(template):
    lake = template("dev", "data_lake")
    lake.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "mlp-dev-analytics",
            "WorkGroupConfiguration": Match.object_like(
                {
                    "EnforceWorkGroupConfiguration": True,
                    "BytesScannedCutoffPerQuery": load_config("dev").lake.athena_bytes_scanned_cutoff,
                    "ResultConfiguration": {
                        "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": Match.any_value()},
                        "OutputLocation": Match.any_value(),
                    },
                }
            ),
        },
    )


def test_lake_key_arn_is_published_for_stateless_stacks(template):
    template("dev", "data_lake").has_resource_properties(
        "AWS::SSM::Parameter", {"Name": "/mlp-dev/lake/key-arn", "Type": "String"}
    )


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_stateful_resources_are_retained_by_default(template, env_name):
    lake = template(env_name, "data_lake")
    for resource_type in STATEFUL_TYPES:
        resources = lake.find_resources(resource_type)
        assert resources, resource_type
        for logical_id, resource in resources.items():
            assert resource["DeletionPolicy"] == "Retain", logical_id
            assert resource["UpdateReplacePolicy"] == "Retain", logical_id


def test_dev_destroys_data_only_behind_the_explicit_flag(template):
    lake = template("dev", "data_lake", destroy=True)
    for logical_id, bucket in lake.find_resources("AWS::S3::Bucket").items():
        assert bucket["DeletionPolicy"] == "Delete", logical_id
    # Objects are never auto-deleted: no custom resource empties a bucket behind anyone's back.
    assert not lake.find_resources("Custom::S3AutoDeleteObjects")


def test_prod_refuses_to_destroy_data():
    with pytest.raises(ValueError, match="prod always retains"):
        load_config("prod", destroy_data_on_teardown=True)


def test_prod_stateful_stack_has_termination_protection(platform):
    assert platform("prod").data_lake.termination_protection is True
    assert platform("dev").data_lake.termination_protection is False
