"""Subscription row changes written as AWS DMS records for a Kinesis target.

The shape follows DMS's JSON message format for Kinesis::

    {"data": {...row after the change...},
     "metadata": {"timestamp": "2025-03-01T02:13:09.123456Z", "record-type": "data",
                  "operation": "load" | "insert" | "update" | "delete",
                  "partition-key-type": "primary-key", "schema-name": "public",
                  "table-name": "subscriptions", "transaction-id": 12345},
     "before-image": {...row before an update...}}

- Full-load records (``load``) carry no ``transaction-id``; change records do.
- The before image appears on updates only, under the task's ``BeforeImageSettings.FieldName``
  (``before-image`` here). Its content follows ``ColumnFilter``: ``all`` (every column), or
  ``pk-only`` (DMS's default: the primary key alone); ``none`` leaves it out, as when before
  images are not enabled. The CDC processor must cope with all three.
- A delete's ``data`` is the row that was deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from datagen.subscriptions import RowChange

BeforeImage = Literal["all", "pk-only", "none"]
SCHEMA_NAME = "public"
TABLE_NAME = "subscriptions"
PRIMARY_KEY = "user_id"
BEFORE_IMAGE_FIELD = "before-image"
FIRST_TRANSACTION_ID = 4_100_000


def dms_timestamp(t: datetime) -> str:
    """DMS's metadata timestamp: UTC with microseconds and a ``Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dms_records(
    changes: Sequence[RowChange],
    *,
    before_image: BeforeImage = "all",
    extra_columns_from: datetime | None = None,
    extra_columns: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One DMS record per row change, in the order given (which should be commit order).

    ``extra_columns_from`` simulates schema evolution: from that instant on, every row carries
    ``extra_columns`` too (as if a column had been added to the source table).
    """
    added = extra_columns if extra_columns is not None else {"currency": "USD"}
    records: list[dict[str, Any]] = []
    transaction_id = FIRST_TRANSACTION_ID
    for change in changes:
        evolved = extra_columns_from is not None and change.time >= extra_columns_from
        data = {**change.row, **added} if evolved else dict(change.row)
        metadata: dict[str, Any] = {
            "timestamp": dms_timestamp(change.time),
            "record-type": "data",
            "operation": change.operation,
            "partition-key-type": "primary-key",
            "schema-name": SCHEMA_NAME,
            "table-name": TABLE_NAME,
        }
        if change.operation != "load":
            transaction_id += 1
            metadata["transaction-id"] = transaction_id
        record: dict[str, Any] = {"data": data, "metadata": metadata}
        if change.operation == "update" and change.before is not None and before_image != "none":
            before = {**change.before, **added} if evolved else dict(change.before)
            if before_image == "pk-only":
                before = {PRIMARY_KEY: before[PRIMARY_KEY]}
            record[BEFORE_IMAGE_FIELD] = before
        records.append(record)
    return records


def kinesis_entries(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``PutRecords`` entries as DMS writes them: JSON data, the primary key as partition key."""
    return [
        {"Data": json.dumps(r, separators=(",", ":")).encode(), "PartitionKey": str(r["data"][PRIMARY_KEY])}
        for r in records
    ]
