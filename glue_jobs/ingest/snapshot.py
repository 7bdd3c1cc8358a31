"""The Spark side of batch ingestion: one snapshot partition -> ``PutRecord`` on the executors.

A feature job calls :func:`ingest_snapshot` right after it wrote its snapshot for ``as_of``: the
partition just written is read back (exactly what the training set will read), spread over the
cluster's cores, and each executor runs :func:`glue_jobs.ingest.put.ingest_rows` with its own
Feature Store client. Every row yields one outcome row; the rejects are written with their
reasons as JSON lines under the group's rejects prefix (``snapshot_date=<day>``, replaced by each
run of that day), and the counts come back to the job.

A few rejects are data problems a person looks at; many mean something is wrong with the run:
above ``max_reject_share`` of the rows the job fails (after writing the rejects), so that the
orchestration retries it, then reports it, and training does not start on a half-filled store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from glue_jobs.ingest.put import (
    DEFAULT_RETRY_POLICY,
    REJECTED,
    WRITTEN,
    IngestTarget,
    PutRecord,
    RetryPolicy,
    ingest_rows,
)
from glue_jobs.ingest.records import target_stores
from platform_core.schema import Primitive, glue_type
from platform_core.schemas.features import SNAPSHOT_PARTITION, FeatureGroup

# One row per input row; ``row`` is set for rejects only.
OUTCOME_DDL = "record_identifier STRING, event_time STRING, attempts INT, reason STRING, row STRING, status STRING"
MAX_REJECT_SHARE = 0.01
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class IngestRejectsExceededError(RuntimeError):
    """More rows were rejected than a run may leave behind; the rejects were written first."""


@functools.cache
def feature_store_client(region: str) -> Any:
    """One ``sagemaker-featurestore-runtime`` client per executor process and region.

    botocore's own retries are off: :class:`~glue_jobs.ingest.put.RetryPolicy` is the one retry
    policy, so attempts are bounded once and counted.
    """
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-featurestore-runtime",
        region_name=region,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


def region_of(feature_group_arn: str) -> str:
    """``arn:aws:sagemaker:<region>:<account>:feature-group/<name>`` -> ``<region>``."""
    parts = feature_group_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sagemaker" or not parts[5].startswith("feature-group/"):
        raise ValueError(f"not a feature group ARN: {feature_group_arn!r}")
    return parts[3]


@dataclass(frozen=True)
class FeatureStorePutRecord:
    """Picklable factory of ``put_record`` for the executors (a boto3 client is not picklable)."""

    region: str

    def __call__(self) -> PutRecord:
        put_record: PutRecord = feature_store_client(self.region).put_record
        return put_record


def snapshot_day(as_of: datetime) -> str:
    """The ``snapshot_date`` partition of ``as_of``, as the feature jobs' ``run`` write it."""
    return as_of.date().isoformat()


def snapshot_partition(snapshot_path: str, as_of: datetime) -> str:
    """The folder of the snapshot of ``as_of`` under a group's snapshot path (``s3://`` or local)."""
    return f"{snapshot_path.rstrip('/')}/{SNAPSHOT_PARTITION}={snapshot_day(as_of)}"


def read_snapshot(spark: Any, group: FeatureGroup, partition: str) -> Any:
    """The group's features of one snapshot partition, timestamps as epoch microseconds: they
    cross to Python with no session or machine time zone in between (see :func:`typed_row`)."""
    from pyspark.sql import functions as F  # noqa: N812

    ddl = ", ".join(f"`{f.name}` {glue_type(f.type)}" for f in group.features)
    columns = [
        F.unix_micros(F.col(f.name)).alias(f.name) if f.type is Primitive.TIMESTAMP else F.col(f.name)
        for f in group.features
    ]
    return spark.read.schema(ddl).parquet(partition).select(*columns)


def typed_row(group: FeatureGroup, row: dict[str, Any]) -> dict[str, Any]:
    """A row of :func:`read_snapshot` with its timestamps back as aware UTC datetimes."""
    for f in group.features:
        if f.type is Primitive.TIMESTAMP and row.get(f.name) is not None:
            row[f.name] = _EPOCH + timedelta(microseconds=row[f.name])
    return row


