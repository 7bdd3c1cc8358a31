"""Subscription features as of an instant, from the SCD type 2 subscription history.

The history has one row per version of a user's subscription row: ``valid_from`` (inclusive) to
``valid_to`` (exclusive; null for the version still current). Only versions that had begun by
``as_of`` are read, and ``is_current`` is ignored on purpose: it says what is current *today*,
while a feature row must say what was current at ``as_of`` (reading it would leak the future
into back-filled snapshots).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from glue_jobs.transforms.clickstream import MICROS_PER_DAY, instant_literal, to_micros
from platform_core.schema import glue_type
from platform_core.schemas.features import USER_SUBSCRIPTION


def _days_before(as_of_micros: int, instant_column: str) -> Column:
    return (F.lit(as_of_micros) - F.unix_micros(F.col(instant_column))) / MICROS_PER_DAY


def subscription_features(history_df: DataFrame, as_of: datetime) -> DataFrame:
    """Rows of the ``user-subscription`` group as of ``as_of``, one per user known by then.

    * ``is_active``, ``plan``, ``price``, ``renewal_month`` (the month of the year, 1-12, of the
      renewal date: the model gets seasonality, not a date) and ``days_until_renewal`` come from
      the version valid at ``as_of`` (the latest one that began by then);
    * ``tenure_days``: days since the first version in which the user was subscribed (null if
      never);
    * ``cancellations``: how often a version with ``is_active_subscribed`` true was followed by
      one with it false;
    * ``days_since_last_transition``: days since the last change of ``is_active_subscribed``
      (the first version counts as one: the subscription appearing).

    A user whose latest version was closed without a successor by ``as_of`` (the row was
    deleted) has no state at ``as_of`` and gets no row. ``is_active_subscribed`` null counts as
    not subscribed.
    """
    as_of_micros = to_micros(as_of)
    versions = history_df.filter(F.unix_micros(F.col("valid_from")) <= as_of_micros).withColumn(
        "_active", F.coalesce(F.col("is_active_subscribed"), F.lit(False))
    )
    order = Window.partitionBy("user_id").orderBy(
        F.col("valid_from"), F.coalesce(F.col("valid_to"), F.lit("9999-12-31").cast("timestamp"))
    )
    previous = F.lag("_active").over(order)
    flagged = versions.withColumn("_cancel", previous & ~F.col("_active")).withColumn(
        "_transition", previous.isNull() | (previous != F.col("_active"))
    )
    latest_key = F.struct(F.col("valid_from"), F.coalesce(F.col("valid_to"), F.lit("9999-12-31").cast("timestamp")))
    per_user = flagged.groupBy("user_id").agg(
        F.max_by(
            F.struct("_active", "plan", "price", "renewal_date", "valid_to"),
            latest_key,
        ).alias("_now"),
        F.min(F.when(F.col("_active"), F.col("valid_from"))).alias("_first_active"),
        F.sum(F.col("_cancel").cast("long")).alias("cancellations"),
        F.max(F.when(F.col("_transition"), F.col("valid_from"))).alias("_last_transition"),
    )
    still_there = F.col("_now.valid_to").isNull() | (F.unix_micros(F.col("_now.valid_to")) > as_of_micros)
    # The date of as_of in UTC, computed here so that the session time zone cannot shift it.
    as_of_date = F.lit(as_of.astimezone(UTC).date())
    derived = {
        "event_time": instant_literal(as_of),
        "is_active": F.col("_now._active").cast("int"),
        "plan": F.col("_now.plan"),
        "price": F.col("_now.price"),
        "renewal_month": F.month(F.col("_now.renewal_date")),
        "days_until_renewal": F.datediff(F.col("_now.renewal_date"), as_of_date),
        "tenure_days": _days_before(as_of_micros, "_first_active"),
        "cancellations": F.coalesce(F.col("cancellations"), F.lit(0)),
        "days_since_last_transition": _days_before(as_of_micros, "_last_transition"),
    }
    return per_user.filter(still_there).select(
        *[derived.get(f.name, F.col(f.name)).cast(glue_type(f.type)).alias(f.name) for f in USER_SUBSCRIPTION.features]
    )
