"""Glue job: the subscription history (SCD2) -> one snapshot of the ``user-subscription`` group.

Job parameters: ``--curated_bucket`` (reads ``curated/subscription_history/``, writes the
group's ``snapshot_prefix``, one ``snapshot_date`` partition per run), ``--as_of`` (ISO-8601
with zone, required; never the clock) and ``--feature_group_arn`` (the snapshot is then put into
the group's online and offline stores, see :mod:`glue_jobs.ingest`).
Logic: :mod:`glue_jobs.transforms.subscription_features`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from glue_jobs.clickstream_features import parse_as_of
from glue_jobs.ingest.records import rejects_prefix
from glue_jobs.ingest.snapshot import ingest_snapshot
from glue_jobs.transforms.subscription_features import subscription_features
from platform_core.schemas.cdc import SUBSCRIPTION_HISTORY_PREFIX
from platform_core.schemas.features import SNAPSHOT_PARTITION, USER_SUBSCRIPTION


def run(spark: Any, *, history_path: str, output_path: str, as_of: datetime) -> dict[str, int]:
    from pyspark.sql import functions as F  # noqa: N812

    features = subscription_features(spark.read.parquet(history_path), as_of).cache()
    rows = features.count()
    day = as_of.date().isoformat()
    # An as_of before any subscription existed has no rows; writing nothing keeps readers working
    # (an empty partitioned write leaves a folder Spark cannot infer a schema from).
    if rows:
        features.withColumn(SNAPSHOT_PARTITION, F.lit(day)).write.mode("overwrite").partitionBy(
            SNAPSHOT_PARTITION
        ).parquet(output_path)
    features.unpersist()
    return {"feature_rows": rows}


def main(argv: Sequence[str]) -> None:
    from awsglue.utils import getResolvedOptions  # only importable inside Glue
    from pyspark.sql import SparkSession

    args = getResolvedOptions(list(argv), ["JOB_NAME", "curated_bucket", "as_of", "feature_group_arn"])
    spark = (
        SparkSession.builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .getOrCreate()
    )
    as_of = parse_as_of(args["as_of"])
    snapshot_path = f"s3://{args['curated_bucket']}/{USER_SUBSCRIPTION.snapshot_prefix}"
    counts = run(
        spark,
        history_path=f"s3://{args['curated_bucket']}/{SUBSCRIPTION_HISTORY_PREFIX}",
        output_path=snapshot_path,
        as_of=as_of,
    )
    counts |= ingest_snapshot(
        spark,
        group=USER_SUBSCRIPTION,
        snapshot_path=snapshot_path,
        rejects_path=f"s3://{args['curated_bucket']}/{rejects_prefix(USER_SUBSCRIPTION)}",
        as_of=as_of,
        feature_group=args["feature_group_arn"],
    )
    print(f"{args['JOB_NAME']}: {counts}")  # Glue keeps stdout in the log


if __name__ == "__main__":
    main(sys.argv)
