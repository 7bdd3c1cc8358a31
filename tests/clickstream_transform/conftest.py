"""Fixtures for the clickstream transform: AWS-shaped Firehose events, settings, moto S3."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.clickstream_transform import aws, handler
from lambdas.clickstream_transform.settings import settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firehose"
REJECTS_BUCKET = "mlp-test-raw-lake"
REJECTS_PREFIX = "errors/clickstream/rejected/"
# The fixtures' events happened in March 2025; "now" for direct domain calls is fixed after them.
NOW_MS = 1_740_900_000_000  # 2025-03-02T07:20:00Z

# Expected outcome of each fixture record, in order (see tests/fixtures/firehose/README.md).
KINESIS_EXPECTED = (
    "Ok",
    "Ok",
    "Ok",
    "Ok",
    "Ok",
    "not_json",
    "not_object",
    "not_utf8",
    "missing_field",
    "wrong_type",
    "wrong_type",
    "unparseable_timestamp",
    "absurd_timestamp",
    "absurd_timestamp",
    "absurd_timestamp",
    "naive_timestamp",
    "unknown_event_type",
    "invalid_ip",
    "empty_field",
    "wrong_type",
)
DIRECT_PUT_EXPECTED = ("Ok", "Ok", "not_object", "naive_timestamp")


def load_fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture event (tests may modify it)."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text()))


def record_data(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["data"])


def event_bytes(**fields: Any) -> bytes:
    """A valid clickstream event with some fields replaced (a None value drops the field)."""
    event: dict[str, Any] = {
        "event_id": "0190f5a1-0000-7000-8000-0000000000aa",
        "event_time": "2025-03-01T10:15:30.250Z",
        "event_type": "page_view",
        "session_id": "sess-1",
        "user_id": "u-1",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "ip": "192.0.2.55",
        "referrer": "https://example.com/a",
        "request": {"method": "GET", "path": "/", "query": "", "status": 200, "latency_ms": 5.5},
        "properties": {"k": "v"},
    }
    for name, value in fields.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return json.dumps(event).encode()


def _clear_caches() -> None:
    settings.cache_clear()
    handler._ip_protector.cache_clear()


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """The function's environment as the stack sets it; call the fixture to change variables."""
    monkeypatch.setenv("IP_PROTECTION", "truncate")
    monkeypatch.setenv("REJECTS_BUCKET", REJECTS_BUCKET)
    monkeypatch.setenv("REJECTS_PREFIX", REJECTS_PREFIX)
    monkeypatch.delenv("IP_HASH_SECRET_ARN", raising=False)
    _clear_caches()

    def set_env(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        _clear_caches()

    yield set_env
    _clear_caches()


@pytest.fixture(scope="module")
def aws_mock() -> Iterator[None]:
    """One moto backend per test module (creating boto3 clients is the slow part of a test)."""
    aws.s3_client.cache_clear()
    aws.secrets_client.cache_clear()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=REJECTS_BUCKET)
        yield
    aws.s3_client.cache_clear()
    aws.secrets_client.cache_clear()


@pytest.fixture
def s3(aws_mock: None, lambda_env: Callable[..., None]) -> Iterator[Any]:
    """Moto S3 with an empty rejects bucket, through the function's own cached client."""
    client = aws.s3_client()
    yield client
    for item in client.list_objects_v2(Bucket=REJECTS_BUCKET).get("Contents", []):
        client.delete_object(Bucket=REJECTS_BUCKET, Key=item["Key"])
