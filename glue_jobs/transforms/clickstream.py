"""Clickstream transforms: de-duplication, sessionisation and per-user behaviour features.

Pure ``DataFrame -> DataFrame`` functions built from Spark's own column and window functions (no
Python UDFs), so that they run at JVM speed on Glue and are tested on a local SparkSession.

Who a session belongs to (the *party*): a signed-in event belongs to its ``user_id``, so a user's
session continues across cookies, devices and midnight; an anonymous event (``user_id`` null)
belongs to its ``session_id`` cookie. Events of one cookie before sign-in therefore form an
anonymous session of their own; user features only ever look at signed-in events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from platform_core.schema import glue_type
from platform_core.schemas.features import (
    ADD_TO_CART_EVENT,
    CLICKSTREAM_WINDOWS_DAYS,
    DEFAULT_SESSION_GAP_MINUTES,
    MOBILE_OS_FAMILIES,
    PAGE_VIEW_EVENT,
    PLANS_PATH_PREFIXES,
    PURCHASE_EVENT,
    REFERRER_DIRECT,
    REFERRER_OTHER,
    REFERRER_SEARCH,
    REFERRER_SOCIAL,
    SEARCH_EVENT,
    SEARCH_HOST_PATTERN,
    SOCIAL_HOST_PATTERN,
    SUPPORT_PATH_PREFIXES,
    clickstream_feature_fields,
    lookback_days,
)

# Columns sessionize() adds to every event.
PARTY_KEY = "party_key"
SESSION_KEY = "session_key"
SESSION_START = "session_start"

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND


def to_micros(instant: datetime) -> int:
    """Microseconds since the epoch of an aware instant (naive ones are refused: no guessing zones)."""
    if instant.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    delta = instant.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds


def instant_literal(instant: datetime) -> Column:
    """A timestamp literal that does not depend on the session or the machine time zone."""
    return F.timestamp_micros(F.lit(to_micros(instant)))


def dedupe_events(df: DataFrame) -> DataFrame:
    """Keep one row per ``event_id``: the copy ingested first.

    Firehose delivers at least once, so a retried batch lands twice. Ties on ``ingested_at``
    (copies of one delivery) are broken by a hash of the whole row, so the choice never depends
    on partitioning or file order. Rows without an ``event_id`` cannot be duplicates of anything
    and pass through untouched.
    """
    whole_row = F.xxhash64(F.to_json(F.struct(*[F.col(c) for c in df.columns])))
    first_copy = Window.partitionBy("event_id").orderBy(
        F.col("ingested_at").asc_nulls_last(), F.col("event_time").asc_nulls_last(), whole_row
    )
    ranked = df.withColumn("_copy", F.row_number().over(first_copy))
    return ranked.filter(F.col("event_id").isNull() | (F.col("_copy") == 1)).drop("_copy")


def party_key() -> Column:
    """``user:<user_id>`` for signed-in events, ``session:<session_id>`` for anonymous ones."""
    return F.when(F.col("user_id").isNotNull(), F.concat(F.lit("user:"), F.col("user_id"))).otherwise(
        F.concat(F.lit("session:"), F.col("session_id"))
    )


def sessionize(df: DataFrame, gap_minutes: int = DEFAULT_SESSION_GAP_MINUTES) -> DataFrame:
    """Add ``party_key``, ``session_start`` and ``session_key`` to every event.

    A party's events, ordered by (event_time, event_id), start a new session when more than
    ``gap_minutes`` passed since the party's previous event (exactly ``gap_minutes`` continues
    the session). Nothing is cut at day or partition boundaries, so a session across midnight
    stays one session.

    ``session_key`` is a hash of the party and the session's start instant: it does not depend
    on how much history was read, as long as the read reaches ``gap_minutes`` before the
    session's start, and an event after a session can never change the session's start or key
    (sessionisation only looks backwards).
    """
    if gap_minutes <= 0:
        raise ValueError(f"gap_minutes must be positive, got {gap_minutes}")
    gap_micros = gap_minutes * 60 * MICROS_PER_SECOND
    by_party = Window.partitionBy(PARTY_KEY).orderBy("event_time", "event_id")
    t = F.unix_micros(F.col("event_time"))
    previous = F.lag(t).over(by_party)
    starts_session = previous.isNull() | ((t - previous) > gap_micros)
    # Event times only grow along the window, so the latest session start so far is the start
    # of the current event's session.
    so_far = by_party.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return (
        df.withColumn(PARTY_KEY, party_key())
        .withColumn("_start", F.when(starts_session, F.col("event_time")))
        .withColumn(SESSION_START, F.max("_start").over(so_far))
        .withColumn(
            SESSION_KEY,
            F.substring(
                F.sha2(F.concat_ws("|", F.col(PARTY_KEY), F.unix_millis(SESSION_START).cast("string")), 256),
                1,
                32,
            ),
        )
        .drop("_start")
    )


def referrer_class_column(host: Column) -> Column:
    """The same classification as :func:`platform_core.schemas.features.referrer_class`."""
    clean = F.lower(F.trim(F.coalesce(host, F.lit(""))))
    return (
        F.when(clean == "", F.lit(REFERRER_DIRECT))
        .when(clean.rlike(SEARCH_HOST_PATTERN), F.lit(REFERRER_SEARCH))
        .when(clean.rlike(SOCIAL_HOST_PATTERN), F.lit(REFERRER_SOCIAL))
        .otherwise(F.lit(REFERRER_OTHER))
    )


def path_in_column(path: Column, prefixes: tuple[str, ...]) -> Column:
    """The same test as :func:`platform_core.schemas.features.path_in` (null path: false)."""
    return F.coalesce(
        reduce(lambda a, b: a | b, [(path == p) | path.startswith(p + "/") for p in prefixes]), F.lit(False)
    )


def page_class_flags() -> tuple[Column, Column]:
    """Whether an event is a support page view, and whether a plans page view, as
    :func:`platform_core.schemas.features.page_class` decides (support first)."""
    view = F.col("event_type") == PAGE_VIEW_EVENT
    support = view & path_in_column(F.col("request.path"), SUPPORT_PATH_PREFIXES)
    plans = view & ~support & path_in_column(F.col("request.path"), PLANS_PATH_PREFIXES)
    return support, plans


def _count_if(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def _ratio(numerator: Column, denominator: Column) -> Column:
    """``numerator / denominator`` as a double, null when the denominator is zero."""
    return F.when(denominator > 0, numerator.cast("double") / denominator.cast("double"))


def _session_table(sessions_df: DataFrame, as_of_micros: int, horizon_days: int) -> DataFrame:
    """One row per signed-in session with an event in (as_of - horizon, as_of], events <= as_of."""
    t = F.unix_micros(F.col("event_time"))
    lower = as_of_micros - horizon_days * MICROS_PER_DAY
    events = sessions_df.filter(F.col("user_id").isNotNull() & (t <= as_of_micros) & (t > lower))
    support, plans = page_class_flags()
    return events.groupBy("user_id", SESSION_KEY).agg(
        F.unix_micros(F.min(SESSION_START)).alias("start_us"),
        F.min(t).alias("first_us"),
        F.max(t).alias("last_us"),
        F.count(F.lit(1)).alias("n_events"),
        _count_if(F.col("ua_os").isin(*MOBILE_OS_FAMILIES)).alias("n_mobile"),
        _count_if(F.col("event_type") == PURCHASE_EVENT).alias("n_purchases"),
        _count_if(F.col("event_type") == ADD_TO_CART_EVENT).alias("n_carts"),
        _count_if(support).alias("n_support"),
        _count_if(plans).alias("n_plans"),
        _count_if(F.col("event_type") == SEARCH_EVENT).alias("n_searches"),
        # How the user arrived: the referrer of the session's first event.
        F.min_by(referrer_class_column(F.col("referrer_host")), F.struct(t, F.col("event_id"))).alias("entry"),
    )


def _window_aggregates(window_days: int, as_of_micros: int) -> list[Column]:
    w = f"{window_days}d"
    # A session is in the window when it started in it; its events all lie in it too.
    inside = F.col("start_us") > as_of_micros - window_days * MICROS_PER_DAY

    def when_inside(value: Column) -> Column:
        return F.when(inside, value)

    return [
        _count_if(inside).alias(f"sessions_{w}"),
        F.coalesce(F.sum(when_inside(F.col("n_events"))), F.lit(0)).alias(f"events_{w}"),
        F.avg(when_inside((F.col("last_us") - F.col("first_us")) / MICROS_PER_SECOND)).alias(
            f"mean_session_seconds_{w}"
        ),
        F.avg(when_inside((F.col("n_events") == 1).cast("double"))).alias(f"bounce_rate_{w}"),
        F.sum(when_inside(F.col("n_mobile"))).alias(f"_mobile_{w}"),
        F.avg(when_inside((F.col("entry") == REFERRER_SEARCH).cast("double"))).alias(f"search_share_{w}"),
        F.avg(when_inside((F.col("entry") == REFERRER_SOCIAL).cast("double"))).alias(f"social_share_{w}"),
        F.avg(when_inside((F.col("entry") == REFERRER_DIRECT).cast("double"))).alias(f"direct_share_{w}"),
        F.coalesce(F.sum(when_inside(F.col("n_carts"))), F.lit(0)).alias(f"add_to_cart_{w}"),
        F.coalesce(F.sum(when_inside(F.col("n_purchases"))), F.lit(0)).alias(f"purchases_{w}"),
        F.coalesce(F.sum(when_inside(F.col("n_support"))), F.lit(0)).alias(f"support_views_{w}"),
        F.coalesce(F.sum(when_inside(F.col("n_plans"))), F.lit(0)).alias(f"plans_views_{w}"),
        F.coalesce(F.sum(when_inside(F.col("n_searches"))), F.lit(0)).alias(f"searches_{w}"),
    ]


def _prior_window(window_days: int, as_of_micros: int) -> Column:
    """Sessions started in the ``window_days`` before the last ``window_days``."""
    span = window_days * MICROS_PER_DAY
    start = F.col("start_us")
    return _count_if((start > as_of_micros - 2 * span) & (start <= as_of_micros - span)).alias(
        f"sessions_prior_{window_days}d"
    )


def _derived(window_days: int) -> dict[str, Column]:
    w = f"{window_days}d"
    return {
        f"events_per_session_{w}": _ratio(F.col(f"events_{w}"), F.col(f"sessions_{w}")),
        f"mobile_share_{w}": _ratio(F.col(f"_mobile_{w}"), F.col(f"events_{w}")),
        f"cart_to_purchase_{w}": _ratio(F.col(f"purchases_{w}"), F.col(f"add_to_cart_{w}")),
    }


def _trend(window_days: int) -> dict[str, Column]:
    w = f"{window_days}d"
    return {f"session_change_{w}": F.col(f"sessions_{w}") - F.col(f"sessions_prior_{w}")}


def user_clickstream_features(
    sessions_df: DataFrame,
    as_of: datetime,
    windows: tuple[int, ...] = CLICKSTREAM_WINDOWS_DAYS,
) -> DataFrame:
    """Per-user features of the ``user-clickstream`` group as of ``as_of``.

    ``sessions_df`` is the output of :func:`sessionize` (one row per event). Only events at or
    before ``as_of`` are used, so the result is the same whatever later data the input holds.
    One row per user with a signed-in event in (as_of - lookback_days(windows), as_of];
    ``event_time`` is ``as_of``. Columns, in order:
    :func:`platform_core.schemas.features.clickstream_feature_fields`. For exact results the input
    must reach ``lookback_days(windows)`` plus the session gap before ``as_of`` (the session that
    contains the lookback's first event may start that early).
    """
    fields = clickstream_feature_fields(windows)
    as_of_micros = to_micros(as_of)
    longest = max(windows)
    per_session = _session_table(sessions_df, as_of_micros, lookback_days(windows))
    aggregates = [agg for w in windows for agg in _window_aggregates(w, as_of_micros)]
    per_user = per_session.groupBy("user_id").agg(
        *aggregates,
        _prior_window(longest, as_of_micros),
        ((F.lit(as_of_micros) - F.max("last_us")) / MICROS_PER_DAY).alias("days_since_last_event"),
    )
    derived = {name: column for w in windows for name, column in _derived(w).items()} | _trend(longest)
    with_time = per_user.withColumn("event_time", instant_literal(as_of))
    return with_time.select(
        *[(derived.get(f.name, F.col(f.name))).cast(glue_type(f.type)).alias(f.name) for f in fields]
    )
