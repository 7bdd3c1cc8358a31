"""Send clickstream events from a backend service to the Kinesis clickstream stream.

Usage::

    from platform_core.config import load_config
    from platform_core.names import Names
    from producer import ClickstreamProducer

    stream = Names(load_config("prod")).clickstream_stream  # "mlp-prod-clickstream"
    producer = ClickstreamProducer(stream)  # the boto3 client is made on first use
    results = producer.put_events(
        [{"event_type": "purchase", "event_time": "2025-01-01T12:00:00Z", "session_id": "s-1"}]
    )
    for result in results:  # one per event, in input order
        if not result.acknowledged:
            log.warning("event %s not sent: %s %s", result.event_id, result.error_code, result.error_message)

What it guarantees:

* **One result per event, in input order**, never an exception for the batch: an event that
  cannot be sent (no ``session_id``, not JSON-serialisable, over Kinesis's 1 MiB record limit)
  comes back with ``acknowledged=False`` and a reason while the others go through.
* **Idempotency key.** An event without ``event_id`` gets a time-ordered UUIDv7 once, before the
  first attempt, so every retry carries the same id and downstream dedup can drop duplicates.
  To resend an unacknowledged event later with the same key, copy ``result.event_id`` into it.
* **Partial failures are retried, and only those.** ``PutRecords`` reports per entry; entries
  that failed (throttling, internal failure) and whole calls that failed with a throttling or
  transient error code are retried with exponential backoff and full jitter, up to
  ``max_attempts``; after that the last error code is reported.
* **Limits.** At most 500 records and 5 MiB (data plus partition keys) per call. The partition
  key is the event's ``session_id``.
* **Aggregation** (``aggregate=True``): events are packed into KPL aggregated records of up to
  1 MiB (see :mod:`platform_core.kpl`), so a shard is limited by its 1 MiB/s rather than its
  1,000 records/s. Firehose and our Lambda consumers de-aggregate them. Events are grouped by
  session before packing, but an aggregated record is routed by its first event's session, so
  with aggregation a session's events may spread over shards: consumers order by ``event_time``.

The call is synchronous: it returns when every event is acknowledged or given up. A service on a
hot path should call it from a background worker with batches of events.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from platform_core.kpl import Aggregator
from platform_core.schemas.clickstream import MAX_RECORD_BYTES
from producer.uuid7 import uuid7_text

logger = logging.getLogger(__name__)

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024  # data plus partition keys of all records in one call
MAX_PARTITION_KEY_CHARS = 256

# Error codes that mean "slow down and try again", whole-call (botocore ClientError) or per entry.
THROTTLING_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "KMSThrottlingException",
    }
)
# Error codes of failures on the service side that a later attempt may not meet.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
RETRYABLE_ERROR_CODES = THROTTLING_ERROR_CODES | TRANSIENT_ERROR_CODES


class RejectionCode(enum.StrEnum):
    """Error codes of events refused before they reach Kinesis (``attempts == 0``)."""

    NOT_AN_OBJECT = "NotAnObject"
    INVALID_EVENT_ID = "InvalidEventId"
    MISSING_SESSION_ID = "MissingSessionId"
    INVALID_SESSION_ID = "InvalidSessionId"
    NOT_SERIALIZABLE = "NotSerializable"
    RECORD_TOO_LARGE = "RecordTooLarge"


@dataclass(frozen=True, slots=True)
class PutResult:
    """What happened to one event.

    ``attempts`` counts the ``PutRecords`` calls that carried the event (0 when it was rejected
    before sending). With aggregation, the events of one aggregated record share its sequence
    number and ``sub_sequence_number`` is the event's position inside it.
    """

    event_id: str | None
    acknowledged: bool
    sequence_number: str | None = None
    shard_id: str | None = None
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    sub_sequence_number: int | None = None


class KinesisPutRecords(Protocol):
    """The one boto3 Kinesis client method the producer calls."""

    def put_records(self, **kwargs: Any) -> Mapping[str, Any]: ...


@functools.cache
def kinesis_client(region_name: str | None = None) -> Any:
    """A shared boto3 Kinesis client, made on first use (never at import time).

    botocore's own retries are off: the producer retries per entry and counts attempts itself,
    and botocore would retry a whole throttled call, resending entries that already succeeded.
    """
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=15)
    return boto3.client("kinesis", region_name=region_name, config=config)


# One shared encoder: compact separators, UTF-8 text, and NaN/Infinity refused (not JSON).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An event that passed the checks, serialised and keyed."""

    index: int
    event_id: str
    partition_key: str
    data: bytes
    size: int  # data plus partition key, as Kinesis counts it


