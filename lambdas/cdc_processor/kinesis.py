"""Kinesis event records (as Lambda delivers them) -> the DMS messages they carry.

A record may be KPL-aggregated; :func:`platform_core.kpl.deaggregate` returns its user records
(DMS itself does not aggregate, so normally there is exactly one).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lambdas.cdc_processor.dms import Rejected, RejectReason, SourceRecord
from platform_core.kpl import deaggregate


def shard_of(event_id: str) -> str:
    """``shardId-000000000006:4959...`` -> ``shardId-000000000006``."""
    return event_id.split(":", 1)[0] if ":" in event_id else "shard-unknown"


def source_records(event_records: Sequence[Mapping[str, Any]]) -> list[SourceRecord | Rejected]:
    """The DMS messages of a Kinesis event, in stream order; undecodable data is rejected."""
    out: list[SourceRecord | Rejected] = []
    for record in event_records:
        kinesis = record["kinesis"]
        arrival = kinesis.get("approximateArrivalTimestamp")
        base = SourceRecord(
            sequence_number=str(kinesis["sequenceNumber"]),
            shard_id=shard_of(record.get("eventID", "")),
            partition_key=str(kinesis.get("partitionKey", "")),
            event_id=str(record.get("eventID", "")),
            event_source_arn=str(record.get("eventSourceARN", "")),
            arrival_time=None if arrival is None else datetime.fromtimestamp(float(arrival), UTC),
            data=b"",
        )
        try:
            data = base64.b64decode(kinesis["data"], validate=True)
        except (binascii.Error, ValueError, TypeError) as err:
            raw = str(kinesis.get("data", "")).encode()
            out.append(Rejected(_replace_data(base, raw), RejectReason.INVALID_ENCODING, f"data is not base64: {err}"))
            continue
        user_records = deaggregate(data, partition_key=base.partition_key)
        for user in user_records:
            out.append(
                SourceRecord(
                    sequence_number=base.sequence_number,
                    shard_id=base.shard_id,
                    partition_key=user.partition_key,
                    event_id=base.event_id,
                    event_source_arn=base.event_source_arn,
                    arrival_time=base.arrival_time,
                    data=user.data,
                    sub_sequence_number=user.sub_sequence_number,
                )
            )
    return out


def _replace_data(record: SourceRecord, data: bytes) -> SourceRecord:
    return SourceRecord(
        sequence_number=record.sequence_number,
        shard_id=record.shard_id,
        partition_key=record.partition_key,
        event_id=record.event_id,
        event_source_arn=record.event_source_arn,
        arrival_time=record.arrival_time,
        data=data,
    )


def batch_key(event_records: Sequence[Mapping[str, Any]]) -> str:
    """Names the batch by its shard and first and last sequence numbers (stable across retries)."""
    if not event_records:
        return "empty"
    first, last = event_records[0], event_records[-1]
    shard = shard_of(str(first.get("eventID", "")))
    return f"{shard}-{first['kinesis']['sequenceNumber']}-{last['kinesis']['sequenceNumber']}"


def records_from_messages(
    messages: Sequence[bytes], *, shard_id: str = "shardId-local", first_sequence: int = 1
) -> tuple[list[SourceRecord], str]:
    """DMS messages (e.g. lines of a ``--cdc FILE.jsonl``) as one batch of stream records, for
    running the processor without Kinesis; sequence numbers are ``first_sequence`` onwards."""
    records = [
        SourceRecord(
            sequence_number=str(first_sequence + i),
            shard_id=shard_id,
            partition_key="",
            event_id=f"{shard_id}:{first_sequence + i}",
            event_source_arn="local",
            arrival_time=None,
            data=message,
        )
        for i, message in enumerate(messages)
    ]
    last = first_sequence + max(len(messages) - 1, 0)
    return records, f"{shard_id}-{first_sequence}-{last}"
