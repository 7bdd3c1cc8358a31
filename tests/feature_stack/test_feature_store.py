"""SageMaker Feature Store: groups derived from the feature package, online KMS, offline Iceberg."""

from __future__ import annotations

import pytest

from platform_core.names import FEATURE_STORE_OFFLINE_PREFIX
from platform_core.schemas.features import FEATURE_GROUPS, feature_definitions
from stacks.constructs.feature_store import offline_table_name
from tests.feature_stack.conftest import (
    ENVIRONMENTS,
    feature_template,
    flatten,
    grants,
    lake_key_ref,
    one,
    resources,
)

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]

CURATED = "arn:aws:s3:::mlp-dev-curated-<AWS::AccountId>-<AWS::Region>"


def _group(template, physical_name: str) -> dict:
    _, group = one(template, "AWS::SageMaker::FeatureGroup", {"FeatureGroupName": physical_name})
    return group


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_feature_groups_are_defined_by_the_feature_package(dev, group):
    # Given the feature group of the dev environment
    properties = _group(dev, group.physical_name("mlp-dev"))["Properties"]
    # Then its definitions are exactly feature_definitions(group), keyed by user and event time
    assert properties["FeatureDefinitions"] == feature_definitions(group)
    assert properties["RecordIdentifierFeatureName"] == "user_id"
    assert properties["EventTimeFeatureName"] == "event_time"


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_online_store_is_encrypted_with_the_lake_key(dev, group):
    online = flatten(_group(dev, group.physical_name("mlp-dev"))["Properties"]["OnlineStoreConfig"])
    assert online == {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": lake_key_ref(dev)}}


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_offline_store_is_an_iceberg_table_of_the_lake_in_the_curated_bucket(dev, group):
    properties = flatten(_group(dev, group.physical_name("mlp-dev"))["Properties"])
    offline = properties["OfflineStoreConfig"]
    assert offline["TableFormat"] == "Iceberg"
    assert offline["DisableGlueTableCreation"] is False
    assert offline["DataCatalogConfig"] == {
        "Catalog": "AwsDataCatalog",
        "Database": "mlp_dev_lake",
        "TableName": offline_table_name(group),
    }
    assert offline["S3StorageConfig"] == {
        "S3Uri": f"s3://mlp-dev-curated-<AWS::AccountId>-<AWS::Region>/{FEATURE_STORE_OFFLINE_PREFIX}",
        "KmsKeyId": lake_key_ref(dev),
    }
    assert properties["RoleArn"].endswith(".Arn>")


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_feature_groups_are_retained(env_name):
    groups = resources(feature_template(env_name), "AWS::SageMaker::FeatureGroup")
    assert len(groups) == len(FEATURE_GROUPS)
    assert {g["DeletionPolicy"] for g in groups.values()} == {"Retain"}
    assert {g["UpdateReplacePolicy"] for g in groups.values()} == {"Retain"}


def test_offline_store_role_may_write_only_its_prefix_and_update_only_its_tables(dev):
    # Given the role every group's offline store writes with
    (role_id,) = {
        _group(dev, g.physical_name("mlp-dev"))["Properties"]["RoleArn"]["Fn::GetAtt"][0] for g in FEATURE_GROUPS
    }
    role = resources(dev, "AWS::IAM::Role")[role_id]
    # Then SageMaker (and only it) assumes it
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    # And it holds exactly the offline store's permissions
    prefix = f"{CURATED}/{FEATURE_STORE_OFFLINE_PREFIX}*"
    tables = {f"arn:aws:glue:eu-west-1:123456789012:table/mlp_dev_lake/{offline_table_name(g)}" for g in FEATURE_GROUPS}
    catalog = {
        "arn:aws:glue:eu-west-1:123456789012:catalog",
        "arn:aws:glue:eu-west-1:123456789012:database/mlp_dev_lake",
    }
    assert grants(dev, role_id) == {
        *((action, prefix) for action in ("s3:PutObject", "s3:PutObjectAcl", "s3:GetObject")),
        ("s3:GetBucketAcl", CURATED),
        *(
            (action, lake_key_ref(dev))
            for action in ("kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey")
        ),
        *((action, arn) for action in ("glue:GetTable", "glue:UpdateTable") for arn in tables | catalog),
    }
