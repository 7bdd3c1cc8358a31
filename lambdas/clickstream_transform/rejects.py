"""The rejects file: every record one invocation rejected, with its reason, where a person finds it.

Firehose copies failed records to its error output, but only with its own generic error code. So
each invocation with rejections also writes one NDJSON object listing them with our reason code,
the raw bytes and where they came from in the source stream. The object key depends only on the
batch (its earliest arrival day and a hash of its recordIds), so a retried invocation overwrites
its earlier file instead of adding a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.clickstream_transform.firehose import FirehoseBatch, RecordResult
from platform_core.validation import Rejection

CONTENT_TYPE = "application/x-ndjson"


@dataclass(frozen=True)
class RejectsFile:
    key: str
    body: bytes
    count: int


def rejected(results: Sequence[RecordResult]) -> list[tuple[RecordResult, Rejection]]:
    """The rejected records of a batch, each with its reason."""
    return [(r, r.outcome) for r in results if isinstance(r.outcome, Rejection)]


def rejects_file(
    batch: FirehoseBatch, failures: Sequence[tuple[RecordResult, Rejection]], *, prefix: str
) -> RejectsFile | None:
    """The NDJSON listing of the batch's rejected records (None when there are none)."""
    if not failures:
        return None
    lines = (json.dumps(reject_entry(batch, r, why), separators=(",", ":")) + "\n" for r, why in failures)
    return RejectsFile(key=rejects_key(batch, prefix=prefix), body="".join(lines).encode("utf-8"), count=len(failures))


def rejects_key(batch: FirehoseBatch, *, prefix: str) -> str:
    """``<prefix>year=YYYY/month=MM/day=DD/<hash>.json``, a function of the batch only.

    The day is the UTC day of the batch's earliest arrival (not of the invocation, which would
    change if a retry crossed midnight); the hash covers the delivery stream and the sorted
    recordIds, unique within a delivery stream.
    """
    earliest = min(r.approximate_arrival_timestamp for r in batch.records)
    day = time.gmtime(earliest // 1000)
    identity = "\n".join([batch.delivery_stream_arn, *sorted(r.record_id for r in batch.records)])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:40]
    return f"{prefix}year={day.tm_year:04d}/month={day.tm_mon:02d}/day={day.tm_mday:02d}/{digest}.json"


def reject_entry(batch: FirehoseBatch, result: RecordResult, rejection: Rejection) -> dict[str, Any]:
    """One line of the rejects file: enough to understand the failure and replay the record."""
    record = result.record
    kinesis = record.kinesis
    source: dict[str, Any] | None = None
    if kinesis is not None:
        source = {
            "stream_arn": batch.source_kinesis_stream_arn,
            "shard_id": kinesis.shard_id,
            "partition_key": kinesis.partition_key,
            "sequence_number": kinesis.sequence_number,
            "subsequence_number": kinesis.subsequence_number,
            "approximate_arrival_timestamp": kinesis.approximate_arrival_timestamp,
        }
    return {
        "recordId": record.record_id,
        "reason_code": rejection.code.value,
        "reason": rejection.message,
        "event_id": rejection.event_id,
        "raw_base64": record.data,
        "approximate_arrival_timestamp": record.approximate_arrival_timestamp,
        "source": source,
        "delivery_stream_arn": batch.delivery_stream_arn,
        "invocation_id": batch.invocation_id,
    }
