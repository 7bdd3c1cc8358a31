"""Kinesis events for Lambda, shaped exactly as the Kinesis event source mapping sends them."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/mlp-dev-clickstream"


def producer_event(
    event_id: str,
    event_time: datetime,
    *,
    user_id: str | None = "u1",
    event_type: str = "page_view",
    session_id: str = "s1",
    user_agent: str | None = None,
    referrer: str | None = None,
    path: str = "/",
) -> dict[str, Any]:
    """A clickstream event as a producer sends it (ISO-8601 event time with zone)."""
    return {
        "event_id": event_id,
        "event_time": event_time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event_type": event_type,
        "session_id": session_id,
        "user_id": user_id,
        "user_agent": user_agent,
        "ip": "203.0.113.7",
        "referrer": referrer,
        "request": {"method": "GET", "path": path, "query": None, "status": 200, "latency_ms": 12.5},
        "properties": {},
    }


def kinesis_event(payloads: Sequence[bytes | dict[str, Any]], *, first_sequence: int = 1) -> dict[str, Any]:
    records = []
    for i, payload in enumerate(payloads):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sequence = f"4959033827149025660855969253836157109592157598913{first_sequence + i:07d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "s1",
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1710072000.123,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/online-features",
                "awsRegion": "us-east-1",
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": records}


def sequence_numbers(event: dict[str, Any]) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
