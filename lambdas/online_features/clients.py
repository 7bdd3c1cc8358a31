"""AWS clients, created on first use (never at import, so tests can intercept them) and reused."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def dynamodb() -> Any:
    import boto3

    return boto3.client("dynamodb")


@functools.cache
def featurestore_runtime() -> Any:
    import boto3

    return boto3.client("sagemaker-featurestore-runtime")


@functools.cache
def sqs() -> Any:
    import boto3

    return boto3.client("sqs")
