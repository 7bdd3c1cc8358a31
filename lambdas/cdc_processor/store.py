"""Idempotency and state: which changes were handled, and the state applied per user.

Two kinds of item live in one DynamoDB table whose partition key is ``user_id`` (string):

- the **state** of a user: ``user_id = <user id>``, the tracked columns (or ``is_deleted``), the
  ``applied_position`` of the last applied change, its ``change_time``, ``transaction_id`` and
  ``event_id``. It never expires.
- a **dedup marker** per handled change: ``user_id = "dedup#<table>#<user id>#<change key>"``
  with a TTL attribute ``expires_at`` (epoch seconds; enable TTL on it), so that a replay or a
  change DMS publishes twice is recognised and changes nothing.

A user's markers and its new state are written in one ``TransactWriteItems`` whose conditions
are "marker absent" and "state still at the position read" (optimistic concurrency). So either
every effect of a change is recorded or none is, and a concurrent or repeated commit is refused
instead of moving the state twice or backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from lambdas.cdc_processor.dms import SubscriptionState
from lambdas.cdc_processor.transitions import StoredState
from platform_core.schemas.cdc import PRIMARY_KEY, SOURCE_TABLE_NAME

TTL_ATTRIBUTE = "expires_at"
DEDUP_PREFIX = "dedup#"
# TransactWriteItems takes at most 100 actions.
MAX_TRANSACTION_ITEMS = 100
_BATCH_GET_KEYS = 100


def dedup_key(user_id: str, change_key: str, table: str = SOURCE_TABLE_NAME) -> str:
    return f"{DEDUP_PREFIX}{table}#{user_id}#{change_key}"


@dataclass(frozen=True, slots=True)
class CommitStep:
    """One handled change of a user: its marker, and the state after it (None: state unchanged)."""

    dedup_key: str
    state: StoredState | None


@dataclass(frozen=True, slots=True)
class UserCommit:
    """Everything a batch did for one user, in order, from the state it read."""

    user_id: str
    expected_position: str | None  # None: the user had no state when read
    steps: tuple[CommitStep, ...]


class StateStore(Protocol):
    def load_states(self, user_ids: Collection[str]) -> dict[str, StoredState]:
        """The stored state of each user that has one."""
        ...

    def handled(self, dedup_keys: Collection[str]) -> set[str]:
        """The subset of ``dedup_keys`` already recorded as handled."""
        ...

    def commit(self, commits: Sequence[UserCommit], expires_at: int) -> set[str]:
        """Record the commits; returns the users whose commit was refused (to be retried)."""
        ...


# ---------------------------------------------------------------------------------------------
# In memory (local runtime, tests)
# ---------------------------------------------------------------------------------------------


class InMemoryStateStore:
    """The same semantics as the DynamoDB store, in a dict (TTL is not enforced)."""

    def __init__(self) -> None:
        self.states: dict[str, StoredState] = {}
        self.markers: dict[str, int] = {}

    def load_states(self, user_ids: Collection[str]) -> dict[str, StoredState]:
        return {u: self.states[u] for u in user_ids if u in self.states}

    def handled(self, dedup_keys: Collection[str]) -> set[str]:
        return {k for k in dedup_keys if k in self.markers}

    def commit(self, commits: Sequence[UserCommit], expires_at: int) -> set[str]:
        refused: set[str] = set()
        for commit in commits:
            current = self.states.get(commit.user_id)
            current_position = None if current is None else current.position
            clash = any(step.dedup_key in self.markers for step in commit.steps)
            if current_position != commit.expected_position or clash:
                refused.add(commit.user_id)
                continue
            for step in commit.steps:
                self.markers[step.dedup_key] = expires_at
                if step.state is not None:
                    self.states[commit.user_id] = step.state
        return refused


# ---------------------------------------------------------------------------------------------
# DynamoDB
# ---------------------------------------------------------------------------------------------


def state_item(state: StoredState) -> dict[str, Any]:
    """The state as a DynamoDB item (low-level attribute values)."""
    item: dict[str, Any] = {
        PRIMARY_KEY: {"S": state.user_id},
        "is_deleted": {"BOOL": state.row is None},
        "applied_position": {"S": state.position},
        "change_time": {"S": state.change_time.isoformat()},
        "event_id": {"S": state.event_id},
        "updated_at": {"N": str(int(time.time()))},
    }
    if state.transaction_id is not None:
        item["transaction_id"] = {"N": str(state.transaction_id)}
    row = state.row
    if row is not None:
        item["is_active_subscribed"] = {"BOOL": row.is_active_subscribed}
        if row.renewal_date is not None:
            item["renewal_date"] = {"S": row.renewal_date.isoformat()}
        if row.plan is not None:
            item["plan"] = {"S": row.plan}
        if row.price is not None:
            item["price"] = {"N": str(Decimal(repr(row.price)))}
    return item


def state_from_item(item: dict[str, Any]) -> StoredState:
    row = None
    if not item["is_deleted"]["BOOL"]:
        row = SubscriptionState(
            is_active_subscribed=item["is_active_subscribed"]["BOOL"],
            renewal_date=date.fromisoformat(item["renewal_date"]["S"]) if "renewal_date" in item else None,
            plan=item["plan"]["S"] if "plan" in item else None,
            price=float(item["price"]["N"]) if "price" in item else None,
        )
    return StoredState(
        user_id=item[PRIMARY_KEY]["S"],
        row=row,
        position=item["applied_position"]["S"],
        change_time=datetime.fromisoformat(item["change_time"]["S"]),
        transaction_id=int(item["transaction_id"]["N"]) if "transaction_id" in item else None,
        event_id=item["event_id"]["S"],
    )


class DynamoDBStateStore:
    """The store on a DynamoDB table (see the module doc for its items)."""

    def __init__(self, table_name: str, client: Callable[[], Any], *, max_attempts: int = 5) -> None:
        self.table_name = table_name
        self._client = client  # a cached factory: the client is created on first use
        self.max_attempts = max_attempts

    def load_states(self, user_ids: Collection[str]) -> dict[str, StoredState]:
        items = self._batch_get(user_ids, projection=None)
        return {item[PRIMARY_KEY]["S"]: state_from_item(item) for item in items}

    def handled(self, dedup_keys: Collection[str]) -> set[str]:
        items = self._batch_get(dedup_keys, projection=PRIMARY_KEY)
        return {item[PRIMARY_KEY]["S"] for item in items}

    def _batch_get(self, keys: Iterable[str], projection: str | None) -> list[dict[str, Any]]:
        unique = list(dict.fromkeys(keys))
        found: list[dict[str, Any]] = []
        for start in range(0, len(unique), _BATCH_GET_KEYS):
            request: dict[str, Any] = {
                "Keys": [{PRIMARY_KEY: {"S": k}} for k in unique[start : start + _BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }
            if projection:
                request["ProjectionExpression"] = "#k"
                request["ExpressionAttributeNames"] = {"#k": projection}
            pending: dict[str, Any] = {self.table_name: request}
            for attempt in range(self.max_attempts):
                response = self._client().batch_get_item(RequestItems=pending)
                found += response.get("Responses", {}).get(self.table_name, [])
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)  # throttled: back off before asking for the rest
            if pending:
                raise RuntimeError(f"DynamoDB left {len(pending[self.table_name]['Keys'])} keys unread")
        return found

    def commit(self, commits: Sequence[UserCommit], expires_at: int) -> set[str]:
        refused: set[str] = set()
        for commit in commits:
            expected = commit.expected_position
            for chunk in _chunks(commit.steps, MAX_TRANSACTION_ITEMS - 1):
                state = next((s.state for s in reversed(chunk) if s.state is not None), None)
                if not self._transact(commit.user_id, chunk, state, expected, expires_at):
                    refused.add(commit.user_id)
                    break
                if state is not None:
                    expected = state.position
        return refused

    def _transact(
        self,
        user_id: str,
        steps: Sequence[CommitStep],
        state: StoredState | None,
        expected: str | None,
        expires_at: int,
    ) -> bool:
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {PRIMARY_KEY: {"S": step.dedup_key}, TTL_ATTRIBUTE: {"N": str(expires_at)}},
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": {"#k": PRIMARY_KEY},
                }
            }
            for step in steps
        ]
        if state is not None:
            put: dict[str, Any] = {"TableName": self.table_name, "Item": state_item(state)}
            if expected is None:
                put["ConditionExpression"] = "attribute_not_exists(#k)"
                put["ExpressionAttributeNames"] = {"#k": PRIMARY_KEY}
            else:
                put["ConditionExpression"] = "applied_position = :expected"
                put["ExpressionAttributeValues"] = {":expected": {"S": expected}}
            actions.append({"Put": put})
        client = self._client()
        try:
            client.transact_write_items(TransactItems=actions)
        except client.exceptions.TransactionCanceledException:
            # A condition failed (a concurrent or repeated commit) or the transaction clashed
            # with another one: the user's records are retried, and the retry sees the truth.
            return False
        return True


def _chunks(steps: Sequence[CommitStep], size: int) -> Iterable[Sequence[CommitStep]]:
    for start in range(0, len(steps), size):
        yield steps[start : start + size]
