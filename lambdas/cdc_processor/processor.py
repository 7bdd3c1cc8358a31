"""One batch of DMS records: parse, fold through the stored state, write the log, commit.

Order of effects, chosen so that nothing is lost and a replay changes nothing:

1. bad records go to the error output (deterministic keys) and count as handled;
2. the transitions and snapshots of the batch are written to the change log;
3. each user's dedup markers and new state are committed atomically.

A crash between 2 and 3 makes Lambda retry the batch; the retry derives the same records and
overwrites the same objects. A user whose commit is refused (a concurrent writer) has its records
reported as failures, and Lambda retries from the first of them.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.cdc_processor.dms import (
    ControlRecord,
    DmsChange,
    Rejected,
    SourceRecord,
    SourceTable,
    parse_record,
)
from lambdas.cdc_processor.sink import Sink, log_objects
from lambdas.cdc_processor.store import CommitStep, StateStore, UserCommit, dedup_key
from lambdas.cdc_processor.transitions import Derived, Outcome, StoredState, derive

logger = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What a batch did: per-record outcomes and the sequence numbers Lambda must retry."""

    failed_sequence_numbers: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass
class CdcProcessor:
    store: StateStore
    sink: Sink
    table: SourceTable = field(default_factory=SourceTable)
    dedup_ttl_days: int = 30
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def process(self, records: Sequence[SourceRecord | Rejected], batch_key: str) -> BatchResult:
        """Handle one batch, in stream order; ``batch_key`` names its log objects."""
        now = self.clock()
        result = BatchResult()
        changes: list[DmsChange] = []
        for record in records:
            parsed = record if isinstance(record, Rejected) else parse_record(record, self.table)
            if isinstance(parsed, Rejected):
                result.rejected.append(parsed)
                result.outcomes[f"rejected:{parsed.reason.value}"] += 1
            elif isinstance(parsed, ControlRecord):
                result.outcomes["control"] += 1
            else:
                changes.append(parsed)
        if result.rejected:
            logger.warning("rejected %d CDC records", len(result.rejected))
            self.sink.write_errors(result.rejected, now)

        derived, initial_positions = self._fold(changes, now)
        for d in derived:
            result.outcomes[d.outcome.value] += 1
            result.transitions += d.transitions
            if d.snapshot is not None:
                result.snapshots.append(d.snapshot)
        self.sink.write_log(log_objects(batch_key, result.transitions, result.snapshots))

        commits = _commits(derived, initial_positions)
        expires_at = int((now + timedelta(days=self.dedup_ttl_days)).timestamp())
        refused = self.store.commit(commits, expires_at) if commits else set()
        if refused:
            logger.warning("state commit refused for %d users; their records will be retried", len(refused))
            result.failed_sequence_numbers = _failed(changes, refused)
        return result

    def _fold(self, changes: Sequence[DmsChange], now: datetime) -> tuple[list[Derived], dict[str, str | None]]:
        """Each change derived against the state left by the ones before it; and the positions read."""
        user_ids = {c.user_id for c in changes}
        states: dict[str, StoredState | None] = dict(self.store.load_states(user_ids))
        initial_positions = {u: (s.position if s else None) for u, s in states.items()}
        seen = self.store.handled({dedup_key(c.user_id, c.change_key) for c in changes})
        derived: list[Derived] = []
        for change in changes:
            key = dedup_key(change.user_id, change.change_key)
            if key in seen:
                derived.append(Derived(change, Outcome.DUPLICATE, (), None, None))
                continue
            seen.add(key)
            d = derive(change, states.get(change.user_id), now)
            if d.state is not None:
                states[change.user_id] = d.state
            derived.append(d)
        return derived, initial_positions


def _commits(derived: Sequence[Derived], initial_positions: dict[str, str | None]) -> list[UserCommit]:
    steps: dict[str, list[CommitStep]] = defaultdict(list)
    for d in derived:
        if d.outcome is Outcome.DUPLICATE:
            continue
        steps[d.change.user_id].append(CommitStep(dedup_key(d.change.user_id, d.change.change_key), d.state))
    return [UserCommit(user, initial_positions.get(user), tuple(s)) for user, s in steps.items()]


def _failed(changes: Sequence[DmsChange], refused: set[str]) -> list[str]:
    """Sequence numbers (deduplicated, in stream order) of the records of refused users."""
    failed = [c.source.sequence_number for c in changes if c.user_id in refused]
    return list(dict.fromkeys(failed))
