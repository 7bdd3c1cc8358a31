"""AWS clients, created on first use (never at import, so tests can intercept them) and reused."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def sagemaker() -> Any:
    import boto3

    return boto3.client("sagemaker")


@functools.cache
def s3() -> Any:
    import boto3

    return boto3.client("s3")
