"""The training set: churn labels joined point-in-time with feature snapshots.

A churn label (``platform_core.schemas.cdc.CHURN_LABEL``) becomes a training label
(``platform_core.schemas.training.TRAINING_LABEL``: ``user_id``, ``cutoff_time``, ``label``) in
:func:`training_labels`. Its cutoff is ``lead`` before the start, 00:00 UTC, of its
``renewal_date``: the prediction is made then, early enough to act (a retention offer), and
subscribers cancel in the days before their renewal. A cutoff at the renewal date itself would let a
snapshot taken after the cancellation show ``is_active = false``: the model would read the outcome
it is meant to predict, and score better than the truth allows.

For a label of user ``u`` with cutoff ``c``, :func:`training_set` gives the label the features of
``u``'s latest snapshot with ``event_time <= c``. A snapshot computed after ``c`` can never reach
the label's row, which is what keeps the model from training on the future.

Implemented as a sort-merge, not a range join: labels and snapshots are put in one stream per
user, ordered by time (snapshots before labels at the same instant, so ``<=`` holds), and every
label takes the last snapshot seen before it. This costs one shuffle and never multiplies rows, even
for users with years of daily snapshots.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F  # noqa: N812

from glue_jobs.transforms.clickstream import MICROS_PER_DAY, MICROS_PER_SECOND
from platform_core.schemas.features import EVENT_TIME, RECORD_IDENTIFIER
from platform_core.schemas.training import CUTOFF_TIME, KEY, LABEL

# The churn label's columns the training label is made of (platform_core.schemas.cdc.CHURN_LABEL).
RENEWAL_DATE = "renewal_date"
CHURNED = "churned"


def cutoff_of(renewal_date: Column) -> Column:
    """00:00 UTC of a renewal date, as a timestamp: days since the epoch, times a day, so that no
    session time zone comes in between."""
    return F.timestamp_micros(F.unix_date(renewal_date).cast("long") * MICROS_PER_DAY)


def training_labels(churn_labels_df: DataFrame, *, lead: timedelta) -> DataFrame:
    """Churn labels in the training table's terms: ``user_id``, ``cutoff_time`` (``lead`` before the
    renewal date's 00:00 UTC), ``label`` (0/1)."""
    if lead < timedelta(0):
        raise ValueError(f"the prediction lead must not be negative, got {lead}")
    lead_micros = int(lead.total_seconds()) * MICROS_PER_SECOND
    cutoff = F.timestamp_micros(F.unix_micros(cutoff_of(F.col(RENEWAL_DATE))) - F.lit(lead_micros))
    return churn_labels_df.select(
        F.col(RECORD_IDENTIFIER).alias(KEY),
        cutoff.alias(CUTOFF_TIME),
        F.col(CHURNED).cast("int").alias(LABEL),
    )


def training_set(
    labels_df: DataFrame,
    feature_snapshots_df: DataFrame,
    *,
    feature_time_column: str = "feature_event_time",
    max_staleness: timedelta | None = None,
) -> DataFrame:
    """Every label row, plus the features of its user's latest snapshot at or before its cutoff.

    ``labels_df`` needs ``user_id`` and its cutoff instant in ``cutoff_time`` (a timestamp, see
    :func:`cutoff_of`); its other columns are carried along. Output columns: the label's columns,
    then ``feature_time_column`` (the chosen snapshot's ``event_time``), then the snapshot's
    feature columns. A label without an eligible snapshot
    keeps its row with null features (the model sees "unknown", the label is not lost). With
    ``max_staleness``, a snapshot older than ``cutoff - max_staleness`` counts as missing.
    To join several feature groups, call this once per group, each time with its own
    ``feature_time_column``.
    """
    feature_columns = [c for c in feature_snapshots_df.columns if c not in (RECORD_IDENTIFIER, EVENT_TIME)]
    clashes = set(labels_df.columns) & {*feature_columns, feature_time_column}
    if clashes:
        raise ValueError(f"label and feature columns clash: {sorted(clashes)}")

    feature_struct = F.struct(F.col(EVENT_TIME).alias(feature_time_column), *[F.col(c) for c in feature_columns])
    snapshots = feature_snapshots_df.select(
        F.col(RECORD_IDENTIFIER).alias("_user"),
        F.unix_micros(F.col(EVENT_TIME)).alias("_t"),
        F.lit(0).alias("_is_label"),
        feature_struct.alias("_features"),
    )
    label_struct = F.struct(*[F.col(c) for c in labels_df.columns])
    labels = labels_df.select(
        F.col(KEY).alias("_user"),
        F.unix_micros(F.col(CUTOFF_TIME)).alias("_t"),
        F.lit(1).alias("_is_label"),
        label_struct.alias("_label"),
    )
    stream = snapshots.unionByName(labels, allowMissingColumns=True)

    # Two snapshots of one user at one instant are ordered by content, so the pick is repeatable.
    timeline = Window.partitionBy("_user").orderBy("_t", "_is_label", F.xxhash64(F.to_json(F.col("_features"))))
    so_far = timeline.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    picked = F.last("_features", ignorenulls=True).over(so_far)
    joined = stream.withColumn("_picked", picked).filter(F.col("_is_label") == 1)
    if max_staleness is not None:
        oldest = F.col("_t") - int(max_staleness.total_seconds() * MICROS_PER_SECOND)
        fresh = F.unix_micros(F.col(f"_picked.{feature_time_column}")) >= oldest
        joined = joined.withColumn("_picked", F.when(fresh, F.col("_picked")))
    return joined.select(
        *[F.col(f"_label.{c}").alias(c) for c in labels_df.columns],
        F.col(f"_picked.{feature_time_column}").alias(feature_time_column),
        *[F.col(f"_picked.{c}").alias(c) for c in feature_columns],
    )
