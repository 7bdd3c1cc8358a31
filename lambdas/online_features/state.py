"""Per-user state of the online features, and where it is kept.

Design (idempotency by construction): the state of a user is the list of their recent events,
each with its ``event_id``; features are recomputed from it. Merging an event whose id is already
there changes nothing, so a replayed batch, a Lambda retry or a duplicate from the producer can
never inflate a count. Events are kept for :func:`~lambdas.online_features.compute.horizon_ms`
before the user's latest event, which is everything the features can read; an event older than
that cannot change a feature, so dropping it (and forgetting its id) is safe too.

The state also keeps the instant its features are written *as of* (``as_of_ms``): the user's latest
event, moved 1 ms later for every event merged that is not later than the instant already reached.
``PutRecord`` keeps a record online only if its event time is *greater* than the stored record's (an
equal one is historic), so a late event, which changes the features but not the latest event time,
must give the record a later instant or the online store would keep the stale one for good. The
instant is a fold over the events in arrival order: replays change nothing, and how the events were
cut into batches does not change it either. The features are exact as of it, as the Spark job's are
as of its ``as_of``.

Writes are optimistic: a state carries a ``version``, and saving it succeeds only if the stored
version is still the one that was read (a user's events can reach two shards at once, because
the stream is partitioned by session). A lost race reloads, re-merges and tries again.

In DynamoDB one item per user: ``user_id`` (partition key), ``version`` (number), ``events``
(binary: zlib-compressed JSON, so that a busy month fits the 400 KB item limit), ``as_of`` (number,
epoch ms; absent in items written before it existed: the latest event then) and ``expires_at``
(epoch seconds for the table's TTL: the latest event time plus the horizon plus the stream's
retention, data time rather than wall time, so replays stay deterministic). At most
``MAX_STATE_EVENTS`` are kept; beyond that the oldest go, and the 30-day counts of such a user
(over ~300 events a day) become lower bounds.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lambdas.online_features.events import FeatureEvent

MAX_STATE_EVENTS = 10_000
BATCH_GET_KEYS = 100  # BatchGetItem's limit
BATCH_GET_ATTEMPTS = 5
STREAM_RETENTION_MS = 7 * 86_400_000


@dataclass
class UserState:
    user_id: str
    events: list[FeatureEvent] = field(default_factory=list)
    version: int = 0  # 0: never saved
    as_of_ms: int | None = None  # the instant the features are as of (module docstring); None: no event yet

    @property
    def latest_ms(self) -> int | None:
        return max((e.time_ms for e in self.events), default=None)

    def merge(self, new_events: Iterable[FeatureEvent], horizon_ms: int) -> int:
        """Add the events not seen before; drop what fell out of the horizon. Returns how many
        new events the state holds afterwards (a late event already outside the horizon is not
        one of them: it could not change any feature). Advances ``as_of_ms`` (module docstring)."""
        known = {e.event_id for e in self.events}
        added: set[str] = set()
        latest = self.latest_ms
        instant = latest if self.as_of_ms is None else self.as_of_ms
        for event in new_events:
            if event.event_id in known or (latest is not None and event.time_ms <= latest - horizon_ms):
                continue  # seen before, or already too old to change a feature when it arrived
            known.add(event.event_id)
            added.add(event.event_id)
            self.events.append(event)
            latest = event.time_ms if latest is None else max(latest, event.time_ms)
            instant = event.time_ms if instant is None else max(event.time_ms, instant + 1)
        self.as_of_ms = instant
        if latest is not None:
            self.events = [e for e in self.events if e.time_ms > latest - horizon_ms]
        if len(self.events) > MAX_STATE_EVENTS:
            self.events = sorted(self.events, key=lambda e: (e.time_ms, e.event_id))[-MAX_STATE_EVENTS:]
        return sum(1 for e in self.events if e.event_id in added)


def encode_events(events: Iterable[FeatureEvent]) -> bytes:
    rows = [[e.event_id, e.time_ms, e.event_type, int(e.mobile), e.referrer, e.page] for e in events]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 6)


def decode_events(blob: bytes) -> list[FeatureEvent]:
    """Events of a stored state. Items written before the page class existed have five columns:
    their events read as no support or plans page (a lower bound until they age out)."""
    rows = json.loads(zlib.decompress(blob))
    return [
        FeatureEvent(
            event_id=r[0],
            time_ms=r[1],
            event_type=r[2],
            mobile=bool(r[3]),
            referrer=r[4],
            page=r[5] if len(r) > 5 else None,
        )
        for r in rows
    ]


class StateStore(Protocol):
    def load(self, user_id: str) -> UserState: ...

    def load_many(self, user_ids: Collection[str]) -> dict[str, UserState]:
        """The state of every user in ``user_ids`` (a new one for a user without an item)."""
        ...

    def save(self, state: UserState) -> bool:
        """Store ``state`` as version ``state.version + 1`` if the stored version is still
        ``state.version``; False when another writer came first."""
        ...


class InMemoryStateStore:
    """For tests and the local runtime."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[int, bytes, int | None]] = {}

    def load(self, user_id: str) -> UserState:
        version, blob, as_of = self.items.get(user_id, (0, encode_events([]), None))
        return UserState(user_id, decode_events(blob), version, as_of)

    def load_many(self, user_ids: Collection[str]) -> dict[str, UserState]:
        return {user_id: self.load(user_id) for user_id in user_ids}

    def save(self, state: UserState) -> bool:
        stored_version = self.items.get(state.user_id, (0, b"", None))[0]
        if stored_version != state.version:
            return False
        self.items[state.user_id] = (state.version + 1, encode_events(state.events), state.as_of_ms)
        state.version += 1
        return True


