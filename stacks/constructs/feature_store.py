"""SageMaker Feature Store: one feature group per :data:`platform_core.schemas.features.FEATURE_GROUPS`.

The definitions come from ``feature_definitions(group)``, so the online writer, the Spark snapshots
and the store cannot disagree on a name or a type. Each group has:

- an online store (latest record per user, millisecond reads for inference), encrypted with the
  lake key;
- an offline store in the curated bucket, as an Apache Iceberg table registered in the lake's Glue
  database (so Athena and Spark read it like any other lake table), written by SageMaker under a
  role that may touch only that prefix and those tables.

Feature groups hold data: they are retained unless a dev stack explicitly opted in to teardown.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from platform_core.names import FEATURE_STORE_OFFLINE_PREFIX
from platform_core.schemas.features import FeatureGroup, feature_definitions
from stacks.constructs.access import allow, allow_key, allow_objects
from stacks.constructs.nag import acknowledge

OFFLINE_TABLE_FORMAT = "Iceberg"


def offline_table_name(group: FeatureGroup) -> str:
    """Glue table of a group's offline store, e.g. ``user_clickstream_offline_store``."""
    return f"{group.name.replace('-', '_')}_offline_store"


class FeatureStore(Construct):
    """The feature groups and the role their offline stores write with."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        groups: Sequence[FeatureGroup],
        key: kms.IKey,
        bucket: s3.IBucket,
        database_name: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.offline_role = iam.Role(
            self,
            "OfflineStoreRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker Feature Store offline stores of {resource_prefix}",
        )
        # Granted first: each group then depends on the role's policy.
        self._grant_offline_store(groups, key=key, bucket=bucket, database_name=database_name)
        self.groups: dict[str, sagemaker.CfnFeatureGroup] = {}
        self.group_names: dict[str, str] = {}
        for group in groups:
            self.groups[group.name] = self._feature_group(
                group, resource_prefix=resource_prefix, key=key, bucket=bucket, database_name=database_name
            )
            self.group_names[group.name] = group.physical_name(resource_prefix)
            self.groups[group.name].apply_removal_policy(removal_policy)

    def feature_group_arn(self, group: FeatureGroup) -> str:
        return Stack.of(self).format_arn(
            service="sagemaker", resource="feature-group", resource_name=self.group_names[group.name]
        )

    def _feature_group(
        self,
        group: FeatureGroup,
        *,
        resource_prefix: str,
        key: kms.IKey,
        bucket: s3.IBucket,
        database_name: str,
    ) -> sagemaker.CfnFeatureGroup:
        construct_id = group.name.title().replace("-", "") + "FeatureGroup"
        feature_group = sagemaker.CfnFeatureGroup(
            self,
            construct_id,
            feature_group_name=group.physical_name(resource_prefix),
            description=group.doc,
            record_identifier_feature_name=group.record_identifier,
            event_time_feature_name=group.event_time,
            feature_definitions=[
                sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(
                    feature_name=d["FeatureName"], feature_type=d["FeatureType"]
                )
                for d in feature_definitions(group)
            ],
            # The two store configurations are untyped (Any) in the CDK: written in CloudFormation's own shape.
            online_store_config={"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": key.key_arn}},
            offline_store_config={
                "S3StorageConfig": {
                    "S3Uri": f"s3://{bucket.bucket_name}/{FEATURE_STORE_OFFLINE_PREFIX}",
                    "KmsKeyId": key.key_arn,
                },
                "DisableGlueTableCreation": False,
                "DataCatalogConfig": {
                    "Catalog": "AwsDataCatalog",
                    "Database": database_name,
                    "TableName": offline_table_name(group),
                },
                "TableFormat": OFFLINE_TABLE_FORMAT,
            },
            role_arn=self.offline_role.role_arn,
        )
        # SageMaker checks the role's permissions while it creates the offline store.
        policy = self.offline_role.node.find_child("DefaultPolicy")
        feature_group.node.add_dependency(policy)
        return feature_group

    def _grant_offline_store(
        self, groups: Sequence[FeatureGroup], *, key: kms.IKey, bucket: s3.IBucket, database_name: str
    ) -> None:
        """What Feature Store does with the role: write data and Iceberg metadata under the offline
        prefix, read its own metadata back, and commit to (update) its tables in the catalog."""
        stack = Stack.of(self)
        allow_objects(
            self.offline_role,
            bucket,
            prefixes=[FEATURE_STORE_OFFLINE_PREFIX],
            actions=["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject"],
            reason="Feature Store writes data and Iceberg metadata files under keys it derives from the group.",
        )
        allow(self.offline_role, ["s3:GetBucketAcl"], [bucket.bucket_arn])
        allow_key(self.offline_role, key, encrypt=True, decrypt=True)
        allow(
            self.offline_role,
            ["glue:GetTable", "glue:UpdateTable"],
            [
                stack.format_arn(service="glue", resource="catalog"),
                stack.format_arn(service="glue", resource="database", resource_name=database_name),
                *(
                    stack.format_arn(
                        service="glue", resource="table", resource_name=f"{database_name}/{offline_table_name(g)}"
                    )
                    for g in groups
                ),
            ],
        )
        acknowledge(
            self.offline_role,
            {
                "NIST.800.53.R5-IAMNoInlinePolicy": (
                    "The policy is generated from explicit least-privilege grants for this one role; a "
                    "managed policy would be attached to nothing else."
                ),
            },
        )
