"""Parsing of DMS Kinesis-target messages into typed changes, control records or rejections.

Pure: knows nothing of Lambda or AWS clients. Every way a message can be unusable has a
:class:`RejectReason`, so the error output says why without anybody parsing message text.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from platform_core.schemas.cdc import (
    DEFAULT_BEFORE_IMAGE_FIELD,
    PRIMARY_KEY,
    SOURCE_SCHEMA_NAME,
    SOURCE_TABLE_NAME,
    SUBSCRIPTION_ROW,
    Operation,
)

_CONTRACT_COLUMNS = frozenset(SUBSCRIPTION_ROW.field_names)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One DMS message as it came off the stream (one user record after KPL de-aggregation)."""

    sequence_number: str
    shard_id: str
    partition_key: str
    event_id: str
    event_source_arn: str
    arrival_time: datetime | None
    data: bytes
    sub_sequence_number: int | None = None

    @property
    def ref(self) -> str:
        """Unique name of the record in the stream: sequence number (and sub-sequence if aggregated)."""
        if self.sub_sequence_number is None:
            return self.sequence_number
        return f"{self.sequence_number}-{self.sub_sequence_number:05d}"


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """The tracked columns of a subscriptions row (everything but the key)."""

    is_active_subscribed: bool
    renewal_date: date | None
    plan: str | None
    price: float | None


@dataclass(frozen=True, slots=True)
class DmsChange:
    """A data record of the subscriptions table.

    ``position`` is a string that sorts like the changes happened (commit time, transaction id,
    then DMS's position inside the log, or the Kinesis sequence number when DMS gives none).
    ``change_key`` identifies the source change itself: it is the same when DMS publishes the
    same change twice (e.g. after a task restart, under a new Kinesis sequence number), so it
    keys deduplication and event ids. It is the commit time and transaction id plus the DMS
    ``stream-position`` / ``transaction-record-id`` when the endpoint includes transaction details,
    otherwise a digest of the record's content.
    """

    source: SourceRecord
    operation: Operation
    user_id: str
    after: SubscriptionState | None  # None for a delete
    before_image: SubscriptionState | None  # only a complete image (ColumnFilter all)
    change_time: datetime
    transaction_id: int | None
    position: str
    change_key: str
    extra_columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """DMS control record (table created, dropped, altered...): acknowledged and ignored."""

    source: SourceRecord
    operation: str
    table_name: str


class RejectReason(enum.StrEnum):
    INVALID_ENCODING = "invalid_encoding"  # Kinesis data is not base64
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_METADATA = "missing_metadata"
    INVALID_METADATA = "invalid_metadata"  # timestamp, transaction id... malformed
    UNKNOWN_RECORD_TYPE = "unknown_record_type"
    UNKNOWN_TABLE = "unknown_table"
    UNKNOWN_OPERATION = "unknown_operation"
    MISSING_DATA = "missing_data"
    MISSING_KEY = "missing_key"
    KEY_CHANGED = "key_changed"  # an update moved the row to another user_id
    INVALID_FIELD = "invalid_field"  # a contract column with the wrong type or value


@dataclass(frozen=True, slots=True)
class Rejected:
    source: SourceRecord
    reason: RejectReason
    detail: str


Parsed = DmsChange | ControlRecord | Rejected


class _RejectError(Exception):
    """Internal: stops parsing one record with a reason."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SourceTable:
    """Which table's records the processor accepts, and where DMS puts the before image."""

    schema_name: str = SOURCE_SCHEMA_NAME
    table_name: str = SOURCE_TABLE_NAME
    before_image_field: str = DEFAULT_BEFORE_IMAGE_FIELD


def parse_record(source: SourceRecord, table: SourceTable) -> Parsed:
    """Classify one DMS message: a change of the table, a control record, or a rejection."""
    try:
        return _parse(source, table)
    except _RejectError as reject:
        return Rejected(source, reject.reason, reject.detail)


