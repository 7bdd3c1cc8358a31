"""Fixtures of the video tests: moto AWS (bucket, stream, watermark table), cameras on loopback,
and workers wired to them with short timeouts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.video_ingest.fetch import HttpFetcher
from lambdas.video_ingest.ingest import CameraResult, IngestOptions, VideoIngestor
from lambdas.video_ingest.sinks import Sinks
from lambdas.video_ingest.watermark import WatermarkStore
from platform_core.schemas.video import CameraConfig
from simulators.hls_camera import HlsCamera

BUCKET = "mlp-test-raw"
STREAM = "mlp-test-video-metadata"
TABLE = "mlp-test-video-watermarks"


@dataclass
class Aws:
    s3: Any
    kinesis: Any
    dynamodb: Any
    _iterator: str | None = field(default=None, repr=False)

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def events(self) -> list[dict[str, Any]]:
        """Every record on the metadata stream, oldest first (the stream has one shard)."""
        shard = self.kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
        iterator = self.kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        records: list[dict[str, Any]] = []
        while True:
            page = self.kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records += page["Records"]
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
        return [json.loads(r["Data"]) | {"_partition_key": r["PartitionKey"]} for r in records]

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["event_type"] == kind]

    def watermark(self, camera_id: str) -> int | None:
        item = self.dynamodb.get_item(TableName=TABLE, Key={"camera_id": {"S": camera_id}}).get("Item", {})
        return int(item["watermark"]["N"]) if "watermark" in item else None


@pytest.fixture(scope="session")
def _clients() -> tuple[Any, Any, Any]:
    """Clients are slow to build (~0.2 s each) and moto intercepts clients made before a mock
    starts, so the whole session shares them; every test still gets empty services."""
    return boto3.client("s3"), boto3.client("kinesis"), boto3.client("dynamodb")


@pytest.fixture
def aws(_clients: tuple[Any, Any, Any]) -> Iterator[Aws]:
    with mock_aws():
        s3, kinesis, dynamodb = _clients
        s3.create_bucket(Bucket=BUCKET)
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "camera_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "camera_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Aws(s3, kinesis, dynamodb)


@pytest.fixture
def camera_factory() -> Iterator[Callable[..., HlsCamera]]:
    """Start cameras on loopback; all are stopped when the test ends."""
    started: list[HlsCamera] = []

    def start(**kwargs: Any) -> HlsCamera:
        kwargs.setdefault("lifetime_seconds", 60.0)
        camera = HlsCamera(**kwargs).start()
        started.append(camera)
        return camera

    yield start
    for camera in started:
        camera.stop()


# Generous timeout (a loaded machine must not fake a timeout), tiny backoff (tests stay quick).
FAST_FETCH = HttpFetcher(timeout_seconds=2.0, max_attempts=3, backoff_seconds=0.01)


def make_worker(aws: Aws, **overrides: Any) -> VideoIngestor:
    """A fresh worker (its own lease identity), as a new Lambda invocation would build it."""
    defaults: dict[str, Any] = {
        "sinks": Sinks(s3=aws.s3, kinesis=aws.kinesis, bucket=BUCKET, stream=STREAM),
        "watermarks": WatermarkStore(aws.dynamodb, TABLE),
        "fetcher": FAST_FETCH,
        "options": IngestOptions(step_budget_seconds=1.0),
    }
    return VideoIngestor(**(defaults | overrides))


def run(worker: VideoIngestor, camera: CameraConfig, *, seconds: float = 60.0) -> CameraResult:
    return worker.ingest(camera, deadline=time.monotonic() + seconds)


def config_for(camera: HlsCamera, camera_id: str = "cam-1", **kwargs: Any) -> CameraConfig:
    return CameraConfig(camera_id=camera_id, source=camera.url, **kwargs)


class Serialized:
    """A client whose calls run one at a time, as the real services apply one conditional write
    atomically; moto in-process checks a condition and writes without a lock, so without this a
    test of racing threads would race inside moto rather than inside our code."""

    def __init__(self, client: Any, lock: threading.Lock) -> None:
        self._client, self._lock = client, lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def utc(text: str) -> datetime:
    """An aware UTC datetime from ``YYYY-MM-DDTHH:MM:SS``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
