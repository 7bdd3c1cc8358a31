"""The customer-managed KMS key that encrypts the lake, the streams and the logs."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from platform_core.config import PlatformConfig
from stacks.policies import data_removal_policy


class LakeKey(Construct):
    """A rotating KMS key that CloudWatch Logs may also use for the platform's log groups."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{config.resource_prefix}/lake",
            description=f"{config.resource_prefix}: data lake, streams and logs",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            removal_policy=data_removal_policy(config),
            pending_window=Duration.days(30),
        )
        # Log groups of this account and region may encrypt with the key (KMS-encrypted logs).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                    }
                },
            )
        )
        # CloudWatch alarms and EventBridge rules publish to the KMS-encrypted alarm topic; AWS
        # services need the key policy itself to name them (IAM policies do not cover them).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmPublishers",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
