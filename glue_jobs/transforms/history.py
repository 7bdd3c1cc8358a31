"""Subscription history (SCD type 2) and churn labels from the CDC snapshot log.

Pure ``DataFrame -> DataFrame`` functions with built-in Spark expressions only (no Python UDFs).
Timestamps are UTC instants; run with ``spark.sql.session.timeZone=UTC`` (the Glue entry script and
the local session set it) so that a date's midnight is UTC midnight.
"""

from __future__ import annotations

import operator
from datetime import datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as sf
from pyspark.sql import types as st

from platform_core.schema import Primitive, Schema
from platform_core.schemas.cdc import CHURN_LABEL, STATE_FIELDS, STATE_SNAPSHOT, SUBSCRIPTION_HISTORY

_SPARK_TYPES: dict[Primitive, st.DataType] = {
    Primitive.STRING: st.StringType(),
    Primitive.INT: st.IntegerType(),
    Primitive.LONG: st.LongType(),
    Primitive.DOUBLE: st.DoubleType(),
    Primitive.BOOLEAN: st.BooleanType(),
    Primitive.TIMESTAMP: st.TimestampType(),
    Primitive.DATE: st.DateType(),
}


def spark_schema(schema: Schema) -> st.StructType:
    """The Spark schema of a flat dataset schema (the CDC datasets have no nested fields)."""
    fields = []
    for f in schema.fields:
        if not isinstance(f.type, Primitive):
            raise TypeError(f"{schema.name}.{f.name}: only primitive fields map to Spark here")
        fields.append(st.StructField(f.name, _SPARK_TYPES[f.type], nullable=not f.required))
    return st.StructType(fields)


def conform(df: DataFrame, schema: Schema) -> DataFrame:
    """Exactly the schema's columns, in its order, cast to its types."""
    spark_types = {f.name: f.dataType for f in spark_schema(schema).fields}
    return df.select(*(sf.col(name).cast(spark_type).alias(name) for name, spark_type in spark_types.items()))


def _differs(column: str, previous: Column) -> Column:
    """Null-safe inequality of a column and its previous value."""
    return ~sf.col(column).eqNullSafe(previous)


def build_subscription_history(changes_df: DataFrame) -> DataFrame:
    """SCD type 2 versions of each user's subscription from the snapshot log.

    Input: rows of :data:`~platform_core.schemas.cdc.STATE_SNAPSHOT` (at least ``event_id``,
    ``user_id``, the state columns, ``is_deleted``, ``change_time``, ``source_position``), in any
    order and possibly repeated (the log is at-least-once).

    - Snapshots are deduplicated on ``event_id`` and ordered per user by ``change_time`` then
      ``source_position`` (the processor's full ordering of the source changes).
    - A new version starts when a tracked column (``is_active_subscribed``, ``renewal_date``,
      ``plan``, ``price``) differs from the previous snapshot, on the user's first snapshot, and
      after a delete; identical consecutive snapshots extend the current version.
    - ``valid_from`` is the ``change_time`` that started the version, ``valid_to`` the
      ``change_time`` of the next version or of the delete that ended it (exclusive), null while
      the version is current; ``is_current`` is ``valid_to IS NULL``. A deleted user has no
      current version.

    Output columns: :data:`~platform_core.schemas.cdc.SUBSCRIPTION_HISTORY`.
    """
    by_user = Window.partitionBy("user_id").orderBy("change_time", "source_position")
    snapshots = changes_df.dropDuplicates(["event_id"])
    previous = {c: sf.lag(c).over(by_user) for c in (*STATE_FIELDS, "is_deleted", "event_id")}
    starts_version = (
        sf.col("is_deleted")
        | previous["event_id"].isNull()
        | previous["is_deleted"]
        | reduce(operator.or_, (_differs(c, previous[c]) for c in STATE_FIELDS))
    )
    boundaries = snapshots.withColumn("_starts", starts_version).filter(sf.col("_starts"))
    versions = boundaries.withColumn("valid_to", sf.lead("change_time").over(by_user)).filter(~sf.col("is_deleted"))
    history = versions.withColumn("valid_from", sf.col("change_time")).withColumn(
        "is_current", sf.col("valid_to").isNull()
    )
    return conform(history, SUBSCRIPTION_HISTORY)


def churn_labels(history_df: DataFrame, window_days: int, *, as_of: datetime | None = None) -> DataFrame:
    """One churn label per (user, renewal date) at which the user was due to renew.

    Definition, with ``D`` a renewal date and ``W = window_days``:

    - **label points**: every distinct ``(user_id, D)`` such that some version of the user is active
      with ``renewal_date = D``; ``first_seen`` is the earliest ``valid_from`` of those versions;
    - the user **renewed at D** if some later version is active with a renewal date after ``D``
      (``renewal_date > D``), started after ``first_seen`` and before ``D + W`` days (UTC midnight).
      This covers an ordinary renewal (the date moves forward, even a little before ``D``) and a
      cancellation followed by a reactivation within the window;
    - ``churned = NOT renewed``: cancelled and not back within the window, deleted, or simply not
      renewed (still marked active but the renewal date never moved);
    - ``label_time = D + W`` days at 00:00 UTC, when the outcome is known. Only labels with
      ``label_time <= as_of`` are returned (default: now), so an open window is never labelled.

    Each renewal cycle is labelled once: a user who renews at ``D`` and cancels a week later is
    ``churned = false`` at ``D`` and ``true`` at the next renewal date.

    Output columns: :data:`~platform_core.schemas.cdc.CHURN_LABEL`.
    """
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    active = history_df.filter(sf.col("is_active_subscribed") & sf.col("renewal_date").isNotNull())
    points = (
        active.groupBy("user_id", "renewal_date")
        .agg(sf.min("valid_from").alias("first_seen"))
        .withColumn("label_time", sf.date_add("renewal_date", window_days).cast(st.TimestampType()))
        .alias("p")
    )
    renewals = active.select(
        sf.col("user_id").alias("r_user_id"),
        sf.col("renewal_date").alias("r_renewal_date"),
        sf.col("valid_from").alias("r_valid_from"),
    )
    renewed_by = (
        (sf.col("r_user_id") == sf.col("user_id"))
        & (sf.col("r_renewal_date") > sf.col("renewal_date"))
        & (sf.col("r_valid_from") > sf.col("first_seen"))
        & (sf.col("r_valid_from") < sf.col("label_time"))
    )
    labels = (
        points.join(renewals, renewed_by, "left")
        .groupBy("user_id", "renewal_date", "label_time")
        .agg(sf.count("r_valid_from").alias("_renewals"))
        .withColumn("churned", sf.col("_renewals") == 0)
    )
    cutoff = sf.current_timestamp() if as_of is None else sf.lit(as_of).cast(st.TimestampType())
    return conform(labels.filter(sf.col("label_time") <= cutoff), CHURN_LABEL)


def snapshot_schema() -> st.StructType:
    """Spark schema of the snapshot log (for reading it without the Avro data source)."""
    return spark_schema(STATE_SNAPSHOT)
