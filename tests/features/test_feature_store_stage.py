"""The local run's feature store stage: the snapshots go through the Glue jobs' ingest code into an
in-memory store with Feature Store's semantics (offline appends, online keeps the latest event time)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from local_runtime import feature_store_stage
from local_runtime.context import Progress, RunContext
from local_runtime.feature_store_stage import LocalFeatureStore
from platform_core.config import load_config
from platform_core.schema import glue_type
from platform_core.schemas.features import SNAPSHOT_PARTITION, USER_CLICKSTREAM, USER_SUBSCRIPTION, FeatureGroup

DAY_1 = datetime(2024, 3, 3, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=7)
SUBSCRIPTIONS = "mlp-dev-user-subscription"


def _record(user_id: str, at: datetime, plan: str) -> list[dict[str, str]]:
    return [
        {"FeatureName": "user_id", "ValueAsString": user_id},
        {"FeatureName": "event_time", "ValueAsString": at.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
        {"FeatureName": "plan", "ValueAsString": plan},
    ]


def test_the_local_store_keeps_the_latest_record_online_and_every_record_offline():
    store = LocalFeatureStore()
    # When a newer, then an older record of the same user is put
    store.put_record(FeatureGroupName="g", Record=_record("u1", DAY_2, "premium"))
    store.put_record(FeatureGroupName="g", Record=_record("u1", DAY_1, "basic"))
    # Then the online store keeps the newer one, and the offline store both
    assert store.online[("g", "u1")] == _record("u1", DAY_2, "premium")
    assert (store.online_records("g"), store.offline_rows("g")) == (1, 2)
    # And an offline-only put leaves the online store alone
    store.put_record(FeatureGroupName="g", Record=_record("u2", DAY_2, "basic"), TargetStores=["OfflineStore"])
    assert (store.online_records("g"), store.offline_rows("g")) == (1, 3)
    with pytest.raises(ValueError, match="unknown target stores"):
        store.put_record(FeatureGroupName="g", Record=_record("u3", DAY_2, "basic"), TargetStores=["Nowhere"])


def _write(spark: Any, lake: Path, group: FeatureGroup, as_of: datetime, rows: list[dict[str, Any]]) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    ddl = ", ".join(f"`{f.name}` {glue_type(f.type)}" for f in group.features)
    data = [tuple({"event_time": as_of, **row}.get(name) for name in group.feature_names) for row in rows]
    spark.createDataFrame(data, ddl).withColumn(SNAPSHOT_PARTITION, F.lit(as_of.date().isoformat())).write.mode(
        "append"
    ).partitionBy(SNAPSHOT_PARTITION).parquet(str(lake / "features" / group.name.replace("-", "_")))


@pytest.mark.spark
@pytest.mark.slow
def test_the_stage_puts_every_snapshot_into_its_stores_and_keeps_the_rejects(spark: Any, tmp_path: Path) -> None:
    # Given two weekly subscription snapshots (u1 changed plan; u2's price is not a number) and a clickstream one
    _write(spark, tmp_path / "lake", USER_SUBSCRIPTION, DAY_1, [{"user_id": "u1", "plan": "basic", "price": 9.99}])
    _write(
        spark,
        tmp_path / "lake",
        USER_SUBSCRIPTION,
        DAY_2,
        [{"user_id": "u1", "plan": "premium", "price": 19.99}, {"user_id": "u2", "plan": "basic", "price": math.nan}],
    )
    _write(spark, tmp_path / "lake", USER_CLICKSTREAM, DAY_2, [{"user_id": "u1", "sessions_7d": 3}])
    ctx = RunContext(aws=cast(Any, None), config=load_config("dev"), out=tmp_path, progress=Progress(quiet=True))
    # When the stage runs
    landing = feature_store_stage.run(ctx, spark)
    # Then the subscription group holds u1's latest plan online and both snapshots offline
    online = {i["FeatureName"]: i["ValueAsString"] for i in landing.store.online[(SUBSCRIPTIONS, "u1")]}
    assert (online["plan"], online["event_time"]) == ("premium", "2024-03-10T00:00:00.000Z")
    assert landing.summary["user-subscription"] == {
        "records_written": 2,
        "records_rejected": 1,
        "online_records": 1,
        "offline_rows": 2,
    }
    # And the clickstream snapshot went to the offline store only (the stream owns its online store)
    assert landing.summary["user-clickstream"] == {
        "records_written": 1,
        "records_rejected": 0,
        "online_records": 0,
        "offline_rows": 1,
    }
    # And u2's row is kept with its reason where a person finds it
    rejects = tmp_path / "errors" / "feature-store" / "user_subscription" / "snapshot_date=2024-03-10" / "rejects.jsonl"
    (reject,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert reject["record_identifier"] == "u2"
    assert reject["reason"] == "unusable row: ValueError: feature price is not finite: nan"
