"""Glue job: the raw clickstream lake -> one snapshot of the ``user-clickstream`` feature group.

Job parameters: ``--lake_bucket`` (raw events under ``clickstream/``), ``--curated_bucket``
(snapshots go to the group's ``snapshot_prefix``, one ``snapshot_date`` partition per run),
``--as_of`` (ISO-8601 with zone, required: the orchestrator passes the scheduled instant, so a
re-run or a back-fill computes exactly what the scheduled run did; the job never reads the
clock), ``--session_gap_minutes`` and ``--feature_group_arn`` (the snapshot is then put into the
group's offline store, see :mod:`glue_jobs.ingest`). All logic is in
:mod:`glue_jobs.transforms.clickstream`; this script only reads and writes. ``awsglue`` exists only
inside Glue: imported in :func:`main`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from glue_jobs.ingest.records import rejects_prefix
from glue_jobs.ingest.snapshot import ingest_snapshot
from glue_jobs.transforms.clickstream import dedupe_events, sessionize, user_clickstream_features
from platform_core.names import CLICKSTREAM_RAW_PREFIX
from platform_core.schema import Field, glue_type
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from platform_core.schemas.features import (
    CLICKSTREAM_WINDOWS_DAYS,
    DEFAULT_SESSION_GAP_MINUTES,
    SNAPSHOT_PARTITION,
    USER_CLICKSTREAM,
    lookback_days,
)


def spark_ddl(fields: Sequence[Field]) -> str:
    return ", ".join(f"`{f.name}` {glue_type(f.type)}" for f in fields)


def parse_as_of(text: str) -> datetime:
    """``--as_of``: ISO-8601 with a zone (a naive instant would silently mean the job's zone)."""
    instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"--as_of needs a time zone, got {text!r}")
    return instant


def read_raw_events(spark: Any, raw_path: str, *, start: datetime, end: datetime) -> Any:
    """Raw events of the hours overlapping [start, end], by partition pruning.

    The schema is given, not inferred, so that the partition columns stay strings as in the
    Glue table ("03", not 3) and the hour keys compare as text.
    """
    from pyspark.sql import functions as F  # noqa: N812

    schema = spark_ddl((*CLICKSTREAM_RAW.fields, *CLICKSTREAM_RAW.partition_keys))
    hour_key = F.concat(F.col("year"), F.col("month"), F.col("day"), F.col("hour"))
    df = spark.read.schema(schema).option("basePath", raw_path).parquet(raw_path)
    return df.filter(hour_key.between(start.strftime("%Y%m%d%H"), end.strftime("%Y%m%d%H"))).select(
        *CLICKSTREAM_RAW.field_names
    )


def run(
    spark: Any,
    *,
    raw_path: str,
    output_path: str,
    as_of: datetime,
    gap_minutes: int = DEFAULT_SESSION_GAP_MINUTES,
) -> dict[str, int]:
    """Compute and write the snapshot as of ``as_of``; returns the number of feature rows."""
    from pyspark.sql import functions as F  # noqa: N812

    # The lookback plus a session gap: enough history for exact sessions (see sessionize).
    start = as_of - timedelta(days=lookback_days(CLICKSTREAM_WINDOWS_DAYS), minutes=gap_minutes)
    events = read_raw_events(spark, raw_path, start=start, end=as_of)
    features = user_clickstream_features(sessionize(dedupe_events(events), gap_minutes), as_of)
    snapshot = features.withColumn(SNAPSHOT_PARTITION, F.lit(as_of.date().isoformat())).cache()
    rows = snapshot.count()
    # Dynamic partition overwrite: a re-run replaces its own day and nothing else. A window with no
    # events writes nothing (an empty partitioned write leaves a folder readers cannot infer).
    if rows:
        snapshot.write.mode("overwrite").partitionBy(SNAPSHOT_PARTITION).parquet(output_path)
    snapshot.unpersist()
    return {"feature_rows": rows}


def main(argv: Sequence[str]) -> None:
    from awsglue.utils import getResolvedOptions  # only importable inside Glue
    from pyspark.sql import SparkSession

    args = getResolvedOptions(
        list(argv),
        ["JOB_NAME", "lake_bucket", "curated_bucket", "as_of", "session_gap_minutes", "feature_group_arn"],
    )
    spark = (
        SparkSession.builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .getOrCreate()
    )
    as_of = parse_as_of(args["as_of"])
    snapshot_path = f"s3://{args['curated_bucket']}/{USER_CLICKSTREAM.snapshot_prefix}"
    counts = run(
        spark,
        raw_path=f"s3://{args['lake_bucket']}/{CLICKSTREAM_RAW_PREFIX}",
        output_path=snapshot_path,
        as_of=as_of,
        gap_minutes=int(args["session_gap_minutes"]),
    )
    counts |= ingest_snapshot(
        spark,
        group=USER_CLICKSTREAM,
        snapshot_path=snapshot_path,
        rejects_path=f"s3://{args['curated_bucket']}/{rejects_prefix(USER_CLICKSTREAM)}",
        as_of=as_of,
        feature_group=args["feature_group_arn"],
    )
    print(f"{args['JOB_NAME']}: {counts}")  # Glue keeps stdout in the log


if __name__ == "__main__":
    main(sys.argv)
