"""Glue job: churn labels + feature snapshots -> the point-in-time training set.

Job parameters: ``--curated_bucket`` (reads ``curated/churn_labels/`` and both groups'
snapshots, writes ``curated/training_set/``), ``--lead_days`` (``FeaturesConfig.label_lead_days``:
how long before a renewal date its prediction is made, and so its features' cutoff),
``--max_feature_age_days`` (``FeaturesConfig.max_feature_age_days``). Each label row gets, per
feature group, the latest snapshot at or before its cutoff and not older than the maximum age (see
:mod:`glue_jobs.transforms.training_set`).

The output is the training pipeline's input as it is, with no mapping in between
(:mod:`platform_core.schemas.training`): ``user_id``, ``cutoff_time``, ``label``, then each
group's feature values in group order. The snapshots' own times serve the join only and are not
written: to the pipeline every column but the key, the cutoff and the label is a feature.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from glue_jobs.transforms.training_set import training_labels, training_set
from platform_core.schemas.cdc import CHURN_LABELS_PREFIX
from platform_core.schemas.features import (
    FEATURE_GROUPS,
    TRAINING_SET_PREFIX,
    USER_CLICKSTREAM,
    USER_SUBSCRIPTION,
    FeatureGroup,
)
from platform_core.schemas.training import TRAINING_LABEL

GROUPS_BY_NAME = {group.name: group for group in FEATURE_GROUPS}


def read_snapshots(spark: Any, path: str, group: FeatureGroup) -> Any:
    """All snapshots of a group, with exactly the group's features (not the partition column)."""
    return spark.read.parquet(path).select(*group.feature_names)


def build(churn_labels: Any, snapshots: dict[str, Any], *, lead: timedelta, max_age: timedelta) -> Any:
    """Churn labels joined point-in-time with every group in ``snapshots`` (keyed by group name,
    joined in that order), in the training table's columns, cut off ``lead`` before renewal; a
    snapshot older than ``max_age`` at the cutoff counts as missing."""
    out = training_labels(churn_labels, lead=lead)
    columns: list[str] = list(TRAINING_LABEL.field_names)
    for group_name, df in snapshots.items():
        # Each group's snapshot time needs a name of its own while the next group is joined.
        out = training_set(
            out, df, feature_time_column=f"_{group_name.replace('-', '_')}_event_time", max_staleness=max_age
        )
        columns.extend(GROUPS_BY_NAME[group_name].value_names)
    return out.select(*columns)


def run(
    spark: Any,
    *,
    labels_path: str,
    clickstream_path: str,
    subscription_path: str,
    output_path: str,
    lead: timedelta,
    max_age: timedelta,
) -> dict[str, int]:
    dataset = build(
        spark.read.parquet(labels_path),
        {
            USER_CLICKSTREAM.name: read_snapshots(spark, clickstream_path, USER_CLICKSTREAM),
            USER_SUBSCRIPTION.name: read_snapshots(spark, subscription_path, USER_SUBSCRIPTION),
        },
        lead=lead,
        max_age=max_age,
    )
    # The training set is rebuilt whole from its inputs, so overwriting it is the idempotent write.
    dataset.write.mode("overwrite").parquet(output_path)
    return {"training_rows": spark.read.parquet(output_path).count()}


def main(argv: Sequence[str]) -> None:
    from awsglue.utils import getResolvedOptions  # only importable inside Glue
    from pyspark.sql import SparkSession

    args = getResolvedOptions(list(argv), ["JOB_NAME", "curated_bucket", "lead_days", "max_feature_age_days"])
    spark = SparkSession.builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    bucket = f"s3://{args['curated_bucket']}"
    counts = run(
        spark,
        labels_path=f"{bucket}/{CHURN_LABELS_PREFIX}",
        clickstream_path=f"{bucket}/{USER_CLICKSTREAM.snapshot_prefix}",
        subscription_path=f"{bucket}/{USER_SUBSCRIPTION.snapshot_prefix}",
        output_path=f"{bucket}/{TRAINING_SET_PREFIX}",
        lead=timedelta(days=int(args["lead_days"])),
        max_age=timedelta(days=int(args["max_feature_age_days"])),
    )
    print(f"{args['JOB_NAME']}: {counts}")  # Glue keeps stdout in the log


if __name__ == "__main__":
    main(sys.argv)