def _state_from_item(item: dict[str, Any]) -> UserState:
    as_of = int(item["as_of"]["N"]) if "as_of" in item else None
    return UserState(item["user_id"]["S"], decode_events(item["events"]["B"]), int(item["version"]["N"]), as_of)


class DynamoDBStateStore:
    """One item per user in a DynamoDB table keyed by ``user_id`` (string)."""

    def __init__(self, table_name: str, client_factory: Callable[[], Any], horizon_ms: int) -> None:
        self._table = table_name
        self._client = client_factory
        self._horizon_ms = horizon_ms

    def load(self, user_id: str) -> UserState:
        item = (
            self._client()
            .get_item(TableName=self._table, Key={"user_id": {"S": user_id}}, ConsistentRead=True)
            .get("Item")
        )
        return UserState(user_id) if item is None else _state_from_item(item)

    def load_many(self, user_ids: Collection[str]) -> dict[str, UserState]:
        """One ``BatchGetItem`` per 100 users instead of a ``GetItem`` each; keys DynamoDB leaves
        unprocessed (throttling) are asked again with a growing pause, then read one by one."""
        states = {user_id: UserState(user_id) for user_id in user_ids}
        unique = list(states)
        for start in range(0, len(unique), BATCH_GET_KEYS):
            keys = [{"user_id": {"S": user_id}} for user_id in unique[start : start + BATCH_GET_KEYS]]
            pending: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self._client().batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self._table, []):
                    states[item["user_id"]["S"]] = _state_from_item(item)
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            for key in pending.get(self._table, {}).get("Keys", []):
                states[key["user_id"]["S"]] = self.load(key["user_id"]["S"])
        return states

    def save(self, state: UserState) -> bool:
        client = self._client()
        latest = state.latest_ms or 0
        expires_at = (latest + self._horizon_ms + STREAM_RETENTION_MS) // 1000
        item = {
            "user_id": {"S": state.user_id},
            "version": {"N": str(state.version + 1)},
            "events": {"B": encode_events(state.events)},
            "expires_at": {"N": str(expires_at)},
        }
        if state.as_of_ms is not None:
            item["as_of"] = {"N": str(state.as_of_ms)}
        try:
            if state.version == 0:
                client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(user_id)")
            else:
                client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="version = :read",
                    ExpressionAttributeValues={":read": {"N": str(state.version)}},
                )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        state.version += 1
        return True
