"""dedupe_events, sessionize and user_clickstream_features against hand-computed results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from glue_jobs.transforms.clickstream import dedupe_events, sessionize, user_clickstream_features
from platform_core.schemas.features import USER_CLICKSTREAM, clickstream_feature_fields
from tests.features.conftest import T0, at, raw_df, raw_row

pytestmark = pytest.mark.spark


def _utc(value: datetime) -> datetime:
    """Spark hands back naive datetimes in the session zone, which is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def test_dedupe_keeps_the_earliest_ingested_copy_of_each_event(spark: Any) -> None:
    # Given e1 delivered twice (the retry was ingested later, and differs in a derived column),
    # e2 delivered three times identically, and e3 once
    rows = [
        raw_row("e1", at(0), ingested_at=at(5), ua_browser="retry"),
        raw_row("e1", at(0), ingested_at=at(1), ua_browser="first"),
        raw_row("e2", at(2)),
        raw_row("e2", at(2)),
        raw_row("e2", at(2)),
        raw_row("e3", at(3)),
    ]
    # When
    out = dedupe_events(raw_df(spark, rows)).collect()
    # Then one row per event id, and e1 is its first ingested copy
    assert sorted(r.event_id for r in out) == ["e1", "e2", "e3"]
    assert next(r for r in out if r.event_id == "e1").ua_browser == "first"
    assert set(dedupe_events(raw_df(spark, rows)).columns) == set(raw_df(spark, rows[:1]).columns)


def test_sessions_split_after_the_gap_and_continue_across_midnight(spark: Any) -> None:
    # Given u1 active from 23:50 to 00:35 (gaps of 20 and 25 minutes), then after 31 minutes of
    # silence two events exactly 30 minutes apart; and two anonymous cookies at the same time
    midnight = T0
    rows = [
        raw_row("a", midnight - timedelta(minutes=10), session_id="c1"),
        raw_row("b", midnight + timedelta(minutes=10), session_id="c1"),
        raw_row("c", midnight + timedelta(minutes=35), session_id="c2"),  # new cookie, same user
        raw_row("d", midnight + timedelta(minutes=66), session_id="c2"),
        raw_row("e", midnight + timedelta(minutes=96), session_id="c2"),
        raw_row("x1", midnight, user_id=None, session_id="anon-1"),
        raw_row("x2", midnight + timedelta(minutes=5), user_id=None, session_id="anon-1"),
        raw_row("y1", midnight, user_id=None, session_id="anon-2"),
    ]
    # When
    out = {r.event_id: r for r in sessionize(raw_df(spark, rows)).collect()}
    # Then u1 has two sessions: {a, b, c} starting before midnight, and {d, e}
    assert out["a"].session_key == out["b"].session_key == out["c"].session_key
    assert _utc(out["c"].session_start) == midnight - timedelta(minutes=10)
    assert out["d"].session_key == out["e"].session_key != out["a"].session_key
    assert _utc(out["e"].session_start) == midnight + timedelta(minutes=66)
    assert out["a"].party_key == "user:u1"
    # and anonymous events are sessionised by their cookie
    assert out["x1"].session_key == out["x2"].session_key != out["y1"].session_key
    assert out["x1"].party_key == "session:anon-1"
    assert len({r.session_key for r in out.values()}) == 4


def test_gap_is_configurable(spark: Any) -> None:
    # Given events 20 minutes apart
    rows = [raw_row("a", at(0)), raw_row("b", at(20)), raw_row("c", at(40))]
    # When the gap is 15 minutes, then every event is a session; with 30 minutes, one session
    assert sessionize(raw_df(spark, rows), gap_minutes=15).select("session_key").distinct().count() == 3
    assert sessionize(raw_df(spark, rows), gap_minutes=30).select("session_key").distinct().count() == 1
    with pytest.raises(ValueError, match="positive"):
        sessionize(raw_df(spark, rows), gap_minutes=0)


def test_session_keys_do_not_change_when_later_events_arrive(spark: Any) -> None:
    # Given the events of one day, and the same day plus the next day's events
    day_one = [raw_row("a", at(0)), raw_row("b", at(10)), raw_row("c", at(100))]
    both_days = [*day_one, raw_row("d", at(110)), raw_row("e", at(0, days=1))]
    # When both are sessionised
    first = {r.event_id: r.session_key for r in sessionize(raw_df(spark, day_one)).collect()}
    second = {r.event_id: r.session_key for r in sessionize(raw_df(spark, both_days)).collect()}
    # Then the keys of the first day's events are the same (and "d" joined "c"'s session)
    assert {k: second[k] for k in first} == first
    assert second["d"] == second["c"]


AS_OF = T0 + timedelta(hours=12)


