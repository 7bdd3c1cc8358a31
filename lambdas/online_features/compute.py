"""The user clickstream features in plain Python: the online twin of the Spark job.

Same definitions as :func:`glue_jobs.transforms.clickstream.user_clickstream_features` (field
list, windows, gap, classification rules all from :mod:`platform_core.schemas.features`), step by
step in the same order, so that for the same events and the same ``as_of`` both produce the same
values; ``tests/features/test_online_offline_parity.py`` holds them to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lambdas.online_features.events import FeatureEvent
from platform_core.schemas.features import (
    ADD_TO_CART_EVENT,
    CLICKSTREAM_WINDOWS_DAYS,
    DEFAULT_SESSION_GAP_MINUTES,
    EVENT_TIME,
    PAGE_PLANS,
    PAGE_SUPPORT,
    PURCHASE_EVENT,
    RECORD_IDENTIFIER,
    REFERRER_DIRECT,
    REFERRER_SEARCH,
    REFERRER_SOCIAL,
    SEARCH_EVENT,
    clickstream_feature_fields,
    lookback_days,
)

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def horizon_ms(windows: Sequence[int], gap_minutes: int) -> int:
    """How far before as_of events still matter: the lookback plus one session gap (the session
    holding the lookback's first event may have started up to a gap earlier)."""
    return lookback_days(tuple(windows)) * MS_PER_DAY + gap_minutes * MS_PER_MINUTE


def ms_to_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class Session:
    start_ms: int
    first_ms: int  # of the events kept (<= as_of and inside the horizon)
    last_ms: int
    events: int
    mobile: int
    purchases: int
    carts: int
    support: int
    plans: int
    searches: int
    entry: str  # referrer class of the session's first event


def sessions_of(events: Iterable[FeatureEvent], gap_minutes: int) -> list[list[FeatureEvent]]:
    """One party's events split into sessions (ordered by time, then event id, like Spark)."""
    ordered = sorted(events, key=lambda e: (e.time_ms, e.event_id))
    gap = gap_minutes * MS_PER_MINUTE
    sessions: list[list[FeatureEvent]] = []
    for event in ordered:
        if sessions and event.time_ms - sessions[-1][-1].time_ms <= gap:
            sessions[-1].append(event)
        else:
            sessions.append([event])
    return sessions


def _summaries(events: Iterable[FeatureEvent], as_of_ms: int, windows: Sequence[int], gap: int) -> list[Session]:
    """Sessions with an event in (as_of - lookback, as_of], counting events in that range."""
    lower = as_of_ms - lookback_days(tuple(windows)) * MS_PER_DAY
    out = []
    for session in sessions_of((e for e in events if e.time_ms <= as_of_ms), gap):
        kept = [e for e in session if e.time_ms > lower]
        if not kept:
            continue
        out.append(
            Session(
                start_ms=session[0].time_ms,
                first_ms=kept[0].time_ms,
                last_ms=kept[-1].time_ms,
                events=len(kept),
                mobile=sum(e.mobile for e in kept),
                purchases=sum(e.event_type == PURCHASE_EVENT for e in kept),
                carts=sum(e.event_type == ADD_TO_CART_EVENT for e in kept),
                support=sum(e.page == PAGE_SUPPORT for e in kept),
                plans=sum(e.page == PAGE_PLANS for e in kept),
                searches=sum(e.event_type == SEARCH_EVENT for e in kept),
                entry=session[0].referrer,
            )
        )
    return out


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _window(sessions: Sequence[Session], as_of_ms: int, days: int) -> dict[str, Any]:
    inside = [s for s in sessions if s.start_ms > as_of_ms - days * MS_PER_DAY]
    w = f"{days}d"
    n = len(inside)
    events = sum(s.events for s in inside)
    carts = sum(s.carts for s in inside)
    purchases = sum(s.purchases for s in inside)
    return {
        f"sessions_{w}": n,
        f"events_{w}": events,
        f"events_per_session_{w}": _ratio(events, n),
        f"mean_session_seconds_{w}": _mean([(s.last_ms - s.first_ms) / 1000 for s in inside]),
        f"bounce_rate_{w}": _mean([float(s.events == 1) for s in inside]),
        f"mobile_share_{w}": _ratio(sum(s.mobile for s in inside), events),
        f"search_share_{w}": _mean([float(s.entry == REFERRER_SEARCH) for s in inside]),
        f"social_share_{w}": _mean([float(s.entry == REFERRER_SOCIAL) for s in inside]),
        f"direct_share_{w}": _mean([float(s.entry == REFERRER_DIRECT) for s in inside]),
        f"add_to_cart_{w}": carts,
        f"purchases_{w}": purchases,
        f"cart_to_purchase_{w}": _ratio(purchases, carts),
    }


def _intent(sessions: Sequence[Session], as_of_ms: int, days: int) -> dict[str, Any]:
    inside = [s for s in sessions if s.start_ms > as_of_ms - days * MS_PER_DAY]
    w = f"{days}d"
    return {
        f"support_views_{w}": sum(s.support for s in inside),
        f"plans_views_{w}": sum(s.plans for s in inside),
        f"searches_{w}": sum(s.searches for s in inside),
    }


def _trend(sessions: Sequence[Session], as_of_ms: int, days: int) -> dict[str, Any]:
    span = days * MS_PER_DAY
    recent = sum(1 for s in sessions if s.start_ms > as_of_ms - span)
    prior = sum(1 for s in sessions if as_of_ms - 2 * span < s.start_ms <= as_of_ms - span)
    return {f"sessions_prior_{days}d": prior, f"session_change_{days}d": recent - prior}


def clickstream_features(
    user_id: str,
    events: Iterable[FeatureEvent],
    as_of_ms: int,
    *,
    windows: Sequence[int] = CLICKSTREAM_WINDOWS_DAYS,
    gap_minutes: int = DEFAULT_SESSION_GAP_MINUTES,
) -> dict[str, Any] | None:
    """The user's ``user-clickstream`` feature values as of ``as_of_ms`` (None without a recent
    event, as the Spark job then writes no row). Exact when ``events`` holds every event of the
    user in ``(as_of - horizon_ms, as_of]``."""
    sessions = _summaries(events, as_of_ms, windows, gap_minutes)
    if not sessions:
        return None
    values: dict[str, Any] = {RECORD_IDENTIFIER: user_id, EVENT_TIME: ms_to_datetime(as_of_ms)}
    for days in windows:
        values.update(_window(sessions, as_of_ms, days))
    values["days_since_last_event"] = (as_of_ms - max(s.last_ms for s in sessions)) / MS_PER_DAY
    for days in windows:
        values.update(_intent(sessions, as_of_ms, days))
    values.update(_trend(sessions, as_of_ms, max(windows)))
    # Same names, same order as the feature group: a drift between the two paths fails here.
    names = [f.name for f in clickstream_feature_fields(tuple(windows))]
    if list(values) != names:
        raise RuntimeError(f"online features drifted from the definitions: {sorted(set(values) ^ set(names))}")
    return values
