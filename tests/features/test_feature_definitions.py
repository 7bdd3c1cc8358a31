"""Feature groups defined once, and what is derived from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from platform_core.schema import Field, Primitive
from platform_core.schemas.features import (
    FEATURE_GROUPS,
    USER_CLICKSTREAM,
    USER_SUBSCRIPTION,
    FeatureGroup,
    clickstream_feature_fields,
    feature_definitions,
    from_feature_record,
    is_mobile_os,
    page_class,
    referrer_class,
    to_feature_record,
)


def test_feature_store_definitions_derive_from_the_groups() -> None:
    definitions = {d["FeatureName"]: d["FeatureType"] for d in feature_definitions(USER_CLICKSTREAM)}
    assert list(definitions) == list(USER_CLICKSTREAM.feature_names)
    assert definitions["user_id"] == "String"
    assert definitions["event_time"] == "String"  # ISO-8601, which Feature Store accepts as event time
    assert definitions["sessions_7d"] == "Integral"
    assert definitions["bounce_rate_30d"] == "Fractional"
    subscription = {d["FeatureName"]: d["FeatureType"] for d in feature_definitions(USER_SUBSCRIPTION)}
    assert (subscription["plan"], subscription["is_active"], subscription["renewal_month"]) == (
        "String",
        "Integral",
        "Integral",
    )


def test_groups_are_keyed_by_a_string_user_id_and_an_event_time() -> None:
    for group in FEATURE_GROUPS:
        assert group.feature("user_id").type is Primitive.STRING
        assert group.feature(group.event_time).type is Primitive.TIMESTAMP
        assert group.physical_name("mlp-dev") == f"mlp-dev-{group.name}"
        assert group.schema().field_names == group.feature_names  # the snapshot table's columns
        assert group.snapshot_prefix.startswith("curated/features/")
    # No feature name is shared between groups, so the training set can hold both
    assert not set(USER_CLICKSTREAM.value_names) & set(USER_SUBSCRIPTION.value_names)
    # 12 per window, days since the last event, 3 intent counts per window, the 30-day trend
    assert len(USER_CLICKSTREAM.value_names) == 2 * 12 + 1 + 2 * 3 + 2


# The user-clickstream group as first published. Feature Store can add features to a group
# (UpdateFeatureGroup FeatureAdditions) but never remove or reorder them: a change here would need a
# new group and a backfill, so new features may only be appended.
FIRST_PUBLISHED_CLICKSTREAM = (
    "user_id",
    "event_time",
    *[
        f"{name}_{w}d"
        for w in (7, 30)
        for name in (
            "sessions",
            "events",
            "events_per_session",
            "mean_session_seconds",
            "bounce_rate",
            "mobile_share",
            "search_share",
            "social_share",
            "direct_share",
            "add_to_cart",
            "purchases",
            "cart_to_purchase",
        )
    ],
    "days_since_last_event",
)


def test_published_features_are_only_ever_appended_to() -> None:
    names = USER_CLICKSTREAM.feature_names
    assert names[: len(FIRST_PUBLISHED_CLICKSTREAM)] == FIRST_PUBLISHED_CLICKSTREAM
    assert names[len(FIRST_PUBLISHED_CLICKSTREAM) :] == (
        "support_views_7d",
        "plans_views_7d",
        "searches_7d",
        "support_views_30d",
        "plans_views_30d",
        "searches_30d",
        "sessions_prior_30d",
        "session_change_30d",
    )


@pytest.mark.parametrize(
    ("event_type", "path", "expected"),
    [
        ("page_view", "/help", "support"),
        ("page_view", "/help/billing", "support"),
        ("page_view", "/account/cancel", "support"),
        ("page_view", "/account/cancel/confirm", "support"),
        ("page_view", "/helpful-tips", None),  # a prefix must end at a "/"
        ("page_view", "/HELP", None),  # paths are compared as sent
        ("page_view", "/plans", "plans"),
        ("page_view", "/account/change-plan", "plans"),
        ("page_view", "/account", None),
        ("page_view", None, None),
        ("click", "/help", None),  # only page views are page visits
        ("search", "/plans", None),
    ],
)
def test_page_classes_match_whole_path_segments(event_type: str, path: str | None, expected: str | None) -> None:
    assert page_class(event_type, path) == expected


def test_a_group_without_its_keys_or_with_repeated_names_is_refused() -> None:
    with pytest.raises(ValueError, match="key feature"):
        FeatureGroup("broken", "", (Field("user_id", Primitive.STRING),))
    with pytest.raises(ValueError, match="repeats"):
        FeatureGroup("broken", "", (*USER_SUBSCRIPTION.features, Field("plan", Primitive.STRING)))
    with pytest.raises(ValueError, match="windows"):
        clickstream_feature_fields((7, 7))


def test_records_round_trip_and_leave_nulls_out() -> None:
    values = dict.fromkeys(USER_SUBSCRIPTION.feature_names)
    values.update(
        user_id="u1",
        event_time=datetime(2024, 3, 10, 12, 0, 0, 250000, tzinfo=UTC),
        is_active=1,
        plan="premium",
        price=17.99,
        cancellations=0,
    )
    record = to_feature_record(USER_SUBSCRIPTION, values)
    assert record[:2] == [
        {"FeatureName": "user_id", "ValueAsString": "u1"},
        {"FeatureName": "event_time", "ValueAsString": "2024-03-10T12:00:00.250Z"},
    ]
    assert "tenure_days" not in {item["FeatureName"] for item in record}
    assert from_feature_record(USER_SUBSCRIPTION, record) == values


def test_records_need_their_keys_and_only_known_features() -> None:
    with pytest.raises(ValueError, match="needs event_time"):
        to_feature_record(USER_SUBSCRIPTION, {"user_id": "u1"})
    with pytest.raises(KeyError, match="not features"):
        to_feature_record(USER_SUBSCRIPTION, {"user_id": "u1", "event_time": datetime.now(UTC), "x": 1})
    with pytest.raises(ValueError, match="finite"):
        to_feature_record(USER_SUBSCRIPTION, {"user_id": "u1", "event_time": datetime.now(UTC), "price": float("nan")})


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, "direct"),
        ("  ", "direct"),
        ("www.google.com", "search"),
        ("google.co.uk", "search"),
        ("DuckDuckGo.com", "search"),
        ("t.co", "social"),
        ("m.facebook.com", "social"),
        ("googleusercontent.example", "other"),
        ("notfacebook.com", "other"),
        ("shop.example", "other"),
    ],
)
def test_referrer_classes(host: str | None, expected: str) -> None:
    assert referrer_class(host) == expected


def test_mobile_is_decided_by_the_operating_system() -> None:
    assert is_mobile_os("iOS") and is_mobile_os("Android")
    assert not is_mobile_os("Mac OS X") and not is_mobile_os(None)
