"""The Firehose data-transformation protocol: the event AWS sends and the answer it expects.

Firehose (with a Kinesis Data Stream or Direct PUT source) invokes the function with base64
records and requires exactly one answer per ``recordId``: ``Ok`` with the new data (and, for
dynamic partitioning, ``metadata.partitionKeys``) or ``ProcessingFailed`` with the original data,
which Firehose then writes to the error output. Firehose de-aggregates KPL records first, so each
record here is one event.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.clickstream_transform.transform import Transformed, TransformOutcome
from platform_core.validation import ReasonCode, Rejection

OK = "Ok"
PROCESSING_FAILED = "ProcessingFailed"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class KinesisRecordMetadata:
    """Where a record sat in the source stream (present only for a Kinesis Data Stream source)."""

    shard_id: str
    partition_key: str
    approximate_arrival_timestamp: int | None  # epoch ms
    sequence_number: str
    subsequence_number: int | str  # "" unless the record came out of a KPL aggregate


@dataclass(frozen=True, slots=True)
class FirehoseRecord:
    record_id: str
    data: str  # base64, as received: returned unchanged when the record fails
    approximate_arrival_timestamp: int  # epoch ms, when Firehose received the record
    # When the platform accepted the event: the stream's arrival time, else Firehose's.
    ingested_at_ms: int
    # ``kinesisRecordMetadata`` as sent (Kinesis source only); typed on demand by ``kinesis``,
    # since only rejected records need it.
    kinesis_metadata: Mapping[str, Any] | None = None

    @property
    def kinesis(self) -> KinesisRecordMetadata | None:
        meta = self.kinesis_metadata
        if meta is None:
            return None
        return KinesisRecordMetadata(
            shard_id=meta.get("shardId", ""),
            partition_key=meta.get("partitionKey", ""),
            approximate_arrival_timestamp=_epoch_ms(meta.get("approximateArrivalTimestamp")),
            sequence_number=meta.get("sequenceNumber", ""),
            subsequence_number=meta.get("subsequenceNumber", ""),
        )


@dataclass(frozen=True, slots=True)
class FirehoseBatch:
    invocation_id: str
    delivery_stream_arn: str
    source_kinesis_stream_arn: str | None
    region: str
    records: Sequence[FirehoseRecord]


@dataclass(frozen=True, slots=True)
class RecordResult:
    record: FirehoseRecord
    outcome: TransformOutcome


RecordTransform = Callable[[bytes, int], TransformOutcome]
"""(decoded record bytes, ingested_at epoch ms) -> outcome; must not raise."""


def parse_event(event: Mapping[str, Any]) -> FirehoseBatch:
    """The transformation event as Firehose sends it (KeyError if it is not one)."""
    return FirehoseBatch(
        invocation_id=event["invocationId"],
        delivery_stream_arn=event["deliveryStreamArn"],
        source_kinesis_stream_arn=event.get("sourceKinesisStreamArn"),
        region=event["region"],
        records=[_record(r) for r in event["records"]],
    )


def _record(raw: Mapping[str, Any]) -> FirehoseRecord:
    arrival = int(raw["approximateArrivalTimestamp"])
    meta = raw.get("kinesisRecordMetadata")
    ingested_at = arrival
    if meta is not None:
        stream_arrival = _epoch_ms(meta.get("approximateArrivalTimestamp"))
        if stream_arrival is not None:
            ingested_at = stream_arrival
    return FirehoseRecord(raw["recordId"], raw["data"], arrival, ingested_at, meta)


def _epoch_ms(value: Any) -> int | None:
    """Firehose sends epoch ms; some documentation samples show ISO-8601 text. Accept both."""
    if type(value) is int:
        return value
    if type(value) is float:
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        # Exact integer arithmetic: float seconds * 1000 can land a millisecond early.
        return (parsed.replace(tzinfo=parsed.tzinfo or UTC) - _EPOCH) // _ONE_MS
    return None


def transform_records(batch: FirehoseBatch, transform: RecordTransform) -> list[RecordResult]:
    """One result per record, in order."""
    return [RecordResult(r, _transform_one(r, transform)) for r in batch.records]


def _transform_one(record: FirehoseRecord, transform: RecordTransform) -> TransformOutcome:
    try:
        raw = base64.b64decode(record.data, validate=True)
    except (binascii.Error, ValueError):
        return Rejection(ReasonCode.NOT_BASE64, "record data is not valid base64")
    return transform(raw, record.ingested_at_ms)


def response(results: Sequence[RecordResult]) -> dict[str, Any]:
    """The answer Firehose expects: every recordId exactly once, failures with their original data."""
    return {"records": [_answer(r) for r in results]}


def _answer(result: RecordResult) -> dict[str, Any]:
    outcome = result.outcome
    if isinstance(outcome, Transformed):
        return {
            "recordId": result.record.record_id,
            "result": OK,
            "data": base64.b64encode(outcome.line).decode("ascii"),
            "metadata": {"partitionKeys": outcome.partition_keys},
        }
    return {"recordId": result.record.record_id, "result": PROCESSING_FAILED, "data": result.record.data}
