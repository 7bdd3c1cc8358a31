"""Test doubles for the producer: a fault-injecting wrapper around a real (moto) Kinesis client, a
client that acknowledges everything, and a reader that drains a stream and de-aggregates it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from platform_core.kpl import UserRecord, deaggregate

PTEE = "ProvisionedThroughputExceededException"


def throttling_error(code: str) -> ClientError:
    """A whole-call error shaped as botocore raises it for a 400 answer with this code."""
    return ClientError(
        {
            "Error": {
                "Code": code,
                "Message": "Rate exceeded for stream clickstream under account 123456789012.",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "PutRecords",
    )


@dataclass
class FaultInjectingKinesis:
    """Fails a share of the entries of every PutRecords call, as Kinesis does under load.

    Failing entries are NOT forwarded to the real client (so they never land); the others are,
    and the two answers are merged back in the caller's order with ``FailedRecordCount``.
    ``whole_call_errors`` are raised, one per call, before any entry fails; ``always_fail``
    picks entries that fail on every attempt.
    """

    client: Any
    failure_rate: float = 0.2
    seed: int = 7
    whole_call_errors: list[str] = field(default_factory=list)
    always_fail: Callable[[Mapping[str, Any]], bool] = lambda _entry: False
    calls: list[list[Mapping[str, Any]]] = field(default_factory=list)
    failed_entries: list[Mapping[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def put_records(self, **kwargs: Any) -> Mapping[str, Any]:
        records: list[Mapping[str, Any]] = kwargs["Records"]
        self.calls.append(records)
        if self.whole_call_errors:
            raise throttling_error(self.whole_call_errors.pop(0))
        failing = [self.always_fail(r) or self._rng.random() < self.failure_rate for r in records]
        forwarded = [r for r, fails in zip(records, failing, strict=True) if not fails]
        answers = iter(())
        if forwarded:  # an empty PutRecords is invalid; Kinesis never sees the failed ones at all
            answers = iter(self.client.put_records(StreamName=kwargs["StreamName"], Records=forwarded)["Records"])
        merged: list[Mapping[str, Any]] = []
        for record, fails in zip(records, failing, strict=True):
            if fails:
                self.failed_entries.append(record)
                merged.append(
                    {
                        "ErrorCode": PTEE,
                        "ErrorMessage": "Rate exceeded for shard shardId-000000000001 in stream clickstream "
                        "under account 123456789012.",
                    }
                )
            else:
                merged.append(next(answers))
        return {"FailedRecordCount": sum(failing), "Records": merged, "EncryptionType": "NONE"}


@dataclass
class AcceptingKinesis:
    """Acknowledges every entry without storing anything; records what it was sent."""

    calls: list[list[Mapping[str, Any]]] = field(default_factory=list)

    def put_records(self, **kwargs: Any) -> Mapping[str, Any]:
        records = kwargs["Records"]
        self.calls.append(records)
        offset = sum(len(c) for c in self.calls[:-1])
        return {
            "FailedRecordCount": 0,
            "Records": [
                {"SequenceNumber": str(offset + i), "ShardId": "shardId-000000000000"} for i in range(len(records))
            ],
        }


@dataclass(frozen=True)
class StoredEvent:
    """One user record read back from the stream, with where it landed."""

    shard_id: str
    sequence_number: str
    kinesis_partition_key: str
    user_record: UserRecord

    @property
    def event(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.user_record.data)
        return decoded


def read_stream(client: Any, stream_name: str) -> list[StoredEvent]:
    """Every user record in the stream: GetRecords over all shards, de-aggregated."""
    stored: list[StoredEvent] = []
    for shard in client.list_shards(StreamName=stream_name)["Shards"]:
        iterator = client.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            for record in page["Records"]:
                for user_record in deaggregate(record["Data"], partition_key=record["PartitionKey"]):
                    stored.append(
                        StoredEvent(shard["ShardId"], record["SequenceNumber"], record["PartitionKey"], user_record)
                    )
            iterator = page.get("NextShardIterator")
    return stored


def sent_event_ids(calls: list[list[Mapping[str, Any]]]) -> list[str]:
    """The event ids inside every entry of every call (de-aggregated), attempts included."""
    return [
        json.loads(user_record.data)["event_id"]
        for call in calls
        for entry in call
        for user_record in deaggregate(entry["Data"], partition_key=entry["PartitionKey"])
    ]


def clickstream_event(index: int, *, sessions: int = 50, padding: int = 0) -> dict[str, Any]:
    """A valid clickstream event (no ``event_id``: the producer assigns one); ``seq`` marks its position."""
    return {
        "event_time": 1_735_732_800_000 + index,
        "event_type": ("page_view", "click", "search", "add_to_cart")[index % 4],
        "session_id": f"session-{index % sessions:04d}",
        "user_id": None if index % 5 == 0 else f"user-{index % 97}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
        "ip": "203.0.113.7",
        "referrer": "https://www.example.com/",
        "request": {
            "method": "GET",
            "path": f"/products/{index}",
            "query": "",
            "status": 200,
            "latency_ms": 12.5,
        },
        "properties": {"seq": str(index), "pad": "x" * padding},
    }