def ingest_snapshot(
    spark: Any,
    *,
    group: FeatureGroup,
    snapshot_path: str,
    rejects_path: str,
    as_of: datetime,
    feature_group: str,
    put_record_factory: Callable[[], PutRecord] | None = None,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    max_reject_share: float = MAX_REJECT_SHARE,
    partitions: int | None = None,
) -> dict[str, int]:
    """Put every row of ``group``'s snapshot for ``as_of`` into the feature group ``feature_group``
    (its ARN; the client's region comes from it unless ``put_record_factory`` is given).

    Returns ``records_written``, ``records_rejected`` and ``put_attempts`` (calls made, retries
    included). Raises :class:`IngestRejectsExceededError` when the rejects exceed ``max_reject_share``.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812

    rejects_partition = snapshot_partition(rejects_path, as_of)
    _delete(spark, rejects_partition)  # this run's rejects replace an earlier run's of the same day
    partition = snapshot_partition(snapshot_path, as_of)
    if not _exists(spark, partition):  # the job wrote no rows for as_of
        return {"records_written": 0, "records_rejected": 0, "put_attempts": 0}

    rows = read_snapshot(spark, group, partition)
    target = IngestTarget(group, feature_group, target_stores(group), as_of)
    ingest = functools.partial(
        _ingest_partition, target, policy, put_record_factory or FeatureStorePutRecord(region_of(feature_group))
    )
    spread = rows.repartition(partitions or spark.sparkContext.defaultParallelism)
    # Persisted so that the calls are made once: the counts and the rejects both read this.
    outcomes = spark.createDataFrame(spread.rdd.mapPartitions(ingest), OUTCOME_DDL).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        summary = {
            r["status"]: (r["rows"], r["attempts"])
            for r in outcomes.groupBy("status")
            .agg(F.count(F.lit(1)).alias("rows"), F.sum("attempts").alias("attempts"))
            .collect()
        }
        written, written_attempts = summary.get(WRITTEN, (0, 0))
        rejected, rejected_attempts = summary.get(REJECTED, (0, 0))
        if rejected:
            outcomes.filter(F.col("status") == REJECTED).drop("status").write.mode("append").json(rejects_partition)
    finally:
        outcomes.unpersist()
    counts = {
        "records_written": int(written),
        "records_rejected": int(rejected),
        "put_attempts": int(written_attempts + rejected_attempts),
    }
    total = written + rejected
    if rejected > max_reject_share * total:
        raise IngestRejectsExceededError(
            f"{rejected} of {total} {group.name} rows were rejected (more than {max_reject_share:.0%}); "
            f"reasons in {rejects_partition}"
        )
    return counts


def _ingest_partition(
    target: IngestTarget, policy: RetryPolicy, factory: Callable[[], PutRecord], rows: Iterable[Any]
) -> Iterator[tuple[Any, ...]]:
    """Runs on an executor: Spark rows -> typed rows -> outcomes (as tuples of OUTCOME_DDL)."""
    put_record = factory()
    typed = (typed_row(target.group, row.asDict()) for row in rows)
    for o in ingest_rows(typed, put_record=put_record, target=target, policy=policy):
        yield (o.record_identifier, o.event_time, o.attempts, o.reason, o.row, o.status)


def _hadoop_path(spark: Any, path: str) -> tuple[Any, Any]:
    """The path and its file system (S3 in Glue, the local disk in tests) through Hadoop's API."""
    jvm_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    return jvm_path, jvm_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _exists(spark: Any, path: str) -> bool:
    jvm_path, fs = _hadoop_path(spark, path)
    return bool(fs.exists(jvm_path))


def _delete(spark: Any, path: str) -> None:
    jvm_path, fs = _hadoop_path(spark, path)
    if fs.exists(jvm_path):
        fs.delete(jvm_path, True)
