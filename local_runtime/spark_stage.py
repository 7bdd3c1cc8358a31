"""Glue jobs on a local SparkSession: SCD2 history and labels, the curated (deduplicated)
clickstream, feature snapshots and the point-in-time training set. The same entry-point ``run``
functions the Glue scripts call, with local paths instead of ``s3://``.

The snapshot dates stand in for the daily schedule of the Step Functions orchestration: one run
per week of data, each with its own ``as_of`` taken from the data, never from the clock.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local_runtime.context import RunContext


@dataclass
class SparkLanding:
    history_rows: int = 0
    label_rows: int = 0
    curated_rows: int = 0
    snapshot_dates: list[str] = field(default_factory=list)
    training_rows: int = 0


def start_spark() -> tuple[Any, bool]:
    """The session, and whether this call started it (and so must stop it)."""
    from pyspark.sql import SparkSession

    from glue_jobs.spark_session import local_spark_session

    existing = SparkSession.getActiveSession()
    return (existing, False) if existing is not None else (local_spark_session("mlp-local-runtime"), True)


def run(ctx: RunContext, spark: Any, snapshot_files: list[Path]) -> SparkLanding:
    from glue_jobs import clickstream_features, subscription_features, subscription_history, training_set
    from glue_jobs.transforms.clickstream import dedupe_events

    landing = SparkLanding()
    lake = ctx.lake
    if snapshot_files:
        counts = subscription_history.run(
            spark,
            snapshots=subscription_history.read_avro_files(spark, snapshot_files),
            history_path=str(lake / "subscription_history"),
            labels_path=str(lake / "churn_labels"),
            window_days=ctx.config.cdc.churn_window_days,
            as_of=_data_end(spark, lake),
        )
        landing.history_rows, landing.label_rows = counts["history_rows"], counts["label_rows"]
        ctx.progress.say("history", f"{landing.history_rows} history rows, {landing.label_rows} churn labels")

    raw = spark.read.parquet(str(lake / "clickstream_raw"))
    # Daily partitions, one file each: hourly ones would be thousands of tiny files (six months are
    # 4,300 hours, times every shuffle partition), which costs minutes to write and to list.
    day = ("year", "month", "day")
    curated = dedupe_events(raw).repartition(*day)
    curated.write.mode("overwrite").partitionBy(*day).parquet(str(lake / "clickstream_curated"))
    landing.curated_rows = spark.read.parquet(str(lake / "clickstream_curated")).count()
    ctx.progress.say("curated", f"{landing.curated_rows} distinct events in clickstream_curated")

    dates = _snapshot_dates(spark, lake)

    def clickstream_snapshots() -> None:
        for as_of in dates:
            clickstream_features.run(
                spark,
                raw_path=str(lake / "clickstream_raw"),
                output_path=str(lake / "features" / "user_clickstream"),
                as_of=as_of,
                gap_minutes=ctx.config.glue.session_gap_minutes,
            )

    def subscription_snapshots() -> None:
        for as_of in dates:
            subscription_features.run(
                spark,
                history_path=str(lake / "subscription_history"),
                output_path=str(lake / "features" / "user_subscription"),
                as_of=as_of,
            )

    # The two groups' jobs share nothing (inputs, outputs) and run side by side, as the state
    # machine's parallel branch runs them in AWS; each small Spark job leaves cores idle alone.
    loops = [clickstream_snapshots, *([subscription_snapshots] if landing.history_rows else [])]
    with ThreadPoolExecutor(max_workers=len(loops)) as pool:
        for done in [pool.submit(loop) for loop in loops]:
            done.result()
    landing.snapshot_dates.extend(as_of.date().isoformat() for as_of in dates)
    ctx.progress.say("features", f"{len(landing.snapshot_dates)} weekly feature snapshots")

    if landing.label_rows:
        counts = training_set.run(
            spark,
            labels_path=str(lake / "churn_labels"),
            clickstream_path=str(lake / "features" / "user_clickstream"),
            subscription_path=str(lake / "features" / "user_subscription"),
            output_path=str(lake / "training_set"),
            lead=timedelta(days=ctx.config.features.label_lead_days),
            max_age=timedelta(days=ctx.config.features.max_feature_age_days),
        )
        landing.training_rows = counts["training_rows"]
        ctx.progress.say("training set", f"{landing.training_rows} labelled rows (point-in-time join)")
    return landing


def _data_end(spark: Any, lake: Path) -> datetime:
    """The newest event time in the raw lake: the runs' notion of "now" comes from the data."""
    from pyspark.sql import functions as F  # noqa: N812

    newest = spark.read.parquet(str(lake / "clickstream_raw")).agg(F.max("event_time")).first()[0]
    return (newest or datetime.now(UTC)).astimezone(UTC)


def _snapshot_dates(spark: Any, lake: Path) -> list[datetime]:
    from pyspark.sql import functions as F  # noqa: N812

    row = spark.read.parquet(str(lake / "clickstream_raw")).agg(F.min("event_time"), F.max("event_time")).first()
    first, last = (value.astimezone(UTC) for value in row)
    day = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=7)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    dates = []
    while day <= end:
        dates.append(day)
        day += timedelta(days=7)
    return dates or [end]