@dataclass(slots=True, eq=False)
class _Record:
    """One Kinesis record in flight: a single event, or several in a KPL aggregated record."""

    data: bytes
    partition_key: str
    size: int
    events: tuple[_Prepared, ...]
    aggregated: bool
    attempts: int = 0
    sequence_number: str | None = None
    shard_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class ClickstreamProducer:
    """Puts clickstream events into a Kinesis stream; see the module docstring for guarantees.

    ``sleep``, ``rng`` and ``new_event_id`` are injectable so tests neither wait nor depend on
    chance. Backoff before attempt ``n + 1`` is uniform in
    ``[0, min(max_delay_s, base_delay_s * 2 ** (n - 1))]`` ("full jitter").
    """

    def __init__(
        self,
        stream_name: str,
        *,
        client: KinesisPutRecords | None = None,
        region_name: str | None = None,
        aggregate: bool = False,
        max_aggregate_bytes: int = MAX_RECORD_BYTES,
        max_attempts: int = 8,
        base_delay_s: float = 0.1,
        max_delay_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        new_event_id: Callable[[], str] = uuid7_text,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= base_delay_s <= max_delay_s:
            raise ValueError("delays must satisfy 0 <= base_delay_s <= max_delay_s")
        if not 0 < max_aggregate_bytes <= MAX_RECORD_BYTES:
            raise ValueError(f"max_aggregate_bytes must be 1..{MAX_RECORD_BYTES}")
        self.stream_name = stream_name
        self._client = client
        self._region_name = region_name
        self._aggregate = aggregate
        self._max_aggregate_bytes = max_aggregate_bytes
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._new_event_id = new_event_id

    @property
    def client(self) -> KinesisPutRecords:
        if self._client is None:
            self._client = kinesis_client(self._region_name)
        return self._client

    # -- public API ---------------------------------------------------------------------------

    def put_events(self, events: Iterable[Mapping[str, Any]]) -> list[PutResult]:
        """Send the events; one :class:`PutResult` per event, in input order."""
        results: list[PutResult | None] = []
        prepared: list[_Prepared] = []
        for index, event in enumerate(events):
            outcome = self._prepare(index, event)
            if isinstance(outcome, PutResult):
                results.append(outcome)
            else:
                results.append(None)
                prepared.append(outcome)
        records = self._pack(prepared) if self._aggregate else [_single(p) for p in prepared]
        self._send(records)
        for record in records:
            for position, member in enumerate(record.events):
                results[member.index] = _result(record, member, position if record.aggregated else None)
        return [result for result in results if result is not None]

    # -- preparation --------------------------------------------------------------------------

    def _prepare(self, index: int, event: Any) -> _Prepared | PutResult:
        """Check, key and serialise one event, or say why it cannot be sent."""
        problem = _identity_problem(event)
        if problem is not None:
            caller_id = event.get("event_id") if isinstance(event, Mapping) else None
            return _rejected(caller_id if isinstance(caller_id, str) else None, *problem)
        caller_event_id: str | None = event.get("event_id")
        session_id: str = event["session_id"]
        event_id = caller_event_id
        if event_id is None:
            # Assigned here, once per call, so that every retry below carries the same key.
            event_id = self._new_event_id()
            event = {**event, "event_id": event_id}  # the caller's dict stays untouched
        elif not isinstance(event, dict):
            event = dict(event)  # the JSON encoder takes only dicts, not other mappings
        try:
            data = _JSON.encode(event).encode()
        except (TypeError, ValueError) as err:  # unsupported type, NaN, circular reference, lone surrogate
            reason = f"event is not JSON-serialisable: {err}"
            return _rejected(caller_event_id, RejectionCode.NOT_SERIALIZABLE, reason)
        size = len(data) + len(session_id.encode())
        if size > MAX_RECORD_BYTES:
            reason = f"record is {size} bytes (JSON + partition key); Kinesis takes at most {MAX_RECORD_BYTES}"
            return _rejected(caller_event_id, RejectionCode.RECORD_TOO_LARGE, reason)
        return _Prepared(index, event_id, session_id, data, size)

    def _pack(self, prepared: Sequence[_Prepared]) -> list[_Record]:
        """KPL-aggregate the events into as few Kinesis records as the size limit allows."""
        records: list[_Record] = []
        aggregator = Aggregator(self._max_aggregate_bytes)
        members: list[_Prepared] = []
        # Grouping by session (a stable sort keeps each session's order) shares key-table entries
        # and keeps a session's events together in one record as far as possible.
        for event in sorted(prepared, key=lambda p: p.partition_key):
            if aggregator.try_add(event.partition_key, event.data):
                members.append(event)
                continue
            if members:
                records.append(_flush(aggregator, members))
                aggregator, members = Aggregator(self._max_aggregate_bytes), []
            if aggregator.try_add(event.partition_key, event.data):
                members.append(event)
            else:  # too big to aggregate even alone (framing pushes it over): send it as it is
                records.append(_single(event))
        if members:
            records.append(_flush(aggregator, members))
        return records

    # -- sending ------------------------------------------------------------------------------

    def _send(self, records: Sequence[_Record]) -> None:
        """Put the records, retrying the failed ones until acknowledged or out of attempts."""
        pending = list(records)
        for attempt in range(1, self._max_attempts + 1):
            failed: list[_Record] = []
            for batch in _batches(pending):
                failed += self._put_batch(batch, attempt)
            if not failed:
                return
            pending = failed
            if attempt < self._max_attempts:
                self._sleep(self._backoff_s(attempt))
        logger.warning(
            "gave up on %d Kinesis records after %d attempts (last error %s)",
            len(pending),
            self._max_attempts,
            pending[0].error_code,
        )

    def _backoff_s(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self._max_delay_s, self._base_delay_s * 2 ** (attempt - 1)))

    def _put_batch(self, batch: Sequence[_Record], attempt: int) -> list[_Record]:
        """One PutRecords call; returns the records to retry."""
        for record in batch:
            record.attempts = attempt
        try:
            response = self.client.put_records(
                StreamName=self.stream_name,
                Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in batch],
            )
        except ClientError as err:
            code, message, retryable = _client_error(err)
            return _fail_all(batch, code, message, retryable)
        except (BotoConnectionError, HTTPClientError) as err:
            # No answer: the call may or may not have landed; the event ids make a resend harmless.
            return _fail_all(batch, type(err).__name__, str(err), retryable=True)
        except BotoCoreError as err:  # e.g. no credentials: another attempt meets the same fault
            return _fail_all(batch, type(err).__name__, str(err), retryable=False)
        entries = response.get("Records", [])
        if len(entries) != len(batch):
            reason = "PutRecords answered a different number of entries"
            return _fail_all(batch, "MalformedResponse", reason, retryable=True)
        retry: list[_Record] = []
        for record, entry in zip(batch, entries, strict=True):
            code = entry.get("ErrorCode")
            if code:
                record.error_code, record.error_message = code, entry.get("ErrorMessage")
                if code in RETRYABLE_ERROR_CODES:
                    retry.append(record)
            else:
                record.sequence_number, record.shard_id = entry["SequenceNumber"], entry["ShardId"]
                record.error_code = record.error_message = None
        return retry


