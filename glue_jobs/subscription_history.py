"""Glue job: the CDC snapshot log (Avro) -> subscription history (SCD2) and churn labels (Parquet).

Job parameters: ``--lake_bucket`` (where the CDC processor writes ``cdc/snapshots/``),
``--curated_bucket`` (where ``curated/subscription_history/`` and ``curated/churn_labels/`` go) and
``--churn_window_days``. All logic is in :mod:`glue_jobs.transforms.history`; this script only
reads and writes. ``awsglue`` exists only inside Glue, so it is imported in :func:`main`.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from glue_jobs.transforms.history import build_subscription_history, churn_labels, snapshot_schema
from platform_core.schemas.cdc import CDC_SNAPSHOTS_PREFIX, CHURN_LABELS_PREFIX, SUBSCRIPTION_HISTORY_PREFIX

Reader = Callable[[Any, str], Any]


def read_avro(spark: Any, path: str) -> Any:
    """The Avro log through Spark's Avro data source (built into Glue; partition folders are read)."""
    return spark.read.format("avro").load(path)


def read_avro_files(spark: Any, files: Iterable[Path | bytes]) -> Any:
    """The snapshot log from local files or bytes through fastavro, for runs without spark-avro
    (the local runtime and tests: the Avro data source is a separate package outside Glue)."""
    import fastavro

    rows: list[dict[str, Any]] = []
    for item in files:
        body = item if isinstance(item, bytes) else Path(item).read_bytes()
        rows += (cast(dict[str, Any], r) for r in fastavro.reader(io.BytesIO(body)))
    schema = snapshot_schema()
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)


def run(
    spark: Any,
    *,
    snapshots: Any,
    history_path: str,
    labels_path: str,
    window_days: int,
    as_of: datetime | None = None,
) -> dict[str, int]:
    """Build and write both datasets from the snapshot DataFrame; returns their row counts."""
    history = build_subscription_history(snapshots).cache()
    labels = churn_labels(history, window_days, as_of=as_of)
    history.write.mode("overwrite").parquet(history_path)
    labels.write.mode("overwrite").parquet(labels_path)
    counts = {"history_rows": history.count(), "label_rows": spark.read.parquet(labels_path).count()}
    history.unpersist()
    return counts


def main(argv: Sequence[str]) -> None:
    from awsglue.utils import getResolvedOptions  # only importable inside Glue
    from pyspark.sql import SparkSession

    args = getResolvedOptions(list(argv), ["JOB_NAME", "lake_bucket", "curated_bucket", "churn_window_days"])
    spark = SparkSession.builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    counts = run(
        spark,
        snapshots=read_avro(spark, f"s3://{args['lake_bucket']}/{CDC_SNAPSHOTS_PREFIX}"),
        history_path=f"s3://{args['curated_bucket']}/{SUBSCRIPTION_HISTORY_PREFIX}",
        labels_path=f"s3://{args['curated_bucket']}/{CHURN_LABELS_PREFIX}",
        window_days=int(args["churn_window_days"]),
    )
    print(f"{args['JOB_NAME']}: {counts}")


if __name__ == "__main__":
    main(sys.argv)
