"""subscription_features and the point-in-time training_set against hand-computed results."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from glue_jobs.transforms.subscription_features import subscription_features
from glue_jobs.transforms.training_set import training_labels, training_set
from platform_core.schemas.features import USER_SUBSCRIPTION
from platform_core.schemas.training import TRAINING_LABEL
from tests.features.conftest import HISTORY_DDL, LABELS_DDL, history_row

pytestmark = pytest.mark.spark

AS_OF = datetime(2024, 3, 10, tzinfo=UTC)


def _d(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def subscription(spark: Any) -> dict[str, dict[str, Any]]:
    rows = [
        # s1: subscribed, cancelled, came back on premium, price rise; cancels again after as_of
        history_row("s1", _d(2023, 1, 1), _d(2023, 6, 1), active=True, renewal_date=date(2023, 2, 1)),
        history_row("s1", _d(2023, 6, 1), _d(2023, 8, 1), active=False, renewal_date=date(2023, 2, 1)),
        history_row(
            "s1",
            _d(2023, 8, 1),
            _d(2024, 2, 1),
            active=True,
            plan="premium",
            price=15.99,
            renewal_date=date(2024, 2, 1),
        ),
        history_row(
            "s1",
            _d(2024, 2, 1),
            _d(2024, 4, 1),
            active=True,
            plan="premium",
            price=17.99,
            renewal_date=date(2024, 5, 1),
        ),
        history_row("s1", _d(2024, 4, 1), None, active=False, plan="premium", price=17.99),
        # s2: subscribed on Jan 1st, cancelled on Feb 15th
        history_row("s2", _d(2024, 1, 1), _d(2024, 2, 15), active=True, renewal_date=date(2024, 2, 15)),
        history_row("s2", _d(2024, 2, 15), None, active=False, renewal_date=date(2024, 2, 15)),
        # s3: appears only after as_of; s4: deleted before as_of; s5: never subscribed
        history_row("s3", _d(2024, 4, 1), None, active=True),
        history_row("s4", _d(2024, 1, 1), _d(2024, 2, 1), active=True),
        history_row("s5", _d(2024, 3, 1), None, active=False, renewal_date=date(2024, 3, 1)),
    ]
    df = subscription_features(spark.createDataFrame(rows, HISTORY_DDL), AS_OF)
    assert df.columns == list(USER_SUBSCRIPTION.feature_names)
    return {r.user_id: r.asDict() for r in df.collect()}


def test_only_users_with_a_state_at_as_of_get_a_row(subscription: dict[str, dict[str, Any]]) -> None:
    assert sorted(subscription) == ["s1", "s2", "s5"]


def test_state_and_history_of_a_returning_subscriber(subscription: dict[str, dict[str, Any]]) -> None:
    s1 = subscription["s1"]
    # The version valid at as_of, not the one flagged current today (which is a cancellation)
    assert (s1["is_active"], s1["plan"], s1["price"]) == (1, "premium", 17.99)
    assert (s1["renewal_month"], s1["days_until_renewal"]) == (5, 52)
    assert s1["tenure_days"] == 434.0  # 2023-01-01 .. 2024-03-10
    assert s1["cancellations"] == 1  # the cancellation of 2024-04-01 is in the future
    assert s1["days_since_last_transition"] == 222.0  # reactivation of 2023-08-01; a price change is none


def test_state_of_a_cancelled_and_a_never_active_user(subscription: dict[str, dict[str, Any]]) -> None:
    s2 = subscription["s2"]
    assert (s2["is_active"], s2["cancellations"], s2["renewal_month"]) == (0, 1, 2)
    assert (s2["tenure_days"], s2["days_since_last_transition"], s2["days_until_renewal"]) == (
        69.0,
        24.0,
        -24,
    )
    s5 = subscription["s5"]
    assert (s5["is_active"], s5["tenure_days"], s5["cancellations"]) == (0, None, 0)
    assert s5["days_since_last_transition"] == 9.0


SNAPSHOTS_DDL = "user_id string, event_time timestamp, sessions_7d bigint"


def _labels(spark: Any, rows: list[tuple[Any, ...]], lead: timedelta = timedelta(0)) -> Any:
    """Churn labels (user, renewal date, churned, label time) as the training set job reads them,
    turned into training labels (user_id, cutoff_time, label) by the job's own function."""
    return training_labels(spark.createDataFrame(rows, LABELS_DDL), lead=lead)


def test_churn_labels_become_training_labels_cut_off_the_lead_before_00_utc_of_the_renewal_date(
    spark: Any,
) -> None:
    from pyspark.sql import functions as F  # noqa: N812

    # Given churn labels, and a session time zone far from UTC (a Glue job's could be anything)
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        labels = _labels(
            spark,
            [("u1", date(2024, 3, 10), True, _d(2024, 4, 9)), ("u2", date(2024, 3, 11), False, _d(2024, 4, 10))],
            lead=timedelta(days=7),
        )
        # When they become training labels
        rows = labels.select("*", F.unix_micros("cutoff_time").alias("micros")).orderBy("user_id").collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    # Then they have exactly the training label's columns, and the cutoff is 00:00 UTC whatever the zone
    assert labels.columns == list(TRAINING_LABEL.field_names)
    assert [(r.user_id, r.micros, r.label) for r in rows] == [
        ("u1", int(_d(2024, 3, 3).timestamp()) * 1_000_000, 1),
        ("u2", int(_d(2024, 3, 4).timestamp()) * 1_000_000, 0),
    ]
    assert dict(labels.dtypes) == {"user_id": "string", "cutoff_time": "timestamp", "label": "int"}


