"""The history job's transforms on the shared local SparkSession, against hand-computed results."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from glue_jobs.subscription_history import read_avro_files, run
from glue_jobs.transforms.history import (
    build_subscription_history,
    churn_labels,
    snapshot_schema,
    spark_schema,
)
from platform_core.schemas.cdc import CHURN_LABEL, SUBSCRIPTION_HISTORY
from tests.cdc.conftest import Pipeline
from tests.cdc.events import dms, row

pytestmark = pytest.mark.spark


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def snap(
    user: str,
    at: str,
    active: bool | None,
    renewal: str | None = None,
    *,
    plan: str | None = "basic",
    price: float | None = 9.99,
    deleted: bool = False,
    event: str | None = None,
    tiebreak: str = "0",
) -> tuple[Any, ...]:
    """A snapshot row in STATE_SNAPSHOT column order."""
    moment = ts(at)
    return (
        event or f"{user}@{at}#{tiebreak}",
        user,
        None if deleted else active,
        None if deleted or renewal is None else date.fromisoformat(renewal),
        None if deleted else plan,
        None if deleted else price,
        deleted,
        "update",
        moment,
        None,
        f"{moment.timestamp():020.6f}|{tiebreak}",
        ts("2026-12-31T00:00:00"),
    )


def history_rows(df: Any) -> list[tuple[Any, ...]]:
    rows = df.orderBy("user_id", "valid_from").collect()
    return [
        (r.user_id, r.is_active_subscribed, r.renewal_date, r.plan, r.valid_from, r.valid_to, r.is_current)
        for r in rows
    ]


def naive(text: str) -> datetime:
    """Spark returns timestamps as naive datetimes in the (UTC) session time zone."""
    return datetime.fromisoformat(text)


def test_scd2_history_from_snapshots(spark: Any) -> None:
    # Given snapshots, shuffled, with a duplicate, an unchanged re-snapshot, deletes and a re-insert
    snapshots = [
        snap("u1", "2026-01-03T00:00:00", True, "2026-02-01"),  # renewal
        snap("u1", "2026-01-01T00:00:00", True, "2026-01-01"),  # subscribed
        snap("u1", "2026-01-01T00:00:00", True, "2026-01-01"),  # the same event again (at-least-once)
        snap("u1", "2026-01-04T00:00:00", True, "2026-02-01"),  # nothing tracked changed
        snap("u1", "2026-01-10T00:00:00", False, "2026-02-01"),  # cancelled
        snap("u2", "2026-01-01T00:00:00", True, "2026-01-20", plan="pro"),
        snap("u2", "2026-01-05T00:00:00", None, deleted=True),
        snap("u3", "2026-01-01T00:00:00", True, "2026-01-15"),
        snap("u3", "2026-01-02T00:00:00", None, deleted=True),
        snap("u3", "2026-01-06T00:00:00", False, None, plan=None, price=None),  # re-inserted, inactive
        # two changes in the same instant: source_position orders them
        snap("u4", "2026-01-01T00:00:00", True, "2026-01-31", plan="max", tiebreak="2"),
        snap("u4", "2026-01-01T00:00:00", True, "2026-01-31", plan="pro", tiebreak="1"),
    ]
    df = spark.createDataFrame(snapshots, snapshot_schema())
    # When the history is built
    history = build_subscription_history(df)
    # Then it has exactly the schema's columns and the hand-computed versions
    assert history.schema.names == list(SUBSCRIPTION_HISTORY.field_names)
    assert history_rows(history) == [
        ("u1", True, date(2026, 1, 1), "basic", naive("2026-01-01"), naive("2026-01-03"), False),
        ("u1", True, date(2026, 2, 1), "basic", naive("2026-01-03"), naive("2026-01-10"), False),
        ("u1", False, date(2026, 2, 1), "basic", naive("2026-01-10"), None, True),
        ("u2", True, date(2026, 1, 20), "pro", naive("2026-01-01"), naive("2026-01-05"), False),
        ("u3", True, date(2026, 1, 15), "basic", naive("2026-01-01"), naive("2026-01-02"), False),
        ("u3", False, None, None, naive("2026-01-06"), None, True),
        ("u4", True, date(2026, 1, 31), "pro", naive("2026-01-01"), naive("2026-01-01"), False),
        ("u4", True, date(2026, 1, 31), "max", naive("2026-01-01"), None, True),
    ]


def version(user: str, active: bool, renewal: str | None, start: str, end: str | None) -> tuple[Any, ...]:
    """A history row in SUBSCRIPTION_HISTORY column order."""
    return (
        user,
        active,
        None if renewal is None else date.fromisoformat(renewal),
        "basic",
        9.99,
        ts(start),
        None if end is None else ts(end),
        end is None,
    )


HISTORY = [
    # A: renews each month, once a day early; the last window is still open
    version("A", True, "2026-01-10", "2025-12-10T00:00:00", "2026-01-09T12:00:00"),
    version("A", True, "2026-02-10", "2026-01-09T12:00:00", "2026-02-10T00:00:00"),
    version("A", True, "2026-03-10", "2026-02-10T00:00:00", None),
    # B: cancels before the renewal date and never comes back
    version("B", True, "2026-01-15", "2025-12-15T00:00:00", "2026-01-05T00:00:00"),
    version("B", False, "2026-01-15", "2026-01-05T00:00:00", None),
    # C: cancels, then reactivates inside the window with a later renewal date
    version("C", True, "2026-01-20", "2025-12-20T00:00:00", "2026-01-10T00:00:00"),
    version("C", False, "2026-01-20", "2026-01-10T00:00:00", "2026-02-01T00:00:00"),
    version("C", True, "2026-03-01", "2026-02-01T00:00:00", None),
    # E: still marked active but the renewal date never moves (lapsed)
    version("E", True, "2026-01-05", "2025-12-05T00:00:00", None),
    # F: renews only after the window closed
    version("F", True, "2026-01-01", "2025-12-01T00:00:00", "2026-02-05T00:00:00"),
    version("F", True, "2026-02-01", "2026-02-05T00:00:00", None),
    # G: never active: nothing to label
    version("G", False, "2026-01-01", "2025-12-01T00:00:00", None),
]


def test_churn_labels_by_hand(spark: Any) -> None:
    # Given hand-written histories and a 30-day window, known on 2026-03-20
    history = spark.createDataFrame(HISTORY, spark_schema(SUBSCRIPTION_HISTORY))
    # When labelled
    labels = churn_labels(history, 30, as_of=ts("2026-03-20T00:00:00"))
    # Then each closed renewal window is labelled as computed by hand
    assert labels.schema.names == list(CHURN_LABEL.field_names)
    got = sorted((r.user_id, r.renewal_date, r.churned, r.label_time) for r in labels.collect())
    assert got == [
        ("A", date(2026, 1, 10), False, naive("2026-02-09")),
        ("A", date(2026, 2, 10), False, naive("2026-03-12")),
        ("B", date(2026, 1, 15), True, naive("2026-02-14")),
        ("C", date(2026, 1, 20), False, naive("2026-02-19")),
        ("E", date(2026, 1, 5), True, naive("2026-02-04")),
        ("F", date(2026, 1, 1), True, naive("2026-01-31")),
        ("F", date(2026, 2, 1), True, naive("2026-03-03")),
    ]


def test_window_must_be_positive(spark: Any) -> None:
    history = spark.createDataFrame(HISTORY, spark_schema(SUBSCRIPTION_HISTORY))
    with pytest.raises(ValueError):
        churn_labels(history, 0)


def test_job_from_dms_records_to_parquet(spark: Any, tmp_path: Path) -> None:
    # Given DMS records processed into the Avro snapshot log (with a replayed batch)
    pipeline = Pipeline()
    batch = [
        dms("insert", row("u1", True, renewal="2026-01-10"), ts="2025-12-10T08:00:00Z", txid=1),
        dms("update", row("u1", True, renewal="2026-02-10"), ts="2026-01-10T08:00:00Z", txid=2),
        dms("update", row("u1", False, renewal="2026-02-10"), ts="2026-01-20T08:00:00Z", txid=3),
    ]
    pipeline.run(batch, first_sequence=1000)
    pipeline.run(batch, first_sequence=1000)
    logs = [body for key, body in sorted(pipeline.sink.log.items()) if key.startswith("cdc/snapshots/")]
    # When the job runs on them (reading Avro with fastavro, as locally there is no spark-avro)
    counts = run(
        spark,
        snapshots=read_avro_files(spark, logs),
        history_path=str(tmp_path / "history"),
        labels_path=str(tmp_path / "labels"),
        window_days=30,
        as_of=ts("2026-06-01T00:00:00"),
    )
    # Then three versions and two labels land as Parquet
    assert counts == {"history_rows": 3, "label_rows": 2}
    labels = sorted((r.renewal_date, r.churned) for r in spark.read.parquet(str(tmp_path / "labels")).collect())
    assert labels == [(date(2026, 1, 10), False), (date(2026, 2, 10), True)]
    current = spark.read.parquet(str(tmp_path / "history")).filter("is_current").collect()
    assert [(r.user_id, r.is_active_subscribed) for r in current] == [("u1", False)]
