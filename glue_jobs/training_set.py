"""Glue job: churn labels + feature snapshots -> the point-in-time training set.

Job parameters: ``--curated_bucket`` (reads ``curated/churn_labels/`` and both groups'
snapshots, writes ``curated/training_set/``). Each label row gets, per feature group, the latest
snapshot at or before its cutoff (see :mod:`glue_jobs.transforms.training_set`), with that
snapshot's time in ``clickstream_event_time`` / ``subscription_event_time``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from glue_jobs.transforms.training_set import training_set
from platform_core.schemas.cdc import CHURN_LABELS_PREFIX
from platform_core.schemas.features import (
    TRAINING_SET_PREFIX,
    USER_CLICKSTREAM,
    USER_SUBSCRIPTION,
    FeatureGroup,
)

# Which snapshot each feature group's time column in the training set refers to.
FEATURE_TIME_COLUMNS = {
    USER_CLICKSTREAM.name: "clickstream_event_time",
    USER_SUBSCRIPTION.name: "subscription_event_time",
}


def read_snapshots(spark: Any, path: str, group: FeatureGroup) -> Any:
    """All snapshots of a group, with exactly the group's features (not the partition column)."""
    return spark.read.parquet(path).select(*group.feature_names)


def build(labels: Any, snapshots: dict[str, Any]) -> Any:
    """Labels joined point-in-time with every group in ``snapshots`` (keyed by group name)."""
    out = labels
    for group_name, df in snapshots.items():
        out = training_set(out, df, feature_time_column=FEATURE_TIME_COLUMNS[group_name])
    return out


def run(
    spark: Any, *, labels_path: str, clickstream_path: str, subscription_path: str, output_path: str
) -> dict[str, int]:
    dataset = build(
        spark.read.parquet(labels_path),
        {
            USER_CLICKSTREAM.name: read_snapshots(spark, clickstream_path, USER_CLICKSTREAM),
            USER_SUBSCRIPTION.name: read_snapshots(spark, subscription_path, USER_SUBSCRIPTION),
        },
    )
    # The training set is rebuilt whole from its inputs, so overwriting it is the idempotent write.
    dataset.write.mode("overwrite").parquet(output_path)
    return {"training_rows": spark.read.parquet(output_path).count()}


def main(argv: Sequence[str]) -> None:
    from awsglue.utils import getResolvedOptions  # only importable inside Glue
    from pyspark.sql import SparkSession

    args = getResolvedOptions(list(argv), ["JOB_NAME", "curated_bucket"])
    spark = SparkSession.builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    bucket = f"s3://{args['curated_bucket']}"
    counts = run(
        spark,
        labels_path=f"{bucket}/{CHURN_LABELS_PREFIX}",
        clickstream_path=f"{bucket}/{USER_CLICKSTREAM.snapshot_prefix}",
        subscription_path=f"{bucket}/{USER_SUBSCRIPTION.snapshot_prefix}",
        output_path=f"{bucket}/{TRAINING_SET_PREFIX}",
    )
    print(f"{args['JOB_NAME']}: {counts}")  # Glue keeps stdout in the log


if __name__ == "__main__":
    main(sys.argv)