def _parse(source: SourceRecord, table: SourceTable) -> Parsed:
    message = _decode_json(source.data)
    metadata = message.get("metadata")
    if not isinstance(metadata, dict):
        raise _RejectError(RejectReason.MISSING_METADATA, "message has no 'metadata' object")
    record_type = metadata.get("record-type")
    operation = metadata.get("operation")
    table_name = metadata.get("table-name")
    if record_type == "control":
        return ControlRecord(source, str(operation), str(table_name))
    if record_type != "data":
        raise _RejectError(RejectReason.UNKNOWN_RECORD_TYPE, f"record-type {record_type!r} is not data or control")
    schema_name = metadata.get("schema-name")
    if table_name != table.table_name or schema_name != table.schema_name:
        detail = f"table {schema_name!r}.{table_name!r} is not {table.schema_name}.{table.table_name}"
        raise _RejectError(RejectReason.UNKNOWN_TABLE, detail)
    try:
        op = Operation(str(operation))
    except ValueError:
        raise _RejectError(
            RejectReason.UNKNOWN_OPERATION,
            f"operation {operation!r} is not one of {[o.value for o in Operation]}",
        ) from None
    data = message.get("data")
    if not isinstance(data, dict):
        raise _RejectError(RejectReason.MISSING_DATA, "data record has no 'data' object")
    return _change(source, op, metadata, data, message.get(table.before_image_field))


def _decode_json(data: bytes) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _RejectError(RejectReason.NOT_JSON, f"not UTF-8 JSON: {err}") from None
    if not isinstance(message, dict):
        raise _RejectError(RejectReason.NOT_AN_OBJECT, f"JSON {type(message).__name__} is not an object")
    return message


def _change(
    source: SourceRecord, op: Operation, metadata: dict[str, Any], data: dict[str, Any], before_raw: Any
) -> DmsChange:
    user_id = _key(data)
    image = _image(data, "data")
    if op is not Operation.DELETE and image is None:
        raise _RejectError(RejectReason.INVALID_FIELD, "data.is_active_subscribed: required field missing")
    before_image = None
    if isinstance(before_raw, dict):
        before_image = _image(before_raw, "before-image")
        before_key = before_raw.get(PRIMARY_KEY)
        if before_key is not None and before_key != user_id:
            # A primary-key update: the old key's row is gone. The contract keeps user_id stable,
            # so such a change is surfaced instead of being applied to the wrong user.
            detail = f"primary key changed from {before_key!r} to {user_id!r}"
            raise _RejectError(RejectReason.KEY_CHANGED, detail)
    elif before_raw is not None:
        raise _RejectError(RejectReason.INVALID_FIELD, "before-image is not an object")
    if op is Operation.DELETE:
        # A delete's 'data' is the deleted row: complete with REPLICA IDENTITY FULL, else the key.
        before_image = before_image or image
    change_time = _change_time(metadata)
    transaction_id = _transaction_id(metadata)
    micros = (change_time - _EPOCH) // timedelta(microseconds=1)
    dms_position = _dms_position(metadata)
    order = dms_position if dms_position is not None else _stream_order(source)
    position = f"{micros:020d}|{transaction_id or 0:020d}|{order}"
    identity = dms_position if dms_position is not None else "c" + _digest(op.value, data, before_raw)
    return DmsChange(
        source=source,
        operation=op,
        user_id=user_id,
        after=None if op is Operation.DELETE else image,
        before_image=before_image,
        change_time=change_time,
        transaction_id=transaction_id,
        position=position,
        change_key=f"{micros}:{transaction_id or 0}:{identity}",
        extra_columns=tuple(sorted(set(data) - _CONTRACT_COLUMNS)),
    )


def _stream_order(source: SourceRecord) -> str:
    """The Kinesis position as sortable text: sequence numbers are decimal integers of varying length."""
    sequence = source.sequence_number.rjust(64, "0")
    sub = "" if source.sub_sequence_number is None else f".{source.sub_sequence_number:06d}"
    return f"k{sequence}{sub}"


