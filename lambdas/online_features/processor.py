"""One batch of stream records in, fresh online features out: the domain logic of the consumer.

Knows nothing of Lambda: it takes records (sequence number, partition key, bytes) and reports
which sequence numbers must be retried. Per batch:

1. every Kinesis record is de-aggregated (KPL) into user records, each parsed into an event; an
   event the features cannot use goes to the reject sink with its reason (and is not retried:
   retrying cannot fix it); anonymous events are skipped (user features only);
2. the events are grouped by user; each user's state is loaded, merged (duplicates by event_id
   change nothing), saved with an optimistic version check, and the user's features, recomputed
   from the state as of the state's instant (the user's latest event, or just after it when late
   events arrived: see :mod:`lambdas.online_features.state`), are put to the feature store.

A user whose update fails (throttling, a feature store error, lost races) has all the records
that carried their events reported as failures; Lambda then retries from the lowest of them, and
the records after it that already went through are merged again as the no-ops they are. Features
are put even when nothing was new, so a retry after a failed put repairs the online store.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lambdas.online_features.compute import clickstream_features, horizon_ms
from lambdas.online_features.events import FeatureEvent, InvalidEventError, parse_event
from lambdas.online_features.feature_store import FeatureRecordWriter
from lambdas.online_features.rejects import Rejected, RejectSink
from lambdas.online_features.state import StateStore, UserState
from platform_core.schemas.features import (
    CLICKSTREAM_WINDOWS_DAYS,
    DEFAULT_SESSION_GAP_MINUTES,
    USER_CLICKSTREAM,
)
from platform_core.schemas.features import to_feature_record as _to_record

logger = logging.getLogger(__name__)

KPL_MAGIC = b"\xf3\x89\x9a\xc2"


class KplUnavailableError(RuntimeError):
    """An aggregated record arrived but platform_core.kpl cannot be imported."""


class StateConflictError(RuntimeError):
    """Other writers kept winning the optimistic race for one user."""


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes


@dataclass
class BatchOutcome:
    failed_sequence_numbers: list[str] = field(default_factory=list)
    events_new: int = 0
    events_ignored: int = 0  # duplicates, and late events already outside the horizon
    events_anonymous: int = 0
    events_rejected: int = 0
    records_written: int = 0


def user_records(record: StreamRecord) -> list[tuple[int | None, bytes]]:
    """(sub-sequence number, data) of every user record inside a Kinesis record."""
    if not record.data.startswith(KPL_MAGIC):
        return [(None, record.data)]
    try:
        from platform_core.kpl import deaggregate
    except ImportError as exc:  # the module ships with the package; say so loudly if it did not
        raise KplUnavailableError("platform_core.kpl is missing: cannot de-aggregate KPL records") from exc
    return [(r.sub_sequence_number, r.data) for r in deaggregate(record.data, partition_key=record.partition_key)]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class OnlineFeatureProcessor:
    def __init__(
        self,
        *,
        state_store: StateStore,
        writer: FeatureRecordWriter,
        rejects: RejectSink,
        feature_group_name: str,
        gap_minutes: int = DEFAULT_SESSION_GAP_MINUTES,
        max_attempts: int = 5,
        now_ms: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        self._store = state_store
        self._writer = writer
        self._rejects = rejects
        self._group_name = feature_group_name
        self._gap = gap_minutes
        self._windows = CLICKSTREAM_WINDOWS_DAYS  # fixed by the feature group's definition
        self._horizon = horizon_ms(self._windows, gap_minutes)
        self._max_attempts = max_attempts
        # Only to reject absurd future event times (as the lake does); features never read it.
        self._now_ms = now_ms

    def process(self, records: Sequence[StreamRecord]) -> BatchOutcome:
        outcome = BatchOutcome()
        failed: set[str] = set()
        by_user: dict[str, list[tuple[str, FeatureEvent]]] = {}
        now = self._now_ms()
        for record in records:
            try:
                inner = user_records(record)
            except KplUnavailableError:
                logger.exception("record %s not processed", record.sequence_number)
                failed.add(record.sequence_number)
                continue
            for sub_sequence, data in inner:
                try:
                    parsed = parse_event(data, now)
                except InvalidEventError as invalid:
                    rejected = Rejected(
                        code=invalid.code,
                        reason=invalid.reason,
                        sequence_number=record.sequence_number,
                        sub_sequence_number=sub_sequence,
                        partition_key=record.partition_key,
                        data_base64=base64.b64encode(data).decode(),
                    )
                    if not self._reject(rejected):
                        failed.add(record.sequence_number)
                    outcome.events_rejected += 1
                    continue
                if parsed.user_id is None:
                    outcome.events_anonymous += 1
                    continue
                by_user.setdefault(parsed.user_id, []).append((record.sequence_number, parsed.event))

        try:
            # One read for the whole batch; a user whose save loses a race reloads on its own.
            loaded = self._store.load_many(list(by_user))
        except Exception:  # the batch read failed: each user reads its own state instead
            logger.exception("batch read of %d users' state failed", len(by_user))
            loaded = {}
        for user_id, items in by_user.items():
            try:
                self._update_user(user_id, [event for _, event in items], outcome, loaded.get(user_id))
            except Exception:  # any failure of one user must not fail the other users' records
                logger.exception("online features of user %s not updated", user_id)
                failed.update(sequence for sequence, _ in items)
        outcome.failed_sequence_numbers = [r.sequence_number for r in records if r.sequence_number in failed]
        return outcome

    def _reject(self, rejected: Rejected) -> bool:
        try:
            self._rejects.reject(rejected)
        except Exception:  # the reject could not be stored: retry the record rather than lose it
            logger.exception("reject of record %s not stored", rejected.sequence_number)
            return False
        return True

    def _update_user(
        self, user_id: str, events: list[FeatureEvent], outcome: BatchOutcome, loaded: UserState | None = None
    ) -> None:
        state = loaded
        for _ in range(self._max_attempts):
            if state is None:
                state = self._store.load(user_id)
            added = state.merge(events, self._horizon)
            if added == 0 or self._store.save(state):
                break
            state = None  # another writer came first: read the state again
        else:
            raise StateConflictError(f"user {user_id}: state changed under us {self._max_attempts} times")
        outcome.events_new += added
        outcome.events_ignored += len(events) - added
        as_of = state.as_of_ms if state.as_of_ms is not None else state.latest_ms
        if as_of is None:
            return
        values = clickstream_features(user_id, state.events, as_of, windows=self._windows, gap_minutes=self._gap)
        if values is not None:
            self._writer.put_record(self._group_name, _to_record(USER_CLICKSTREAM, values))
            outcome.records_written += 1
