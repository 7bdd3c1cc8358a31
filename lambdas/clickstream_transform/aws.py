"""AWS access for the transform: lazily created clients, the HMAC key, the rejects file upload."""

from __future__ import annotations

import functools
from typing import Any

import boto3

from lambdas.clickstream_transform.rejects import CONTENT_TYPE, RejectsFile


@functools.cache
def s3_client() -> Any:
    """Created on first use, never at import, so tests (moto) can intercept it."""
    return boto3.client("s3")


@functools.cache
def secrets_client() -> Any:
    return boto3.client("secretsmanager")


def secret_bytes(secret_arn: str) -> bytes:
    """A secret's value as bytes: SecretBinary as is, SecretString as UTF-8."""
    value = secrets_client().get_secret_value(SecretId=secret_arn)
    if value.get("SecretBinary") is not None:
        return bytes(value["SecretBinary"])
    return str(value["SecretString"]).encode("utf-8")


def put_rejects(bucket: str, rejects: RejectsFile) -> None:
    s3_client().put_object(Bucket=bucket, Key=rejects.key, Body=rejects.body, ContentType=CONTENT_TYPE)
