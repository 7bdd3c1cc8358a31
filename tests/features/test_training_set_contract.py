"""One contract from the Glue training-set job to the training pipeline: the job's real output,
written as Parquet, goes straight into the pipeline's reader and its preprocess script.

No column is renamed on the way. If the job wrote other names (``renewal_date``/``churned`` once
did) or a column the scripts cannot take as a feature, this fails here instead of in AWS.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from glue_jobs import training_set
from glue_jobs.clickstream_features import spark_ddl
from pipelines import preprocess
from pipelines.feature_transform import FittedTransform
from pipelines.tables import KEY, LABEL, TIME, read_table
from platform_core.config import FeaturesConfig
from platform_core.schema import Field, Primitive
from platform_core.schemas.cdc import CHURN_LABEL
from platform_core.schemas.features import (
    RECORD_IDENTIFIER,
    SNAPSHOT_PARTITION,
    USER_CLICKSTREAM,
    USER_SUBSCRIPTION,
    FeatureGroup,
)
from platform_core.schemas.training import NON_FEATURE_COLUMNS, TRAINING_LABEL

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FIRST_RENEWAL = date(2024, 3, 1)
DAYS = 12
USERS = 6
# The prediction lead: each label's cutoff is this long before its renewal date's 00:00 UTC.
LEAD_DAYS = 2
GROUPS = (USER_CLICKSTREAM, USER_SUBSCRIPTION)


def _value(f: Field, user: int, day: int) -> Any:
    """A plausible feature value that differs by user and day (some left null, as in real snapshots)."""
    if (user + day) % 7 == 0 and f.name not in ("is_active", "plan"):
        return None
    if f.type is Primitive.STRING:
        return ("basic", "premium", "family")[user % 3]
    if f.type in (Primitive.INT, Primitive.LONG):
        return (user * 3 + day) % 11
    return round(0.1 * user + 0.01 * day, 4)


def _snapshots(spark: Any, group: FeatureGroup, folder: Path) -> None:
    """Per user, a snapshot as of noon every day (so the one of a cutoff's own day comes after
    it), from before the first cutoff on, with the feature jobs' partition column."""
    rows = []
    for day in range(-LEAD_DAYS, DAYS + 1):
        as_of = datetime.combine(FIRST_RENEWAL + timedelta(days=day - 1), datetime.min.time(), UTC) + timedelta(
            hours=12
        )
        for user in range(USERS):
            values = {RECORD_IDENTIFIER: f"u{user}", group.event_time: as_of}
            values.update({name: _value(group.feature(name), user, day) for name in group.value_names})
            rows.append((*[values[name] for name in group.feature_names], as_of.date().isoformat()))
    ddl = f"{spark_ddl(group.features)}, `{SNAPSHOT_PARTITION}` string"
    # One file: the job reads the folder whatever its layout, and tiny files only cost test time.
    spark.createDataFrame(rows, ddl).coalesce(1).write.parquet(str(folder))


def _churn_labels(spark: Any, folder: Path) -> dict[tuple[str, pd.Timestamp], int]:
    """A label per user and renewal date, churn alternating so that every period has both classes."""
    rows, expected = [], {}
    for day in range(DAYS):
        renewal = FIRST_RENEWAL + timedelta(days=day)
        for user in range(USERS):
            churned = (user + day) % 2 == 0
            label_time = datetime.combine(renewal + timedelta(days=30), datetime.min.time(), UTC)
            rows.append((f"u{user}", renewal, churned, label_time))
            expected[(f"u{user}", pd.Timestamp(renewal, tz="UTC") - pd.Timedelta(days=LEAD_DAYS))] = int(churned)
    spark.createDataFrame(rows, spark_ddl(CHURN_LABEL.fields)).coalesce(1).write.parquet(str(folder))
    return expected


@pytest.fixture(scope="module")
def written(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, pd.Timestamp], int]]:
    """The training set job's real run on churn labels and both groups' snapshots, as Parquet."""
    root = tmp_path_factory.mktemp("contract")
    expected = _churn_labels(spark, root / "churn_labels")
    for group in GROUPS:
        _snapshots(spark, group, root / group.name)
    counts = training_set.run(
        spark,
        labels_path=str(root / "churn_labels"),
        clickstream_path=str(root / USER_CLICKSTREAM.name),
        subscription_path=str(root / USER_SUBSCRIPTION.name),
        output_path=str(root / "training_set"),
        lead=timedelta(days=LEAD_DAYS),
        max_age=timedelta(days=FeaturesConfig().max_feature_age_days),
    )
    assert counts == {"training_rows": DAYS * USERS}
    return root / "training_set", expected


def test_the_pipelines_reader_takes_the_jobs_output_as_it_is(written) -> None:
    folder, expected = written
    # When the pipeline's reader reads the folder the job wrote
    table = read_table(folder)
    # Then the columns are the contract's, then every feature, and nothing else
    features = [name for group in GROUPS for name in group.value_names]
    assert list(table.columns) == [*TRAINING_LABEL.field_names, *features]
    assert (KEY, TIME, LABEL) == TRAINING_LABEL.field_names == NON_FEATURE_COLUMNS
    # And each row is its churn label: the cutoff is the lead before 00:00 UTC of the renewal date
    assert str(table[TIME].dt.tz) == "UTC"
    got = {(user, cutoff): label for user, cutoff, label in table[[KEY, TIME, LABEL]].itertuples(index=False)}
    assert got == expected
    # And the features are those of the latest snapshot before the cutoff (noon the day before it),
    # never one of the lead's days: the renewal on day 3 has its cutoff on day 1, the snapshot of day 0
    cutoff = pd.Timestamp(FIRST_RENEWAL + timedelta(days=3 - LEAD_DAYS), tz="UTC")
    row = table[(table[KEY] == "u1") & (table[TIME] == cutoff)]
    assert row["plan"].tolist() == ["premium"]
    assert row["sessions_7d"].tolist() == [(1 * 3 + 3 - LEAD_DAYS) % 11]


def test_preprocess_splits_the_jobs_output_by_time_and_fits_every_feature(written, tmp_path: Path) -> None:
    folder, _ = written
    out = {name: tmp_path / name for name in ("train", "validation", "test", "transform")}
    # When the preprocess script runs on the job's folder, as the pipeline's first step does
    preprocess.main(
        [f"--input-dir={folder}", *(f"--{name}-dir={path}" for name, path in out.items()), "--train-shards=2"]
    )
    # Then every labelled row lands in exactly one split, the later cutoffs held out
    report = json.loads((out["transform"] / preprocess.REPORT_FILE).read_text())
    assert sum(report["rows"].values()) == DAYS * USERS
    train, test = read_table(out["train"]), read_table(out["test"])
    assert train[TIME].max() < test[TIME].min()
    # And the transform takes every feature column of both groups, and none of the key, cutoff or label
    transform = FittedTransform.load(out["transform"] / preprocess.TRANSFORM_FILE)
    assert sorted(transform.input_columns) == sorted(name for group in GROUPS for name in group.value_names)
    assert transform.apply(test).shape == (len(test), len(transform.feature_names))