def _digest(operation: str, data: dict[str, Any], before: Any) -> str:
    canonical = json.dumps([operation, data, before], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?")


def parse_dms_timestamp(value: Any) -> datetime:
    """DMS timestamps: ``2026-11-30T12:34:56.123456Z`` (UTC; a missing zone means UTC too)."""
    if not isinstance(value, str):
        raise ValueError(f"timestamp {value!r} is not a string")
    match = _TIMESTAMP.fullmatch(value.strip())
    if not match:
        raise ValueError(f"timestamp {value!r} is not ISO-8601")
    day, clock, fraction, zone = match.groups()
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    parsed = datetime.fromisoformat(f"{day}T{clock}.{micros}{zone}")
    return parsed.astimezone(UTC)


def _change_time(metadata: dict[str, Any]) -> datetime:
    # commit-timestamp appears with IncludeTransactionDetails; otherwise timestamp is the commit
    # time of a CDC change (and the read time of a full-load row).
    raw = metadata.get("commit-timestamp") or metadata.get("timestamp")
    if raw is None:
        raise _RejectError(RejectReason.INVALID_METADATA, "metadata has no timestamp")
    try:
        return parse_dms_timestamp(raw)
    except ValueError as err:
        raise _RejectError(RejectReason.INVALID_METADATA, str(err)) from None


def _transaction_id(metadata: dict[str, Any]) -> int | None:
    raw = metadata.get("transaction-id")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)) or (isinstance(raw, str) and not raw.isdigit()):
        raise _RejectError(RejectReason.INVALID_METADATA, f"transaction-id {raw!r} is not a non-negative integer")
    value = int(raw)
    if value < 0 or value >= 2**63:
        raise _RejectError(RejectReason.INVALID_METADATA, f"transaction-id {raw!r} is out of range")
    return value


def _dms_position(metadata: dict[str, Any]) -> str | None:
    """DMS's own position of the change, present with the endpoint's IncludeTransactionDetails."""
    stream_position = metadata.get("stream-position")
    if isinstance(stream_position, str) and stream_position:
        return f"s{stream_position}"
    record_id = metadata.get("transaction-record-id")
    if isinstance(record_id, int) and not isinstance(record_id, bool) and record_id >= 0:
        return f"r{record_id:020d}"
    return None


# ---------------------------------------------------------------------------------------------
# Row images
# ---------------------------------------------------------------------------------------------


def _key(data: dict[str, Any]) -> str:
    user_id = data.get(PRIMARY_KEY)
    if user_id is None:
        raise _RejectError(RejectReason.MISSING_KEY, f"data.{PRIMARY_KEY} is missing")
    if not isinstance(user_id, str) or not user_id:
        raise _RejectError(
            RejectReason.INVALID_FIELD, f"data.{PRIMARY_KEY}: expected a non-empty string, got {user_id!r}"
        )
    return user_id


def _image(row: dict[str, Any], where: str) -> SubscriptionState | None:
    """The tracked columns of a row image, or None when the image holds only the key.

    Columns DMS leaves out are null (the endpoint's IncludeNullAndEmpty is false by default).
    ``is_active_subscribed`` is NOT NULL in the table, so an image without it is key-only.
    """
    renewal_date = _date(row.get("renewal_date"), f"{where}.renewal_date")
    plan = _text(row.get("plan"), f"{where}.plan")
    price = _price(row.get("price"), f"{where}.price")
    active_raw = row.get("is_active_subscribed")
    if active_raw is None:
        return None
    return SubscriptionState(_boolean(active_raw, f"{where}.is_active_subscribed"), renewal_date, plan, price)


def _boolean(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    # DMS writes PostgreSQL booleans as JSON booleans; the canonical text forms are tolerated,
    # anything else ("yes", 1) is a type change that must be looked at.
    if value in ("true", "false"):
        return value == "true"
    raise _RejectError(RejectReason.INVALID_FIELD, f"{path}: expected boolean, got {value!r}")


def _date(value: Any, path: str) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise _RejectError(RejectReason.INVALID_FIELD, f"{path}: expected YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _RejectError(RejectReason.INVALID_FIELD, f"{path}: {value!r} is not a calendar date") from None


def _text(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _RejectError(RejectReason.INVALID_FIELD, f"{path}: expected string, got {value!r}")


def _price(value: Any, path: str) -> float | None:
    """PostgreSQL numeric: DMS may write it as a JSON number or as decimal text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _RejectError(RejectReason.INVALID_FIELD, f"{path}: expected number, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _RejectError(RejectReason.INVALID_FIELD, f"{path}: expected number, got {value!r}") from None
    if not number.is_finite():
        raise _RejectError(RejectReason.INVALID_FIELD, f"{path}: {value!r} is not a finite number")
    return float(number)
