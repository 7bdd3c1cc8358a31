"""Write snapshot rows to Feature Store with ``PutRecord``: bounded retries, one outcome per row.

Idempotent by (record identifier, event time): every row of a snapshot carries the snapshot's
``as_of`` as its event time, so a replay (a retried task, a re-run of the job for the same
``as_of``) puts the same record under the same key. The online store keeps the record with the
latest event time (an equal one carries the same values); the offline store appends, and its
readers keep one row per (record identifier, event time), the latest ``api_invocation_time``.

Errors are told apart by their codes, never their messages:

* throttling and server-side failures (and a lost connection) are retried with exponential
  backoff and full jitter, at most ``RetryPolicy.max_attempts`` times; a row still failing then is
  rejected with the last error, so that one hot partition cannot stall the run forever;
* ``ValidationError`` (the service refused this record) rejects the row at once: retrying cannot help;
* anything else (access denied, no such feature group, bad credentials) concerns every row alike:
  it is raised and fails the run, which the orchestration retries and then reports.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachableError

from glue_jobs.ingest.records import Record, UnusableRowError, feature_record
from platform_core.schemas.features import FeatureGroup, format_event_time

RETRYABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "InternalFailure",
        "ServiceUnavailable",
        "InternalServerError",
    }
)
REJECTING_ERROR_CODES = frozenset({"ValidationError"})

Status = Literal["written", "rejected"]
WRITTEN: Status = "written"
REJECTED: Status = "rejected"


class PutRecord(Protocol):
    """``sagemaker-featurestore-runtime``'s ``put_record`` (a boto3 client method fits)."""

    def __call__(self, *, FeatureGroupName: str, Record: Record, TargetStores: list[str]) -> Any: ...  # noqa: N803


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` calls per row; before attempt n+1 a pause drawn uniformly from
    [0, min(max_delay, base_delay * 2**(n-1))] ("full jitter": throttled workers spread out)."""

    max_attempts: int = 6
    base_delay_seconds: float = 0.05
    max_delay_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.base_delay_seconds <= self.max_delay_seconds:
            raise ValueError("delays must satisfy 0 <= base_delay_seconds <= max_delay_seconds")

    def delay(self, failed_attempts: int, jitter: float) -> float:
        """The pause after ``failed_attempts`` failures; ``jitter`` is a draw from [0, 1)."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (failed_attempts - 1))
        return ceiling * jitter


DEFAULT_RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True)
class IngestTarget:
    """Where rows of one snapshot go: the group (its schema), the feature group (name or ARN),
    the stores, and the snapshot's instant (every row's event time)."""

    group: FeatureGroup
    feature_group: str
    target_stores: tuple[str, ...]
    as_of: datetime


@dataclass(frozen=True)
class Outcome:
    """What became of one row. ``row`` (JSON) is kept for rejects only, so a person can replay them."""

    record_identifier: str | None
    event_time: str | None
    status: Status
    attempts: int
    reason: str | None = None
    row: str | None = None


class _Retryable(Exception):
    """A failure worth another attempt; ``code`` names it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Refused(Exception):
    """The service refused this record; the message is the reason."""


def ingest_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    put_record: PutRecord,
    target: IngestTarget,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> Iterator[Outcome]:
    """One :class:`Outcome` per row, in order; raises on an error that concerns every row."""
    for row in rows:
        yield _ingest_row(row, put_record=put_record, target=target, policy=policy, sleep=sleep, jitter=jitter)


def _ingest_row(
    row: Mapping[str, Any],
    *,
    put_record: PutRecord,
    target: IngestTarget,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    jitter: Callable[[], float],
) -> Outcome:
    group = target.group
    identifier = _text(row.get(group.record_identifier))
    event_time = _text(row.get(group.event_time))
    try:
        record = feature_record(group, row, as_of=target.as_of)
    except UnusableRowError as error:
        return _rejected(identifier, event_time, 0, f"unusable row: {error}", row)
    last_code = ""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            _put(put_record, target, record)
            return Outcome(identifier, event_time, WRITTEN, attempt)
        except _Retryable as error:
            last_code = error.code
        except _Refused as error:
            return _rejected(identifier, event_time, attempt, str(error), row)
        if attempt < policy.max_attempts:
            sleep(policy.delay(attempt, jitter()))
    return _rejected(
        identifier, event_time, policy.max_attempts, f"gave up after {policy.max_attempts} attempts: {last_code}", row
    )


def _put(put_record: PutRecord, target: IngestTarget, record: Record) -> None:
    """One call; a retryable failure becomes :class:`_Retryable`, a refusal of this record
    :class:`_Refused`, and any other error (one that concerns every row) propagates untouched."""
    try:
        put_record(FeatureGroupName=target.feature_group, Record=record, TargetStores=list(target.target_stores))
    except ClientError as error:
        code = _code(error)
        if code in RETRYABLE_ERROR_CODES:
            raise _Retryable(code) from error
        if code in REJECTING_ERROR_CODES:
            raise _Refused(f"{code}: {_message(error)}") from error
        raise
    except (EndpointUnreachableError, HTTPClientError) as error:
        # The call may or may not have landed: putting the same key again is harmless.
        raise _Retryable(type(error).__name__) from error


def _rejected(
    identifier: str | None, event_time: str | None, attempts: int, reason: str, row: Mapping[str, Any]
) -> Outcome:
    return Outcome(
        identifier, event_time, REJECTED, attempts, reason, json.dumps(dict(row), default=_json_value, sort_keys=True)
    )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return format_event_time(value)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
