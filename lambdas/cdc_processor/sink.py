"""Where the processor's results go: the Avro change log and the error objects in S3.

Keys are deterministic, so a replay overwrites instead of adding:

- ``cdc/transitions/date=YYYY-MM-DD/<batch>.avro`` and ``cdc/snapshots/date=YYYY-MM-DD/<batch>.avro``,
  with ``date`` the UTC date of the changes' commit time and ``<batch>`` the shard and the first
  and last sequence numbers of the Kinesis batch (one object per date present in the batch);
- ``errors/cdc/date=YYYY-MM-DD/<shard>-<sequence number>[-<sub-sequence>].json``: one JSON object
  per rejected record with the ``reason`` (a :class:`RejectReason` value), a ``detail`` for people,
  the Kinesis coordinates and the record's data (text when UTF-8, base64 always), dated by the
  record's arrival in the stream.

The change log is at-least-once: if a batch is retried from a later checkpoint, a transition can be
written again under another batch key with the *same* ``event_id``, so readers dedupe on it.
"""

from __future__ import annotations

import base64
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import fastavro

from lambdas.cdc_processor.dms import Rejected
from platform_core.schema import avro_schema
from platform_core.schemas.cdc import (
    CDC_ERROR_PREFIX,
    CDC_SNAPSHOTS_PREFIX,
    CDC_TRANSITIONS_PREFIX,
    STATE_SNAPSHOT,
    TRANSITION,
)

TRANSITION_AVRO = fastavro.parse_schema(avro_schema(TRANSITION))
SNAPSHOT_AVRO = fastavro.parse_schema(avro_schema(STATE_SNAPSHOT))


def encode_avro(parsed_schema: Any, records: Iterable[dict[str, Any]]) -> bytes:
    """An Avro object container file (deflate) holding the records."""
    buffer = io.BytesIO()
    fastavro.writer(buffer, parsed_schema, records, codec="deflate")
    return buffer.getvalue()


def partition_by_date(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by the UTC date of their ``change_time`` (``YYYY-MM-DD``)."""
    by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_date[record["change_time"].date().isoformat()].append(record)
    return dict(by_date)


def log_objects(
    batch_key: str, transitions: Sequence[dict[str, Any]], snapshots: Sequence[dict[str, Any]]
) -> dict[str, bytes]:
    """The change-log objects of one batch by key."""
    objects: dict[str, bytes] = {}
    for prefix, schema, records in (
        (CDC_TRANSITIONS_PREFIX, TRANSITION_AVRO, transitions),
        (CDC_SNAPSHOTS_PREFIX, SNAPSHOT_AVRO, snapshots),
    ):
        for day, day_records in sorted(partition_by_date(records).items()):
            objects[f"{prefix}date={day}/{batch_key}.avro"] = encode_avro(schema, day_records)
    return objects


def error_document(rejected: Rejected, recorded_at: datetime) -> dict[str, Any]:
    source = rejected.source
    try:
        text: str | None = source.data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "reason": rejected.reason.value,
        "detail": rejected.detail,
        "sequence_number": source.sequence_number,
        "sub_sequence_number": source.sub_sequence_number,
        "shard_id": source.shard_id,
        "partition_key": source.partition_key,
        "event_id": source.event_id,
        "event_source_arn": source.event_source_arn,
        "approximate_arrival_time": None if source.arrival_time is None else source.arrival_time.isoformat(),
        "recorded_at": recorded_at.isoformat(),
        "data_text": text,
        "data_base64": base64.b64encode(source.data).decode("ascii"),
    }


def error_key(rejected: Rejected, recorded_at: datetime, prefix: str = CDC_ERROR_PREFIX) -> str:
    source = rejected.source
    day = (source.arrival_time or recorded_at).date().isoformat()
    return f"{prefix}date={day}/{source.shard_id}-{source.ref}.json"


class Sink(Protocol):
    def write_log(self, objects: dict[str, bytes]) -> None: ...

    def write_errors(self, rejected: Sequence[Rejected], recorded_at: datetime) -> None: ...


@dataclass
class S3Sink:
    """Writes the change log to the lake bucket and error objects to the errors bucket."""

    lake_bucket: str
    errors_bucket: str
    errors_prefix: str
    client: Callable[[], Any]  # a cached factory of the S3 client

    def write_log(self, objects: dict[str, bytes]) -> None:
        for key, body in objects.items():
            self.client().put_object(Bucket=self.lake_bucket, Key=key, Body=body, ContentType="application/avro")

    def write_errors(self, rejected: Sequence[Rejected], recorded_at: datetime) -> None:
        for record in rejected:
            body = json.dumps(error_document(record, recorded_at), sort_keys=True).encode()
            self.client().put_object(
                Bucket=self.errors_bucket,
                Key=error_key(record, recorded_at, self.errors_prefix),
                Body=body,
                ContentType="application/json",
            )


@dataclass
class MemorySink:
    """Keeps what would be written (local runtime, tests)."""

    log: dict[str, bytes]
    errors: dict[str, dict[str, Any]]

    def __init__(self) -> None:
        self.log = {}
        self.errors = {}

    def write_log(self, objects: dict[str, bytes]) -> None:
        self.log.update(objects)

    def write_errors(self, rejected: Sequence[Rejected], recorded_at: datetime) -> None:
        for record in rejected:
            self.errors[error_key(record, recorded_at)] = error_document(record, recorded_at)
