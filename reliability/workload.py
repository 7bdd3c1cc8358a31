"""Seeded workloads for the reliability tests: clickstream events, malformed records, DMS records.

Everything is a function of the seed, so a failing run can be replayed exactly. Event times are
fixed instants in the past (not "now"), so the same events are accepted on every day the tests run
and the online features (computed as of each user's latest event) do not depend on the clock.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from platform_core.schemas.cdc import PRIMARY_KEY, SOURCE_SCHEMA_NAME, SOURCE_TABLE_NAME
from platform_core.schemas.clickstream import EVENT_TYPES

BASE_TIME = datetime(2025, 6, 2, tzinfo=UTC)

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
)
REFERRERS: tuple[str | None, ...] = (
    None,
    "https://www.google.com/search?q=shoes",
    "https://t.co/abc",
    "https://shop.example.com/cart",
)
PATHS: tuple[str, ...] = ("/", "/search", "/product/42", "/cart", "/checkout", "/api/v1/items")
_EVENT_TYPES: tuple[str, ...] = tuple(sorted(EVENT_TYPES))


def clickstream_events(
    count: int,
    *,
    users: int,
    seed: int,
    span: timedelta = timedelta(days=3),
    anonymous_share: float = 0.1,
    without_event_id_share: float = 0.5,
) -> list[dict[str, Any]]:
    """``count`` valid clickstream events of ``users`` users, in time order.

    About ``without_event_id_share`` of them carry no ``event_id``, so that the producer assigns
    one (its idempotency key must survive every retry); the rest carry a seeded UUIDv4. Event times
    alternate between ISO-8601 text and epoch milliseconds, both allowed by the contract.
    """
    rng = random.Random(seed)
    start_ms = int((BASE_TIME - span).timestamp() * 1000)
    step_ms = max(1, int(span.total_seconds() * 1000) // max(count, 1))
    sessions = [f"s-{seed}-{u}-0" for u in range(users)]
    events: list[dict[str, Any]] = []
    for i in range(count):
        user = rng.randrange(users)
        if rng.random() < 0.02:  # a new session for this user now and then
            sessions[user] = f"s-{seed}-{user}-{i}"
        at_ms = start_ms + i * step_ms + rng.randrange(step_ms)
        anonymous = rng.random() < anonymous_share
        event: dict[str, Any] = {
            "event_time": at_ms if i % 2 else _iso(at_ms),
            "event_type": rng.choice(_EVENT_TYPES),
            "session_id": sessions[user],
            "user_id": None if anonymous else f"user-{user:05d}",
            "user_agent": rng.choice(USER_AGENTS),
            "ip": f"203.0.113.{rng.randrange(1, 255)}",
            "referrer": rng.choice(REFERRERS),
            "request": {
                "method": "GET",
                "path": rng.choice(PATHS),
                "query": None,
                "status": 200,
                "latency_ms": round(rng.uniform(1, 300), 3),
            },
            "properties": {"campaign": f"c{rng.randrange(5)}"},
        }
        if rng.random() >= without_event_id_share:
            event["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        events.append(event)
    return events


def _iso(epoch_ms: int) -> str:
    instant = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class BadRecord:
    """A record a misbehaving producer writes straight to the stream, and the reason code the
    transform must give it (:class:`platform_core.validation.ReasonCode` values)."""

    data: bytes
    reason_code: str


def malformed_clickstream_records(count: int, *, seed: int) -> list[BadRecord]:
    """``count`` records that break the contract in different ways (each one unique)."""
    rng = random.Random(seed)
    kinds = (
        lambda i: BadRecord(f"not json {i} {{".encode(), "not_json"),
        lambda i: BadRecord(json.dumps([i, "an array"]).encode(), "not_object"),
        lambda i: BadRecord(
            json.dumps(
                {
                    "event_id": f"bad-{seed}-{i}",
                    "event_time": _iso(1_750_000_000_000),
                    "event_type": "teleport",
                    "session_id": "s",
                }
            ).encode(),
            "unknown_event_type",
        ),
        lambda i: BadRecord(
            json.dumps({"event_id": f"bad-{seed}-{i}", "event_type": "click", "session_id": "s"}).encode(),
            "missing_field",
        ),
        lambda i: BadRecord(b"\xff\xfe" + str(i).encode(), "not_utf8"),
    )
    return [rng.choice(kinds)(i) for i in range(count)]


# ---------------------------------------------------------------------------------------------
# CDC: DMS Kinesis-target records of the subscriptions table
# ---------------------------------------------------------------------------------------------

_PLANS: tuple[tuple[str, float], ...] = (("basic", 9.99), ("standard", 14.99), ("premium", 19.99))


def dms_records(*, users: int, changes_per_user: int, seed: int) -> list[dict[str, Any]]:
    """DMS messages (insert, then updates, sometimes a final delete) for ``users`` users,
    interleaved in commit order, with transaction ids and before images (``BeforeImageSettings``
    with ``ColumnFilter: all``), as the platform's DMS task writes them."""
    rng = random.Random(seed)
    start = BASE_TIME - timedelta(days=30)
    timeline: list[tuple[datetime, int, dict[str, Any]]] = []
    for u in range(users):
        user_id = f"user-{u:05d}"
        at = start + timedelta(seconds=rng.randrange(86_400))
        row: dict[str, Any] | None = None
        for step in range(changes_per_user):
            at += timedelta(hours=rng.randrange(1, 72), seconds=rng.randrange(3600))
            before = row
            if row is None:
                plan, price = rng.choice(_PLANS)
                row = _row(user_id, True, at.date() + timedelta(days=30), plan, price)
                operation = "insert"
            elif step == changes_per_user - 1 and rng.random() < 0.1:
                operation, row = "delete", None
            else:
                plan, price = rng.choice(_PLANS)
                row = _row(user_id, rng.random() < 0.7, at.date() + timedelta(days=30), plan, price)
                operation = "update"
            timeline.append((at, u, _message(operation, row if row is not None else before, before, at)))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return [
        {**message, "metadata": {**message["metadata"], "transaction-id": 10_000 + index}}
        for index, (_, _, message) in enumerate(timeline)
    ]


def _row(user_id: str, active: bool, renewal: date, plan: str, price: float) -> dict[str, Any]:
    return {
        PRIMARY_KEY: user_id,
        "is_active_subscribed": active,
        "renewal_date": renewal.isoformat(),
        "plan": plan,
        "price": price,
    }


def _message(
    operation: str, data: dict[str, Any] | None, before: dict[str, Any] | None, at: datetime
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "data": data,
        "metadata": {
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "record-type": "data",
            "operation": operation,
            "partition-key-type": "primary-key",
            "schema-name": SOURCE_SCHEMA_NAME,
            "table-name": SOURCE_TABLE_NAME,
        },
    }
    if before is not None and operation != "insert":
        message["before-image"] = before
    return message


def encode_lines(messages: Sequence[dict[str, Any]]) -> list[bytes]:
    """Compact JSON bytes, one per message (what DMS puts in a Kinesis record)."""
    return [json.dumps(m, separators=(",", ":")).encode() for m in messages]
