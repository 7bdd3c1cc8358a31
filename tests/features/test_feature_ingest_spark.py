"""Batch ingestion on a local SparkSession: a snapshot partition -> PutRecord on the executors ->
counts and a rejects file with reasons, exactly as the Glue jobs run it after their snapshot."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from glue_jobs.ingest.put import RetryPolicy
from glue_jobs.ingest.snapshot import IngestRejectsExceededError, ingest_snapshot
from platform_core.schema import glue_type
from platform_core.schemas.features import SNAPSHOT_PARTITION, USER_SUBSCRIPTION
from tests.features.fake_feature_store import DirectoryFeatureStore

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = datetime(2024, 3, 10, 1, 0, tzinfo=UTC)
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:feature-group/mlp-dev-user-subscription"
NO_WAIT = RetryPolicy(max_attempts=3, base_delay_seconds=0.0, max_delay_seconds=0.0)
DDL = ", ".join(f"`{f.name}` {glue_type(f.type)}" for f in USER_SUBSCRIPTION.features)


def _row(user_id: str, price: float = 9.99) -> tuple[Any, ...]:
    values = {
        "user_id": user_id,
        "event_time": AS_OF,
        "is_active": 1,
        "plan": "basic",
        "price": price,
        "renewal_month": 4,
        "days_until_renewal": 36,
        "tenure_days": 10.0,
        "cancellations": 0,
        "days_since_last_transition": 10.0,
    }
    return tuple(values[name] for name in USER_SUBSCRIPTION.feature_names)


def _write_snapshot(spark: Any, path: Path) -> None:
    """The snapshot as subscription_features.run writes it: one snapshot_date partition."""
    from pyspark.sql import functions as F  # noqa: N812

    rows = [_row("u1"), _row("u2"), _row("u3"), _row("u4", price=math.nan)]
    spark.createDataFrame(rows, DDL).withColumn(SNAPSHOT_PARTITION, F.lit("2024-03-10")).write.partitionBy(
        SNAPSHOT_PARTITION
    ).parquet(str(path))


def _rejects(path: Path) -> dict[str, dict[str, Any]]:
    partition = path / f"{SNAPSHOT_PARTITION}=2024-03-10"
    lines = [json.loads(line) for f in sorted(partition.glob("part-*.json")) for line in f.read_text().splitlines()]
    return {line["record_identifier"]: line for line in lines}


def _ingest(spark: Any, tmp_path: Path, store: DirectoryFeatureStore, **options: Any) -> dict[str, int]:
    return ingest_snapshot(
        spark,
        group=USER_SUBSCRIPTION,
        snapshot_path=str(tmp_path / "snapshot"),
        rejects_path=str(tmp_path / "rejects"),
        as_of=AS_OF,
        feature_group=ARN,
        put_record_factory=store,
        policy=NO_WAIT,
        partitions=2,
        **options,
    )


def test_the_snapshot_is_put_row_by_row_and_the_rejects_land_with_their_reasons(spark: Any, tmp_path: Path) -> None:
    # Given the snapshot of as_of, and a store that refuses u2 and throttles u3 once (u4 has a NaN price)
    _write_snapshot(spark, tmp_path / "snapshot")
    calls = tmp_path / "calls"
    calls.mkdir()
    store = DirectoryFeatureStore(str(calls), refuse=("u2",), throttle_once=("u3",))
    # When the snapshot is ingested (half the rows may be rejected in this test)
    counts = _ingest(spark, tmp_path, store, max_reject_share=0.5)
    # Then u1 and u3 (on its second attempt) were written to both stores with the snapshot's event time
    assert counts == {"records_written": 2, "records_rejected": 2, "put_attempts": 1 + 2 + 1 + 0}
    requests = store.requests()
    assert [r["Record"][0]["ValueAsString"] for r in requests] == ["u1", "u3"]
    assert {r["FeatureGroupName"] for r in requests} == {ARN}
    assert {tuple(r["TargetStores"]) for r in requests} == {("OnlineStore", "OfflineStore")}
    event_times = {i["ValueAsString"] for r in requests for i in r["Record"] if i["FeatureName"] == "event_time"}
    assert event_times == {"2024-03-10T01:00:00.000Z"}
    # And the two others are in the rejects file of that day, with the reason and the row
    rejects = _rejects(tmp_path / "rejects")
    assert set(rejects) == {"u2", "u4"}
    assert rejects["u2"]["reason"] == "ValidationError: record of u2 refused"
    assert rejects["u4"]["reason"] == "unusable row: ValueError: feature price is not finite: nan"
    assert json.loads(rejects["u4"]["row"])["plan"] == "basic"

    # When the same as_of is ingested again and the store now takes u2
    again = DirectoryFeatureStore(str(calls))
    assert _ingest(spark, tmp_path, again, max_reject_share=0.5)["records_rejected"] == 1
    # Then the day's rejects are replaced, not added to
    assert set(_rejects(tmp_path / "rejects")) == {"u4"}


def test_too_many_rejects_fail_the_run_after_writing_them(spark: Any, tmp_path: Path) -> None:
    # Given a store that refuses most rows
    _write_snapshot(spark, tmp_path / "snapshot")
    (tmp_path / "calls").mkdir()
    store = DirectoryFeatureStore(str(tmp_path / "calls"), refuse=("u1", "u2"))
    # When the snapshot is ingested with the default 1% tolerance
    with pytest.raises(IngestRejectsExceededError, match="3 of 4 user-subscription rows were rejected"):
        _ingest(spark, tmp_path, store)
    # Then the rejects are there for a person to read
    assert set(_rejects(tmp_path / "rejects")) == {"u1", "u2", "u4"}


def test_an_as_of_without_a_snapshot_puts_nothing(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "calls").mkdir()
    store = DirectoryFeatureStore(str(tmp_path / "calls"))
    assert _ingest(spark, tmp_path, store) == {"records_written": 0, "records_rejected": 0, "put_attempts": 0}
    assert store.requests() == []
