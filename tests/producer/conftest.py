"""Fixtures of the producer tests: a real Kinesis stream in moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

STREAM = "mlp-test-clickstream"


@pytest.fixture
def kinesis() -> Iterator[Any]:
    """A moto Kinesis client with a 4-shard stream named ``STREAM``."""
    with mock_aws():
        client = boto3.client("kinesis", region_name="us-east-1")
        client.create_stream(StreamName=STREAM, ShardCount=4)
        yield client


class RecordingSleep:
    """Stands in for time.sleep: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()
