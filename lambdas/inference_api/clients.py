"""AWS clients, created on first use (never at import, so tests can intercept them) and reused.

Every client on the request path has a bounded time budget: a short connect timeout, a read
timeout, and at most one retry, so that a slow dependency turns into a fast, documented fallback
(503) instead of an API Gateway timeout after 29 s.
"""

from __future__ import annotations

import functools
from typing import Any

from lambdas.inference_api.settings import get_settings

CONNECT_TIMEOUT_S = 0.5
FEATURE_READ_TIMEOUT_S = 1.0
MAX_ATTEMPTS = 2  # the first call and one retry


def _config(read_timeout_s: float) -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )


@functools.cache
def featurestore_runtime() -> Any:
    import boto3

    return boto3.client("sagemaker-featurestore-runtime", config=_config(FEATURE_READ_TIMEOUT_S))


@functools.cache
def sagemaker_runtime() -> Any:
    import boto3

    return boto3.client("sagemaker-runtime", config=_config(get_settings().inference_timeout_ms / 1000))


@functools.cache
def ssm() -> Any:
    import boto3

    return boto3.client("ssm", config=_config(FEATURE_READ_TIMEOUT_S))


@functools.cache
def s3() -> Any:
    import boto3

    return boto3.client("s3")