def test_a_cancellation_in_the_lead_days_never_reaches_its_label(spark: Any) -> None:
    # Given a subscriber who cancels on Mar 7th, three days before the Mar 10th renewal, with a
    # snapshot before (active) and one after the cancellation (inactive)
    snapshots = spark.createDataFrame(
        [("u1", _d(2024, 3, 2), 1), ("u1", _d(2024, 3, 8), 0)], "user_id string, event_time timestamp, is_active int"
    )
    labels = _labels(spark, [("u1", date(2024, 3, 10), True, _d(2024, 4, 9))], lead=timedelta(days=7))
    # When the label is joined with a week's lead
    row = training_set(labels, snapshots).collect()[0]
    # Then it sees the subscriber as they were at the cutoff (Mar 3rd): active, the outcome unknown
    assert (row.label, row.is_active) == (1, 1)


def test_a_negative_lead_is_refused(spark: Any) -> None:
    with pytest.raises(ValueError, match="lead"):
        _labels(spark, [("u1", date(2024, 3, 10), True, _d(2024, 4, 9))], lead=timedelta(days=-1))


def test_each_label_takes_the_latest_snapshot_at_or_before_its_cutoff(spark: Any) -> None:
    # Given snapshots of u1 on Mar 1st, at Mar 10th 00:00, at Mar 10th 12:00 and on Mar 20th
    snapshots = spark.createDataFrame(
        [
            ("u1", _d(2024, 3, 1), 1),
            ("u1", _d(2024, 3, 10), 10),
            ("u1", _d(2024, 3, 10) + timedelta(hours=12), 1012),
            ("u1", _d(2024, 3, 20), 20),
            ("u2", _d(2024, 3, 1), 201),
        ],
        SNAPSHOTS_DDL,
    )
    label_time = _d(2024, 4, 1)
    labels = _labels(
        spark,
        [
            ("u1", date(2024, 3, 10), True, label_time),  # the cutoff instant itself is allowed
            ("u1", date(2024, 3, 5), False, label_time),
            ("u1", date(2024, 2, 1), False, label_time),  # before every snapshot
            ("u3", date(2024, 3, 10), True, label_time),  # no snapshots at all
        ],
    )
    # When
    out = training_set(labels, snapshots)
    # Then every label is kept with the columns in order, and the right snapshot
    assert out.columns == ["user_id", "cutoff_time", "label", "feature_event_time", "sessions_7d"]
    got = {(r.user_id, r.cutoff_time): (r.label, r.feature_event_time, r.sessions_7d) for r in out.collect()}
    assert got == {
        ("u1", _naive_utc(_d(2024, 3, 10))): (1, _naive_utc(_d(2024, 3, 10)), 10),
        ("u1", _naive_utc(_d(2024, 3, 5))): (0, _naive_utc(_d(2024, 3, 1)), 1),
        ("u1", _naive_utc(_d(2024, 2, 1))): (0, None, None),
        ("u3", _naive_utc(_d(2024, 3, 10))): (1, None, None),
    }


def test_stale_snapshots_count_as_missing_when_asked(spark: Any) -> None:
    snapshots = spark.createDataFrame([("u1", _d(2024, 3, 1), 1)], SNAPSHOTS_DDL)
    labels = _labels(spark, [("u1", date(2024, 3, 9), False, _d(2024, 4, 1))])
    assert training_set(labels, snapshots).first().sessions_7d == 1  # type: ignore[union-attr]
    stale = training_set(labels, snapshots, max_staleness=timedelta(days=2)).first()
    assert stale is not None
    assert (stale.feature_event_time, stale.sessions_7d) == (None, None)


def test_clashing_columns_are_refused(spark: Any) -> None:
    snapshots = spark.createDataFrame([("u1", _d(2024, 3, 1), 1)], "user_id string, event_time timestamp, label int")
    with pytest.raises(ValueError, match="clash"):
        training_set(_labels(spark, []), snapshots)


def test_no_feature_computed_after_a_cutoff_ever_enters_that_labels_row(spark: Any) -> None:
    # Given 40 users with random snapshot times (some on the cutoff instant, many after it) and
    # random labels; a snapshot's value encodes its own time, so a leak would be visible
    rng = random.Random(7)
    base = _d(2024, 1, 1)
    snapshot_rows, label_rows = [], []
    for u in range(40):
        user = f"u{u}"
        for _ in range(rng.randint(0, 12)):
            t = base + timedelta(days=rng.randint(0, 60), hours=rng.choice([0, 0, 6, 23]))
            snapshot_rows.append((user, t, int(t.timestamp())))
        for _ in range(rng.randint(1, 3)):
            label_rows.append((user, (base + timedelta(days=rng.randint(0, 70))).date(), rng.random() < 0.3, base))
    snapshots = spark.createDataFrame(snapshot_rows, SNAPSHOTS_DDL)
    # When
    rows = training_set(_labels(spark, label_rows), snapshots).collect()
    # Then every label is there once, with exactly the latest snapshot at or before its cutoff
    assert len(rows) == len(label_rows)
    for r in rows:
        cutoff = r.cutoff_time.replace(tzinfo=UTC)
        assert cutoff.time() == datetime.min.time()  # 00:00 UTC of a renewal date
        eligible = [s for s in snapshot_rows if s[0] == r.user_id and s[1] <= cutoff]
        expected = max((s[2] for s in eligible), default=None)
        assert r.sessions_7d == expected
        if r.sessions_7d is not None:
            assert r.sessions_7d <= cutoff.timestamp()  # the value itself proves it is not from the future
            assert r.feature_event_time.replace(tzinfo=UTC) <= cutoff
