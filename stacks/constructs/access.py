"""Least-privilege IAM statements written out explicitly.

The CDK's ``grant*`` helpers add action wildcards (``s3:GetObject*``, ``kms:GenerateDataKey*``)
that scanners rightly flag. The platform's roles get exact actions instead; the only wildcards
left are object-key prefixes, each acknowledged with its evidence next to the grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from stacks.constructs.nag import acknowledge


def flatten_reference(value: Any) -> str:
    """The flat form cdk-nag uses for a resolved CloudFormation value in finding evidence."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if "Fn::Join" in value:
            delimiter, items = value["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in value:
            return flatten_reference(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in value:
            return flatten_reference(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{flatten_reference(value['Ref'])}>"
    raise ValueError(f"cannot flatten {value!r}")


def _policy_of(principal: iam.IPrincipal) -> IConstruct:
    """The construct whose default policy receives statements for ``principal``."""
    if isinstance(principal, iam.Role):
        return principal
    role = getattr(principal, "role", None)
    if role is None:
        raise TypeError(f"{principal} has no role to attach statements to")
    return role


def allow(principal: iam.IGrantable, actions: Sequence[str], resources: Sequence[str], **conditions: Any) -> None:
    principal.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(actions), resources=list(resources), conditions=conditions or None)
    )


def allow_objects(
    principal: iam.IGrantable,
    bucket: s3.IBucket,
    *,
    prefixes: Iterable[str],
    actions: Sequence[str],
    reason: str,
) -> None:
    """Exact object actions under key prefixes; acknowledges the prefix wildcard with ``reason``."""
    resources = [bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
    allow(principal, actions, resources)
    stack = Stack.of(bucket) if not isinstance(principal, iam.Role) else Stack.of(principal)
    acknowledge(
        _policy_of(principal.grant_principal),
        {f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(arn))}]": reason for arn in resources},
    )


def allow_bucket_listing(principal: iam.IGrantable, bucket: s3.IBucket) -> None:
    allow(
        principal,
        ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
        [bucket.bucket_arn],
    )


def allow_key(principal: iam.IGrantable, key: kms.IKey, *, encrypt: bool = False, decrypt: bool = False) -> None:
    actions = []
    if encrypt:
        actions += ["kms:GenerateDataKey", "kms:Encrypt"]
    if decrypt:
        actions += ["kms:Decrypt"]
    if not actions:
        raise ValueError("allow_key needs encrypt and/or decrypt")
    allow(principal, [*actions, "kms:DescribeKey"], [key.key_arn])