# -- helpers -----------------------------------------------------------------------------------


def _identity_problem(event: Any) -> tuple[RejectionCode, str] | None:
    """Why an event cannot be keyed (no object, bad event_id, no usable session_id), if it cannot."""
    if not isinstance(event, Mapping):
        return RejectionCode.NOT_AN_OBJECT, f"event must be an object, not {type(event).__name__}"
    event_id = event.get("event_id")
    if event_id is not None and (not isinstance(event_id, str) or not event_id):
        return RejectionCode.INVALID_EVENT_ID, "event_id must be a non-empty string when present"
    session_id = event.get("session_id")
    if session_id is None or session_id == "":
        return RejectionCode.MISSING_SESSION_ID, "event has no session_id, which is its partition key"
    if not isinstance(session_id, str) or len(session_id) > MAX_PARTITION_KEY_CHARS:
        return (
            RejectionCode.INVALID_SESSION_ID,
            f"session_id (the partition key) must be a string of 1..{MAX_PARTITION_KEY_CHARS} characters",
        )
    return None


def _rejected(event_id: str | None, code: RejectionCode, message: str) -> PutResult:
    return PutResult(event_id, acknowledged=False, attempts=0, error_code=code.value, error_message=message)


def _single(event: _Prepared) -> _Record:
    return _Record(event.data, event.partition_key, event.size, (event,), aggregated=False)


def _flush(aggregator: Aggregator, members: Sequence[_Prepared]) -> _Record:
    """The Kinesis record for a finished aggregate; one event alone is sent unaggregated (as the KPL does)."""
    if len(members) == 1:
        return _single(members[0])
    return _Record(aggregator.to_bytes(), aggregator.partition_key, aggregator.size_bytes, tuple(members), True)


def _batches(records: Sequence[_Record]) -> Iterator[list[_Record]]:
    """Consecutive slices within PutRecords' 500-record and 5 MiB limits."""
    batch: list[_Record] = []
    batch_bytes = 0
    for record in records:
        if batch and (len(batch) == MAX_RECORDS_PER_CALL or batch_bytes + record.size > MAX_BYTES_PER_CALL):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(record)
        batch_bytes += record.size
    if batch:
        yield batch


def _client_error(err: ClientError) -> tuple[str, str, bool]:
    """Error code, message and whether a whole failed call is worth another attempt."""
    error = err.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "")
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code, message, code in RETRYABLE_ERROR_CODES or status >= 500


def _fail_all(batch: Sequence[_Record], code: str, message: str, retryable: bool) -> list[_Record]:
    for record in batch:
        record.error_code, record.error_message = code, message
    return list(batch) if retryable else []


def _result(record: _Record, event: _Prepared, sub_sequence_number: int | None) -> PutResult:
    acknowledged = record.sequence_number is not None and record.error_code is None
    return PutResult(
        event_id=event.event_id,
        acknowledged=acknowledged,
        sequence_number=record.sequence_number,
        shard_id=record.shard_id,
        attempts=record.attempts,
        error_code=record.error_code,
        error_message=record.error_message,
        sub_sequence_number=sub_sequence_number if acknowledged else None,
    )