def _feature_rows() -> list[dict[str, Any]]:
    def t(days: float, minutes: float = 0) -> datetime:
        return AS_OF - timedelta(days=days) + timedelta(minutes=minutes)

    return [
        # user a. A1: 2 days ago, from Google, on an iPhone: view, cart, purchase over 10 minutes
        raw_row("a1", t(2), user_id="a", ua_os="iOS", referrer_host="www.google.com"),
        raw_row("a2", t(2, 5), user_id="a", ua_os="iOS", referrer_host="shop.example", event_type="add_to_cart"),
        raw_row("a3", t(2, 10), user_id="a", ua_os="iOS", event_type="purchase"),
        raw_row("a3", t(2, 10), user_id="a", ua_os="iOS", event_type="purchase", ingested_at=t(1)),  # replay
        # A2: 10 days ago, direct, desktop, one event (a bounce)
        raw_row("a4", t(10), user_id="a", ua_os="Windows"),
        # A3: 20 days ago, from t.co, Android, view then cart a minute later
        raw_row("a5", t(20), user_id="a", ua_os="Android", referrer_host="t.co"),
        raw_row("a6", t(20, 1), user_id="a", ua_os="Android", event_type="add_to_cart"),
        # A4: 40 days ago (outside every window), and one event after as_of: both ignored
        raw_row("a7", t(40), user_id="a", event_type="purchase"),
        raw_row("a8", t(-1 / 24), user_id="a", event_type="purchase"),
        # user b: a session that started 10 minutes before the 30-day window, ending inside it
        raw_row("b1", t(30, -10), user_id="b"),
        raw_row("b2", t(30, 10), user_id="b"),
        # user c: only after as_of; anonymous traffic: neither gets a row
        raw_row("c1", t(-1), user_id="c"),
        raw_row("x1", t(1), user_id=None, session_id="anon"),
        # user d: a session starting exactly 7 days before as_of (outside 7d), one exactly at as_of
        raw_row("d1", t(7), user_id="d"),
        raw_row("d2", t(0), user_id="d"),
        # user e: what they looked at. 3 days ago: help twice, plans once, a search, a click on a
        # help link (not a page view) and paths that only look like help pages; 45 days ago (the
        # prior 30 days): a plans page; 61 days ago: outside the 60-day lookback
        raw_row("e1", t(3), user_id="e", request=_request("/help")),
        raw_row("e2", t(3, 1), user_id="e", request=_request("/help/cancel-subscription")),
        raw_row("e3", t(3, 2), user_id="e", request=_request("/plans")),
        raw_row("e4", t(3, 3), user_id="e", event_type="search", request=_request("/search")),
        raw_row("e5", t(3, 4), user_id="e", event_type="click", request=_request("/help")),
        raw_row("e6", t(3, 5), user_id="e", request=_request("/helpful-tips")),
        raw_row("e7", t(3, 6), user_id="e", request=_request("/HELP")),
        raw_row("e8", t(45), user_id="e", request=_request("/account/change-plan")),
        raw_row("e9", t(61), user_id="e", request=_request("/help")),
        # user f: one session 50 days ago, so the row shows a user who went quiet; user g:
        # only 61 days ago, outside the lookback: no row
        raw_row("f1", t(50), user_id="f"),
        raw_row("f2", t(50, 5), user_id="f"),
        raw_row("g1", t(61), user_id="g"),
    ]


def _request(path: str) -> dict[str, Any]:
    return {"method": "GET", "path": path, "query": None, "status": 200, "latency_ms": 10.0}


@pytest.fixture(scope="module")
def features(spark: Any) -> dict[str, dict[str, Any]]:
    events = sessionize(dedupe_events(raw_df(spark, _feature_rows())))
    df = user_clickstream_features(events, AS_OF)
    assert df.columns == list(USER_CLICKSTREAM.feature_names)
    return {r.user_id: r.asDict() for r in df.collect()}


def test_one_row_per_user_active_in_the_lookback(features: dict[str, dict[str, Any]]) -> None:
    assert sorted(features) == ["a", "b", "d", "e", "f"]
    assert {_utc(r["event_time"]) for r in features.values()} == {AS_OF}


def test_features_over_seven_days(features: dict[str, dict[str, Any]]) -> None:
    a = features["a"]
    assert (a["sessions_7d"], a["events_7d"], a["add_to_cart_7d"], a["purchases_7d"]) == (1, 3, 1, 1)
    assert a["events_per_session_7d"] == 3.0
    assert a["mean_session_seconds_7d"] == 600.0
    assert a["bounce_rate_7d"] == 0.0
    assert a["mobile_share_7d"] == 1.0
    assert (a["search_share_7d"], a["social_share_7d"], a["direct_share_7d"]) == (1.0, 0.0, 0.0)
    assert a["cart_to_purchase_7d"] == 1.0


