"""A moto account with the churn model's package group (tests/baseline_metrics/registry.py)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.baseline_metrics.registry import Registry


@pytest.fixture
def registry() -> Iterator[Registry]:
    with mock_aws():
        yield Registry(
            sagemaker=boto3.client("sagemaker", region_name="us-east-1"),
            s3=boto3.client("s3", region_name="us-east-1"),
        ).create()
