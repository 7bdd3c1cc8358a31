"""Online/offline parity: the streaming path and the Spark job compute the same features.

The same events go (a) as Kinesis records, shuffled, in several batches with replays, through the
online consumer, and (b) as lake rows (with ua_os and referrer_host as the Firehose
transformation derives them) through dedupe_events -> sessionize -> user_clickstream_features at
as_of = the event time of each user's online record. Every feature must match, floats to 1e-9
(:mod:`local_runtime.feature_parity`, the comparison the local run's parity stage uses too).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from glue_jobs.transforms.clickstream import dedupe_events, sessionize, user_clickstream_features
from lambdas.online_features.feature_store import InMemoryFeatureStore
from lambdas.online_features.processor import OnlineFeatureProcessor, StreamRecord
from lambdas.online_features.rejects import InMemoryRejectSink
from lambdas.online_features.state import InMemoryStateStore
from local_runtime.feature_parity import feature_differences
from platform_core.schemas.features import USER_CLICKSTREAM, from_feature_record
from tests.features.conftest import DESKTOP_UA, IPHONE_UA, raw_df, raw_row
from tests.features.kinesis_events import producer_event

pytestmark = pytest.mark.spark

ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"
)
# What the lake holds for each agent and referrer (the transformation's derivations).
AGENTS = {IPHONE_UA: "iOS", ANDROID_UA: "Android", DESKTOP_UA: "Windows", None: None}
REFERRERS = {
    "https://www.google.com/search?q=boots": "www.google.com",
    "https://t.co/abc": "t.co",
    "https://news.example.org/story": "news.example.org",
    None: None,
}
TYPES = ["page_view"] * 6 + ["click", "search", "add_to_cart", "add_to_cart", "purchase", "sign_in"]
# Support and plans pages, and paths that only look like them (a prefix ends at "/"; case counts).
PATHS = [
    "/",
    "/browse",
    "/help",
    "/help/billing",
    "/helpful",
    "/HELP",
    "/account/cancel",
    "/plans",
    "/pricing/x",
    "/account",
]
ENDS = (datetime(2024, 3, 10, 9, 0, tzinfo=UTC), datetime(2024, 3, 11, 0, 10, tzinfo=UTC))
GROUP = "user-clickstream"


def _events(rng: random.Random) -> list[dict[str, Any]]:
    """Sessions of 8 users over 70 days before one of two end instants (the last event of each
    user is at its end), with gaps around the 30-minute threshold, sessions across midnight and
    sessions on both sides of the 60-day lookback."""
    events: list[dict[str, Any]] = []
    for u in range(8):
        user = f"user-{u}"
        end = ENDS[u % 2]
        for s in range(rng.randint(3, 12)):
            t = end - timedelta(days=rng.uniform(0.02, 70))
            agent = rng.choice(list(AGENTS))
            referrer = rng.choice(list(REFERRERS))
            for i in range(rng.randint(1, 6)):
                if t >= end:
                    break
                events.append(
                    producer_event(
                        f"{user}-{s}-{i}",
                        t,
                        user_id=user,
                        event_type=rng.choice(TYPES),
                        session_id=f"{user}-cookie-{s}",
                        user_agent=agent,
                        referrer=referrer if i == 0 else "https://shop.example/cart",
                        path=rng.choice(PATHS),
                    )
                )
                t += timedelta(minutes=rng.choice([0.5, 3, 12, 29, 30, 31, 45]))
        events.append(producer_event(f"{user}-last", end, user_id=user, session_id=f"{user}-cookie-last"))
    events.append(producer_event("anon-1", ENDS[0], user_id=None, session_id="anon"))
    return events


def _lake_row(event: dict[str, Any], ingested_at: datetime) -> dict[str, Any]:
    return raw_row(
        event["event_id"],
        datetime.fromisoformat(event["event_time"].replace("Z", "+00:00")),
        user_id=event["user_id"],
        session_id=event["session_id"],
        event_type=event["event_type"],
        ua_os=AGENTS[event["user_agent"]],
        referrer_host=REFERRERS.get(event["referrer"], "shop.example"),
        ingested_at=ingested_at,
        request=event["request"],
    )


@pytest.fixture(scope="module")
def both_paths(spark: Any) -> Iterator[tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]]:
    import json

    rng = random.Random(20240310)
    events = _events(rng)
    # Online: shuffled, in batches of 25, then 30 random events replayed as another batch
    delivered = rng.sample(events, len(events)) + rng.sample(events, 30)
    store = InMemoryFeatureStore()
    processor = OnlineFeatureProcessor(
        state_store=InMemoryStateStore(),
        writer=store,
        rejects=InMemoryRejectSink(),
        feature_group_name=GROUP,
        now_ms=lambda: 1_900_000_000_000,
    )
    for start in range(0, len(delivered), 25):
        chunk = delivered[start : start + 25]
        batch = [StreamRecord(str(start + i), "pk", json.dumps(e).encode()) for i, e in enumerate(chunk)]
        outcome = processor.process(batch)
        assert outcome.failed_sequence_numbers == []
    online = {user_id: from_feature_record(USER_CLICKSTREAM, record) for (_, user_id), record in store.records.items()}
    # Offline: the lake holds the same events, some twice (at-least-once delivery)
    base = datetime(2024, 4, 1, tzinfo=UTC)
    rows = [_lake_row(e, base) for e in events] + [_lake_row(e, base + timedelta(hours=1)) for e in events[::7]]
    sessions = sessionize(dedupe_events(raw_df(spark, rows))).cache()
    offline: dict[str, dict[str, Any]] = {}
    for as_of in sorted({values["event_time"] for values in online.values()}):
        for row in user_clickstream_features(sessions, as_of).collect():
            if online.get(row.user_id, {}).get("event_time") == as_of:
                offline[row.user_id] = row.asDict()
    sessions.unpersist()
    yield online, offline


def test_both_paths_cover_the_same_users(
    both_paths: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]],
) -> None:
    online, offline = both_paths
    assert sorted(online) == sorted(offline) == [f"user-{u}" for u in range(8)]
    # As of each user's last event, or a few ms after it: the shuffled delivery brought late events,
    # each of which moves the record's instant on by 1 ms (lambdas/online_features/state.py)
    for u in range(8):
        instant = online[f"user-{u}"]["event_time"]
        assert ENDS[u % 2] <= instant < ENDS[u % 2] + timedelta(seconds=1)


def test_every_feature_matches_value_by_value(
    both_paths: tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]],
) -> None:
    online, offline = both_paths
    for user_id, online_values in online.items():
        names = USER_CLICKSTREAM.value_names
        assert feature_differences(USER_CLICKSTREAM, user_id, online_values, offline[user_id], names) == []
    # The data really exercised the features (not all zeros and nulls)
    assert any(v["sessions_7d"] > 1 for v in online.values())
    assert any(v["purchases_30d"] > 0 for v in online.values())
    assert any(0 < (v["bounce_rate_30d"] or 0) < 1 for v in online.values())