def test_features_over_thirty_days(features: dict[str, dict[str, Any]]) -> None:
    a = features["a"]
    # A1 (3 events, 600 s), A2 (1 event, bounce), A3 (2 events, 60 s); the replayed a3 counts once
    assert (a["sessions_30d"], a["events_30d"], a["add_to_cart_30d"], a["purchases_30d"]) == (3, 6, 2, 1)
    assert a["events_per_session_30d"] == 2.0
    assert a["mean_session_seconds_30d"] == pytest.approx(220.0)
    assert a["bounce_rate_30d"] == pytest.approx(1 / 3)
    assert a["mobile_share_30d"] == pytest.approx(5 / 6)
    assert a["search_share_30d"] == pytest.approx(1 / 3)
    assert a["social_share_30d"] == pytest.approx(1 / 3)
    assert a["direct_share_30d"] == pytest.approx(1 / 3)
    assert a["cart_to_purchase_30d"] == 0.5
    assert a["days_since_last_event"] == pytest.approx(2 - 10 / 1440)


def test_sessions_count_in_the_window_they_started_in(features: dict[str, dict[str, Any]]) -> None:
    # b's only session began before the window: no session, null ratios, but a recency
    b = features["b"]
    assert (b["sessions_30d"], b["events_30d"], b["purchases_30d"]) == (0, 0, 0)
    assert b["events_per_session_30d"] is None
    assert b["bounce_rate_30d"] is None
    assert b["cart_to_purchase_30d"] is None
    assert b["days_since_last_event"] == pytest.approx(30 - 10 / 1440)
    # d: the window is (as_of - 7d, as_of]: open at the start, closed at as_of
    d = features["d"]
    assert (d["sessions_7d"], d["sessions_30d"]) == (1, 2)
    assert d["days_since_last_event"] == 0.0


def test_support_and_plans_views_and_searches(features: dict[str, dict[str, Any]]) -> None:
    e = features["e"]
    # Whole path segments of page views only: /helpful-tips, /HELP and the click do not count
    assert (e["support_views_7d"], e["plans_views_7d"], e["searches_7d"]) == (2, 1, 1)
    # The plans page 45 days ago is in the prior window, not in the last 30 days
    assert (e["support_views_30d"], e["plans_views_30d"], e["searches_30d"]) == (2, 1, 1)
    assert features["a"]["support_views_30d"] == 0


def test_the_trend_compares_the_last_thirty_days_with_the_thirty_before(features: dict[str, dict[str, Any]]) -> None:
    # a: three sessions in the last 30 days, one 40 days ago; e: one and one (61 days is outside)
    assert (features["a"]["sessions_prior_30d"], features["a"]["session_change_30d"]) == (1, 2)
    assert (features["e"]["sessions_prior_30d"], features["e"]["session_change_30d"]) == (1, 0)
    # f went quiet: no recent session, one before; the row says so instead of being absent
    f = features["f"]
    assert (f["sessions_30d"], f["sessions_prior_30d"], f["session_change_30d"]) == (0, 1, -1)
    assert f["days_since_last_event"] == pytest.approx(50 - 5 / 1440)
    assert f["events_per_session_30d"] is None


def test_windows_are_configurable(spark: Any) -> None:
    events = sessionize(raw_df(spark, _feature_rows()))
    df = user_clickstream_features(events, AS_OF, windows=(1, 3))
    assert df.columns == [f.name for f in clickstream_feature_fields((1, 3))]
    a = next(r for r in df.collect() if r.user_id == "a")
    assert (a.sessions_1d, a.sessions_3d) == (0, 1)


def test_naive_as_of_is_refused(spark: Any) -> None:
    events = sessionize(raw_df(spark, _feature_rows()[:1]))
    with pytest.raises(ValueError, match="timezone"):
        user_clickstream_features(events, datetime(2024, 3, 10))


def test_spark_classifies_referrers_and_devices_like_the_online_path(spark: Any) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    from glue_jobs.transforms.clickstream import referrer_class_column
    from platform_core.schemas.features import referrer_class

    hosts = [None, "", "  ", "www.google.com", "Google.co.uk", "bing.com", "t.co", "m.facebook.com"]
    hosts += ["notfacebook.com", "googleusercontent.example", "shop.example", " www.reddit.com "]
    df = spark.createDataFrame([(h,) for h in hosts], "host string")
    got = {r.host: r.cls for r in df.select("host", referrer_class_column(F.col("host")).alias("cls")).collect()}
    assert got == {h: referrer_class(h) for h in hosts}
