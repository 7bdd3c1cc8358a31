"""DMS Kinesis-target messages and Kinesis Lambda events, shaped as AWS sends them."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/mlp-dev-cdc"
SHARD = "shardId-000000000000"
# Kinesis sequence numbers are 56-digit decimal strings that grow along the shard.
FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588800


def row(
    user_id: str,
    active: bool,
    renewal: str | None = "2026-12-01",
    plan: str | None = "basic",
    price: float | str | None = 9.99,
    **extra: Any,
) -> dict[str, Any]:
    """A subscriptions row as DMS writes it (null columns left out, as IncludeNullAndEmpty=false does)."""
    values = {
        "user_id": user_id,
        "is_active_subscribed": active,
        "renewal_date": renewal,
        "plan": plan,
        "price": price,
    }
    return {k: v for k, v in {**values, **extra}.items() if v is not None}


def dms(
    operation: str,
    data: dict[str, Any] | None,
    *,
    ts: str,
    txid: int | None = None,
    before: dict[str, Any] | None = None,
    table: str = "subscriptions",
    schema: str = "public",
    record_type: str = "data",
    **metadata: Any,
) -> dict[str, Any]:
    """A DMS message; ``before`` becomes the ``before-image`` attribute (BeforeImageSettings)."""
    meta: dict[str, Any] = {
        "timestamp": ts,
        "record-type": record_type,
        "operation": operation,
        "partition-key-type": "primary-key" if record_type == "data" else "task-id",
        "schema-name": schema,
        "table-name": table,
    }
    if txid is not None:
        meta["transaction-id"] = txid
    meta.update({k.replace("_", "-"): v for k, v in metadata.items()})
    message: dict[str, Any] = {"metadata": meta}
    if data is not None:
        message["data"] = data
    if before is not None:
        message["before-image"] = before
    return message


def control(operation: str = "create-table", table: str = "subscriptions") -> dict[str, Any]:
    return dms(operation, None, ts="2026-11-30T00:00:00.000001Z", table=table, record_type="control")


def kinesis_record(
    message: dict[str, Any] | bytes | str,
    sequence: int,
    *,
    shard: str = SHARD,
    partition_key: str | None = None,
) -> dict[str, Any]:
    """One record of a Kinesis event as Lambda delivers it; str data is put in verbatim (not base64)."""
    if isinstance(message, dict):
        body = json.dumps(message).encode()
        data = base64.b64encode(body).decode()
        key = partition_key or str(message.get("data", {}).get("user_id", "control"))
    elif isinstance(message, bytes):
        data = base64.b64encode(message).decode()
        key = partition_key or "unknown"
    else:
        data = message
        key = partition_key or "unknown"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": key,
            "sequenceNumber": str(sequence),
            "data": data,
            "approximateArrivalTimestamp": 1796128496.123,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/mlp-dev-cdc-processor",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }


def kinesis_event(
    messages: Sequence[dict[str, Any] | bytes | str], *, first_sequence: int = FIRST_SEQUENCE
) -> dict[str, Any]:
    return {"Records": [kinesis_record(m, first_sequence + i * 100) for i, m in enumerate(messages)]}
