"""The Glue entry scripts' I/O, end to end on local Parquet: raw lake -> snapshots -> training set."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from glue_jobs import clickstream_features, subscription_features, training_set
from platform_core.config import FeaturesConfig
from platform_core.schemas.features import USER_CLICKSTREAM, USER_SUBSCRIPTION
from platform_core.schemas.training import TRAINING_LABEL
from tests.features.conftest import HISTORY_DDL, LABELS_DDL, history_row, raw_df, raw_row

pytestmark = [pytest.mark.spark, pytest.mark.slow]

AS_OF = datetime(2024, 3, 2, tzinfo=UTC)


def _write_raw_lake(spark: Any, path: Path) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    rows = [
        # Inside the read range, across a month boundary (partition month "02" and "03")
        raw_row("a", AS_OF - timedelta(days=2), user_id="u1"),
        raw_row("b", AS_OF - timedelta(minutes=5), user_id="u1", event_type="purchase"),
        raw_row("b", AS_OF - timedelta(minutes=5), user_id="u1", event_type="purchase"),  # duplicate
        # Far outside: its partition is never read
        raw_row("c", AS_OF - timedelta(days=90), user_id="u2"),
    ]
    t = F.col("event_time")
    raw_df(spark, rows).withColumn("year", F.date_format(t, "yyyy")).withColumn(
        "month", F.date_format(t, "MM")
    ).withColumn("day", F.date_format(t, "dd")).withColumn("hour", F.date_format(t, "HH")).write.partitionBy(
        "year", "month", "day", "hour"
    ).parquet(str(path))


def test_jobs_write_snapshots_and_a_point_in_time_training_set(spark: Any, tmp_path: Path) -> None:
    # Given a raw lake, a subscription history and churn labels on disk
    raw, curated = tmp_path / "clickstream", tmp_path / "curated"
    _write_raw_lake(spark, raw)
    history = spark.createDataFrame(
        [history_row("u1", datetime(2024, 1, 1, tzinfo=UTC), None, active=True, renewal_date=date(2024, 3, 5))],
        HISTORY_DDL,
    )
    history.write.parquet(str(curated / "history"))
    labels = spark.createDataFrame([("u1", date(2024, 3, 5), True, datetime(2024, 4, 4, tzinfo=UTC))], LABELS_DDL)
    labels.write.parquet(str(curated / "labels"))

    # When the three jobs run (twice for the first: a re-run must not duplicate its snapshot)
    for _ in range(2):
        counts = clickstream_features.run(spark, raw_path=str(raw), output_path=str(curated / "cs"), as_of=AS_OF)
    assert counts == {"feature_rows": 1}
    assert subscription_features.run(
        spark, history_path=str(curated / "history"), output_path=str(curated / "subs"), as_of=AS_OF
    ) == {"feature_rows": 1}
    assert training_set.run(
        spark,
        labels_path=str(curated / "labels"),
        clickstream_path=str(curated / "cs"),
        subscription_path=str(curated / "subs"),
        output_path=str(curated / "training"),
        lead=timedelta(0),
        max_age=timedelta(days=FeaturesConfig().max_feature_age_days),
    ) == {"training_rows": 1}

    # Then the training set is the training pipeline's table: key, cutoff, label, then every feature
    out = spark.read.parquet(str(curated / "training"))
    assert out.columns == [
        *TRAINING_LABEL.field_names,
        *USER_CLICKSTREAM.value_names,
        *USER_SUBSCRIPTION.value_names,
    ]
    row = out.first()
    assert row is not None
    assert (row.user_id, row.cutoff_time, row.label) == ("u1", datetime(2024, 3, 5), 1)
    assert (row.sessions_30d, row.events_30d, row.purchases_30d) == (2, 2, 1)
    assert (row.is_active, row.renewal_month, row.days_until_renewal) == (1, 3, 3)


def test_as_of_must_carry_a_zone() -> None:
    assert clickstream_features.parse_as_of("2024-03-02T00:00:00Z") == AS_OF
    with pytest.raises(ValueError, match="zone"):
        clickstream_features.parse_as_of("2024-03-02T00:00:00")
