"""Clickstream events: the platform's event contract, and behaviour that follows the latent traits."""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from datagen.clickstream import clickstream_window
from datagen.config import GeneratorConfig
from datagen.world import SyntheticWorld, build_world
from platform_core.schema import StructOf, type_errors
from platform_core.schemas.clickstream import CLICKSTREAM_EVENT, EVENT_TYPES

EVENT_STRUCT = StructOf(name="ClickstreamEvent", fields=CLICKSTREAM_EVENT.fields)


def _time(event: dict[str, Any]) -> datetime:
    value = event["event_time"]
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.fromisoformat(value)


def test_every_event_follows_the_contract(world: SyntheticWorld, events: list[dict[str, Any]]) -> None:
    start, end = clickstream_window(world.config)
    for event in events:
        assert type_errors(event, EVENT_STRUCT, "event") == [], event
        assert event["event_type"] in EVENT_TYPES
        moment = _time(event)
        assert moment.tzinfo is not None  # ISO-8601 with a zone
        assert start <= moment < end + timedelta(hours=2)
        ipaddress.ip_address(event["ip"])  # raises on a malformed address
        assert all(isinstance(v, str) for v in event["properties"].values())
    assert len({e["event_id"] for e in events}) == len(events)


def test_events_come_in_time_order_with_a_mix_of_zones(events: list[dict[str, Any]]) -> None:
    times = [_time(e) for e in events]
    assert times == sorted(times)
    zulu = sum(isinstance(e["event_time"], str) and e["event_time"].endswith("Z") for e in events)
    assert 0.8 * len(events) < zulu < len(events)  # most in UTC, some with an offset


def test_sessions_mix_users_anonymous_visitors_and_realistic_agents(events: list[dict[str, Any]]) -> None:
    anonymous = [e for e in events if e["user_id"] is None]
    assert 0.03 * len(events) < len(anonymous) < 0.25 * len(events)
    assert any("Googlebot" in e["user_agent"] for e in anonymous)
    assert all(e["user_agent"].startswith(("Mozilla/5.0", "Roku/")) for e in events)
    kinds = Counter(e["event_type"] for e in events)
    assert set(kinds) == set(EVENT_TYPES)  # every event type shows up
    assert kinds["page_view"] > kinds["purchase"]
    sessions = defaultdict(set)
    for e in events:
        sessions[e["session_id"]].add(e["user_id"])
    assert all(len(users) == 1 for users in sessions.values())  # a session belongs to one visitor


def test_logged_in_events_happen_only_while_subscribed(world: SyntheticWorld, events: list[dict[str, Any]]) -> None:
    intervals = world.history.active_intervals
    slack = timedelta(hours=2)  # a session that started while subscribed may run on a little
    for event in events:
        if event["user_id"] is None:
            continue
        moment = _time(event)
        assert any(start <= moment <= finish + slack for start, finish in intervals[event["user_id"]])


def test_behaviour_follows_the_latent_traits() -> None:
    # Given a world big enough for per-trait rates to show
    world = build_world(GeneratorConfig(n_users=1500, seed=4, events_per_user=40))
    events = world.clickstream()
    population = world.population
    index = {u: i for i, u in enumerate(population.user_ids)}
    per_user: dict[int, Counter[str]] = defaultdict(Counter)
    for e in events:
        if e["user_id"] is None:
            continue
        i = index[e["user_id"]]
        per_user[i]["events"] += 1
        per_user[i][e["event_type"]] += 1
        per_user[i][e["properties"].get("page", "")] += 1

    def rate(mask: np.ndarray, what: str) -> float:
        chosen = [per_user[i] for i in np.flatnonzero(mask).tolist()]
        return sum(c[what] for c in chosen) / max(1, sum(c["events"] for c in chosen))

    engaged, disengaged = population.engagement > 1, population.engagement < -1
    unhappy, happy = population.satisfaction < -1, population.satisfaction > 1
    sensitive, relaxed = population.price_sensitivity > 1, population.price_sensitivity < -1
    # Then engaged users are busier and buy more, unhappy users seek help, sensitive ones check plans
    busy = np.mean([per_user[i]["events"] for i in np.flatnonzero(engaged).tolist()])
    idle = np.mean([per_user[i]["events"] for i in np.flatnonzero(disengaged).tolist()])
    assert busy > 2 * idle
    assert rate(engaged, "purchase") > 1.5 * rate(disengaged, "purchase")
    assert rate(unhappy, "support") > 2 * rate(happy, "support")
    assert rate(sensitive, "plans") > 2 * rate(relaxed, "plans")


def test_at_risk_users_slow_down_before_they_leave(big_world: SyntheticWorld) -> None:
    renewals = big_world.history.renewals
    index = {u: i for i, u in enumerate(big_world.population.user_ids)}
    trend = big_world.population.trend[[index[u] for u in renewals["user_id"]]]
    change = renewals["activity"] - renewals["previous_activity"]
    assert change[trend < -1].mean() < -0.2 < 0.2 < change[trend > 1].mean()


def test_cancellation_pages_come_after_the_cutoff(world: SyntheticWorld, events: list[dict[str, Any]]) -> None:
    # Given the moments users confirmed a cancellation on the site
    confirmations: dict[str, list[datetime]] = defaultdict(list)
    for e in events:
        if e["request"]["path"] == "/account/cancel/confirm":
            confirmations[e["user_id"]].append(_time(e))
    churned = world.history.renewals[world.history.renewals["churned"]]
    assert sum(len(v) for v in confirmations.values()) == len(churned)
    # Then each churned renewal has its confirmation between the cutoff and the renewal date
    for row in churned.itertuples():
        renewal = datetime.combine(row.renewal_date, datetime.min.time(), UTC)
        assert any(row.cutoff_time < t <= renewal + timedelta(hours=1) for t in confirmations[row.user_id])
