"""Feature groups, each defined once: the Spark jobs, the online writer, the feature store
definitions in the stack and the training set all derive from the lists here.

A feature group is a list of :class:`~platform_core.schema.Field` s plus the names of its record
identifier (``user_id``, a string everywhere) and event time (``event_time``: the instant the
features are *as of*; the point-in-time join compares label cutoffs with it).

Also here, because the Spark job (as column expressions) and the online path (as plain Python)
must classify events the same way: which operating systems count as mobile, which referrer hosts
count as search engines or social networks, which event types are purchase signals, and which
pages are help (support) and plans (pricing) pages.

SageMaker Feature Store knows three types: ``Integral``, ``Fractional`` and ``String``. Integers
map to ``Integral``, doubles to ``Fractional``; timestamps travel as ISO-8601 strings
(``2024-03-10T12:00:00.000Z``, a format Feature Store accepts as event time), dates as
``YYYY-MM-DD`` strings. Flags are modelled as ``INT`` 0/1 so that every store holds the same value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from platform_core.schema import Field, Primitive, Schema

NAMESPACE = "platform.features"

RECORD_IDENTIFIER = "user_id"
EVENT_TIME = "event_time"

# ---------------------------------------------------------------------------------------------
# Shared classification rules (the Spark job and the online writer both use these)
# ---------------------------------------------------------------------------------------------

# Sessions end after this much inactivity (GlueConfig.session_gap_minutes carries the same default).
DEFAULT_SESSION_GAP_MINUTES = 30
CLICKSTREAM_WINDOWS_DAYS: tuple[int, ...] = (7, 30)

PURCHASE_EVENT = "purchase"
ADD_TO_CART_EVENT = "add_to_cart"
SEARCH_EVENT = "search"
PAGE_VIEW_EVENT = "page_view"

# Page classes of a page view, by ``request.path``. A path is in a class when it equals one of the
# class's prefixes or continues one with "/" ("/help" holds "/help" and "/help/billing", not
# "/helpful"). Paths are compared as sent: no case folding and no regular expression, so that
# Spark and Python cannot disagree on an unusual path. Support pages come first: a path that is in
# both classes is a support page.
PAGE_SUPPORT = "support"
PAGE_PLANS = "plans"
SUPPORT_PATH_PREFIXES: tuple[str, ...] = ("/help", "/support", "/contact", "/account/cancel")
PLANS_PATH_PREFIXES: tuple[str, ...] = ("/plans", "/pricing", "/account/change-plan")
PAGE_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (PAGE_SUPPORT, SUPPORT_PATH_PREFIXES),
    (PAGE_PLANS, PLANS_PATH_PREFIXES),
)

# ua-parser OS families of phones and tablets. The OS is a cleaner signal than the device family:
# ua-parser reports desktops as device "Other" or "Mac", and tablets run these systems too.
MOBILE_OS_FAMILIES: tuple[str, ...] = (
    "iOS",
    "iPadOS",
    "Android",
    "Windows Phone",
    "BlackBerry OS",
    "KaiOS",
    "Symbian OS",
    "Tizen",
    "HarmonyOS",
)

# Referrer classes of a session's entry event. Hosts are matched lower-cased; a pattern must match
# the whole host (both Java's and Python's regex engines read these identically).
REFERRER_SEARCH = "search"
REFERRER_SOCIAL = "social"
REFERRER_DIRECT = "direct"
REFERRER_OTHER = "other"
SEARCH_HOST_PATTERN = (
    r"^([a-z0-9-]+\.)*(google|bing|duckduckgo|yahoo|baidu|yandex|ecosia|startpage|qwant)(\.[a-z]{2,3}){1,2}$"
)
SOCIAL_HOST_PATTERN = (
    r"^([a-z0-9-]+\.)*(facebook\.com|fb\.com|t\.co|twitter\.com|x\.com|instagram\.com|linkedin\.com|lnkd\.in"
    r"|reddit\.com|youtube\.com|tiktok\.com|pinterest\.com|snapchat\.com)$"
)
_SEARCH_HOST = re.compile(SEARCH_HOST_PATTERN)
_SOCIAL_HOST = re.compile(SOCIAL_HOST_PATTERN)


def referrer_class(referrer_host: str | None) -> str:
    """``direct`` (no referrer), ``search``, ``social`` or ``other`` for a referrer host."""
    # Only spaces are trimmed, as Spark's trim() does, so both paths see the same host.
    host = (referrer_host or "").strip(" ").lower()
    if host == "":
        return REFERRER_DIRECT
    if _SEARCH_HOST.search(host):
        return REFERRER_SEARCH
    if _SOCIAL_HOST.search(host):
        return REFERRER_SOCIAL
    return REFERRER_OTHER


def is_mobile_os(os_family: str | None) -> bool:
    return os_family in MOBILE_OS_FAMILIES


def path_in(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def page_class(event_type: str, path: str | None) -> str | None:
    """``support`` or ``plans`` for a page view of such a page, else None (see PAGE_CLASSES)."""
    if event_type != PAGE_VIEW_EVENT or path is None:
        return None
    for name, prefixes in PAGE_CLASSES:
        if path_in(path, prefixes):
            return name
    return None


# ---------------------------------------------------------------------------------------------
# Feature groups
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureGroup:
    """A feature group: its logical name, its features, and which of them key it in time."""

    name: str  # logical, e.g. "user-clickstream"; physical name: see physical_name()
    doc: str
    features: tuple[Field, ...]
    record_identifier: str = RECORD_IDENTIFIER
    event_time: str = EVENT_TIME

    def __post_init__(self) -> None:
        names = self.feature_names
        if len(set(names)) != len(names):
            raise ValueError(f"feature group {self.name} repeats a feature name")
        for key in (self.record_identifier, self.event_time):
            if key not in names:
                raise ValueError(f"feature group {self.name} lacks its key feature {key!r}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def value_names(self) -> tuple[str, ...]:
        """The features proper, without the record identifier and the event time."""
        return tuple(n for n in self.feature_names if n not in (self.record_identifier, self.event_time))

    def feature(self, name: str) -> Field:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature group {self.name} has no feature {name!r}")

    @property
    def snapshot_prefix(self) -> str:
        """Key prefix of the group's Parquet snapshots in the curated bucket (one
        ``snapshot_date=YYYY-MM-DD`` partition per daily run)."""
        return f"curated/features/{self.name.replace('-', '_')}/"

    def physical_name(self, resource_prefix: str) -> str:
        """The Feature Store group name in one environment, e.g. ``mlp-dev-user-clickstream``."""
        return f"{resource_prefix}-{self.name}"

    def schema(self) -> Schema:
        """The snapshot table of this group as a dataset schema (Glue table, Parquet)."""
        return Schema(
            name=self.name.title().replace("-", "") + "Features",
            namespace=NAMESPACE,
            doc=self.doc,
            fields=self.features,
        )


_USER_ID = Field(RECORD_IDENTIFIER, Primitive.STRING, required=True, doc="the user (record identifier)")
_EVENT_TIME = Field(
    EVENT_TIME,
    Primitive.TIMESTAMP,
    required=True,
    doc="the instant the features are as of; no input after it was used",
)


def clickstream_window_features(window_days: int) -> tuple[Field, ...]:
    """The per-window clickstream features for a window of ``window_days`` days ending at as_of.

    A session belongs to the window when it *started* in (as_of - window, as_of]; its events
    count up to as_of. Ratios over zero sessions (or zero carts) are null, not zero: "no data"
    is not "never".
    """
    w = f"{window_days}d"
    span = f"sessions started in the last {window_days} days"
    return (
        Field(f"sessions_{w}", Primitive.LONG, doc=f"number of {span}"),
        Field(f"events_{w}", Primitive.LONG, doc=f"events in {span}"),
        Field(f"events_per_session_{w}", Primitive.DOUBLE, doc=f"mean events per session, {span}"),
        Field(
            f"mean_session_seconds_{w}",
            Primitive.DOUBLE,
            doc=f"mean seconds from first to last event of a session, {span}",
        ),
        Field(f"bounce_rate_{w}", Primitive.DOUBLE, doc=f"share of single-event sessions, {span}"),
        Field(f"mobile_share_{w}", Primitive.DOUBLE, doc=f"share of events from a mobile OS, {span}"),
        Field(
            f"search_share_{w}",
            Primitive.DOUBLE,
            doc=f"share of sessions entered from a search engine, {span}",
        ),
        Field(
            f"social_share_{w}",
            Primitive.DOUBLE,
            doc=f"share of sessions entered from a social network, {span}",
        ),
        Field(f"direct_share_{w}", Primitive.DOUBLE, doc=f"share of sessions entered with no referrer, {span}"),
        Field(f"add_to_cart_{w}", Primitive.LONG, doc=f"add_to_cart events in {span}"),
        Field(f"purchases_{w}", Primitive.LONG, doc=f"purchase events in {span}"),
        Field(
            f"cart_to_purchase_{w}",
            Primitive.DOUBLE,
            doc=f"purchases per add_to_cart (null without carts), {span}",
        ),
    )


def clickstream_intent_features(window_days: int) -> tuple[Field, ...]:
    """What a user looked for in a window: help pages, plans pages and searches (the signals of
    dissatisfaction and price sensitivity that come before a cancellation)."""
    w = f"{window_days}d"
    span = f"sessions started in the last {window_days} days"
    return (
        Field(f"support_views_{w}", Primitive.LONG, doc=f"page views of support pages (SUPPORT_PATH_PREFIXES), {span}"),
        Field(f"plans_views_{w}", Primitive.LONG, doc=f"page views of plans pages (PLANS_PATH_PREFIXES), {span}"),
        Field(f"searches_{w}", Primitive.LONG, doc=f"search events in {span}"),
    )


def lookback_days(windows: tuple[int, ...]) -> int:
    """How far back a user's sessions count: the longest window and the one before it (the trend
    compares them). A user with a signed-in event in this span has a row."""
    return 2 * max(windows)


def clickstream_feature_fields(windows: tuple[int, ...] = CLICKSTREAM_WINDOWS_DAYS) -> tuple[Field, ...]:
    """All fields of the user clickstream group for the given windows, in output column order.

    Append-only: a Feature Store group can gain features but never lose or reorder them, so new
    features go at the end (``tests/features/test_feature_definitions.py`` pins the order).
    """
    if not windows or any(w <= 0 for w in windows) or len(set(windows)) != len(windows):
        raise ValueError(f"windows must be distinct positive day counts, got {windows!r}")
    per_window = tuple(f for w in windows for f in clickstream_window_features(w))
    intent = tuple(f for w in windows for f in clickstream_intent_features(w))
    longest = max(windows)
    return (
        _USER_ID,
        _EVENT_TIME,
        *per_window,
        Field(
            "days_since_last_event",
            Primitive.DOUBLE,
            doc=f"days from the last event to as_of, within the last {lookback_days(windows)} days (else no row)",
        ),
        *intent,
        Field(
            f"sessions_prior_{longest}d",
            Primitive.LONG,
            doc=f"sessions started in the {longest} days before the last {longest} days",
        ),
        Field(
            f"session_change_{longest}d",
            Primitive.LONG,
            doc=f"sessions_{longest}d minus sessions_prior_{longest}d: a user slowing down before a cancellation",
        ),
    )


USER_CLICKSTREAM = FeatureGroup(
    name="user-clickstream",
    doc="Behaviour of a signed-in user over the last days, from sessionised clickstream events.",
    features=clickstream_feature_fields(),
)

USER_SUBSCRIPTION = FeatureGroup(
    name="user-subscription",
    doc="A user's subscription state and history as of an instant, from the SCD2 subscription history.",
    features=(
        _USER_ID,
        _EVENT_TIME,
        Field("is_active", Primitive.INT, doc="1 when subscribed at as_of, else 0"),
        Field("plan", Primitive.STRING, doc="plan at as_of"),
        Field("price", Primitive.DOUBLE, doc="price at as_of"),
        Field("renewal_month", Primitive.INT, doc="month of the year (1-12) of the renewal date at as_of"),
        Field("days_until_renewal", Primitive.LONG, doc="whole days from as_of's date to the renewal date"),
        Field("tenure_days", Primitive.DOUBLE, doc="days from the first active version to as_of (null if never)"),
        Field("cancellations", Primitive.LONG, doc="transitions from active to inactive up to as_of"),
        Field(
            "days_since_last_transition",
            Primitive.DOUBLE,
            doc="days from the last change of is_active (or the first version) to as_of",
        ),
    ),
)

FEATURE_GROUPS: tuple[FeatureGroup, ...] = (USER_CLICKSTREAM, USER_SUBSCRIPTION)

# The point-in-time training set (labels + both groups), in the curated bucket.
TRAINING_SET_PREFIX = "curated/training_set/"
SNAPSHOT_PARTITION = "snapshot_date"

# ---------------------------------------------------------------------------------------------
# SageMaker Feature Store
# ---------------------------------------------------------------------------------------------

_FEATURE_STORE_TYPES = {
    Primitive.STRING: "String",
    Primitive.INT: "Integral",
    Primitive.LONG: "Integral",
    Primitive.BOOLEAN: "Integral",
    Primitive.DOUBLE: "Fractional",
    Primitive.TIMESTAMP: "String",
    Primitive.DATE: "String",
}


def feature_store_type(f: Field) -> str:
    if not isinstance(f.type, Primitive):
        raise TypeError(f"feature {f.name} is not a primitive; Feature Store has no nested types")
    return _FEATURE_STORE_TYPES[f.type]


def feature_definitions(group: FeatureGroup) -> list[dict[str, str]]:
    """``FeatureDefinitions`` of ``CreateFeatureGroup`` / ``AWS::SageMaker::FeatureGroup``."""
    return [{"FeatureName": f.name, "FeatureType": feature_store_type(f)} for f in group.features]


def format_event_time(value: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z``, as Feature Store accepts it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_event_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _to_string(f: Field, value: Any) -> str:
    t = f.type
    if t in (Primitive.INT, Primitive.LONG, Primitive.BOOLEAN):
        return str(int(value))
    if t is Primitive.DOUBLE:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"feature {f.name} is not finite: {number!r}")
        return repr(number)
    if t is Primitive.TIMESTAMP:
        return format_event_time(value)
    if t is Primitive.DATE:
        return value.isoformat() if isinstance(value, date) else str(value)
    return str(value)


def _from_string(f: Field, text: str) -> Any:
    t = f.type
    if t in (Primitive.INT, Primitive.LONG):
        return int(text)
    if t is Primitive.BOOLEAN:
        return int(text) != 0
    if t is Primitive.DOUBLE:
        return float(text)
    if t is Primitive.TIMESTAMP:
        return parse_event_time(text)
    if t is Primitive.DATE:
        return date.fromisoformat(text)
    return text


def to_feature_record(group: FeatureGroup, values: Mapping[str, Any]) -> list[dict[str, str]]:
    """A ``PutRecord`` record: one ``{FeatureName, ValueAsString}`` per non-null feature.

    Feature Store has no null: a missing feature is simply left out of the record. The record
    identifier and the event time are required.
    """
    unknown = set(values) - set(group.feature_names)
    if unknown:
        raise KeyError(f"not features of {group.name}: {sorted(unknown)}")
    for key in (group.record_identifier, group.event_time):
        if values.get(key) is None:
            raise ValueError(f"a {group.name} record needs {key}")
    return [
        {"FeatureName": f.name, "ValueAsString": _to_string(f, values[f.name])}
        for f in group.features
        if values.get(f.name) is not None
    ]


def from_feature_record(group: FeatureGroup, record: list[dict[str, str]]) -> dict[str, Any]:
    """The typed values of a record (every feature of the group; absent ones are None)."""
    texts = {item["FeatureName"]: item["ValueAsString"] for item in record}
    return {f.name: (_from_string(f, texts[f.name]) if f.name in texts else None) for f in group.features}
