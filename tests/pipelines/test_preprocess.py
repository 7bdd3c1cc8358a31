"""Preprocessing: a split by time with no overlap, and a transform fitted on the training split only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines import preprocess
from pipelines.feature_transform import FittedTransform
from pipelines.tables import TableError, read_table


def test_split_orders_the_periods_and_keeps_every_row_once(small_table: pd.DataFrame) -> None:
    # When the table is split by time
    split = preprocess.time_split(small_table, validation_fraction=0.2, test_fraction=0.2)
    # Then each period comes strictly after the previous one
    assert split.train["cutoff_time"].max() < split.validation_start <= split.validation["cutoff_time"].min()
    assert split.validation["cutoff_time"].max() < split.test_start <= split.test["cutoff_time"].min()
    # and every row is in exactly one split (no purge without a horizon)
    keys = [
        tuple(k)
        for part in (split.train, split.validation, split.test)
        for k in part[["user_id", "cutoff_time"]].values
    ]
    assert len(keys) == len(set(keys)) == len(small_table)
    assert split.purged_rows == 0
    assert len(split.test) == pytest.approx(0.2 * len(small_table), rel=0.15)


def test_rows_sharing_a_cutoff_time_stay_together(small_table: pd.DataFrame) -> None:
    split = preprocess.time_split(small_table)
    boundary = small_table[small_table["cutoff_time"] == split.test_start]
    assert len(boundary) > 1  # several users renew on the same day
    assert len(split.test[split.test["cutoff_time"] == split.test_start]) == len(boundary)


def test_label_horizon_purges_labels_known_only_after_the_next_split_starts(small_table: pd.DataFrame) -> None:
    split = preprocess.time_split(small_table, label_horizon_days=7)
    horizon = pd.Timedelta(days=7)
    assert split.train["cutoff_time"].max() + horizon < split.validation_start
    assert split.validation["cutoff_time"].max() + horizon < split.test_start
    assert split.purged_rows == len(small_table) - len(split.train) - len(split.validation) - len(split.test) > 0


def test_too_few_cutoff_times_cannot_be_split(small_table: pd.DataFrame) -> None:
    one_day = small_table.assign(cutoff_time=pd.Timestamp("2025-03-01", tz="UTC"))
    with pytest.raises(TableError, match="too few distinct cutoff times"):
        preprocess.time_split(one_day)
    with pytest.raises(ValueError, match="fractions"):
        preprocess.time_split(small_table, validation_fraction=0.6, test_fraction=0.5)


def test_script_writes_splits_transform_and_report(small_table: pd.DataFrame, tmp_path: Path) -> None:
    # Given the table as CSV and Parquet files in the processing input folder
    inputs = tmp_path / "input"
    inputs.mkdir()
    half = len(small_table) // 2
    small_table.iloc[:half].to_parquet(inputs / "part-0.parquet")
    small_table.iloc[half:].to_parquet(inputs / "part-1.parquet")
    out = {name: tmp_path / name for name in ("train", "validation", "test", "transform")}
    # When the processing script runs with SageMaker-style arguments
    preprocess.main(
        ["--input-dir", str(inputs)]
        + [arg for name, folder in out.items() for arg in (f"--{name}-dir", str(folder))]
        + ["--label-horizon-days", "7"]
    )
    # Then the splits, the transform and a report are where the next steps expect them
    train = read_table(out["train"])
    transform = FittedTransform.load(out["transform"] / "transform.json")
    report = json.loads((out["transform"] / "preprocess_report.json").read_text())
    assert report["rows"]["train"] == len(train)
    assert report["features"] == transform.input_columns
    sessions = next(f for f in transform.numeric if f.name == "sessions_30d")
    assert sessions.mean == pytest.approx(train["sessions_30d"].mean())  # fitted on train only
    assert sessions.mean != pytest.approx(small_table["sessions_30d"].mean())


def test_csv_tables_read_like_parquet_ones(small_table: pd.DataFrame, tmp_path: Path) -> None:
    small_table.to_csv(tmp_path / "table.csv", index=False)
    table = read_table(tmp_path)
    assert table["user_id"].map(type).eq(str).all()
    assert str(table["cutoff_time"].dt.tz) == "UTC"
    pd.testing.assert_series_equal(table["cutoff_time"], small_table["cutoff_time"], check_dtype=False)


def test_tables_breaking_the_contract_are_refused(small_table: pd.DataFrame, tmp_path: Path) -> None:
    small_table.drop(columns=["label"]).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(TableError, match="lacks column"):
        read_table(tmp_path)
    with pytest.raises(TableError, match=r"no \.parquet or \.csv"):
        read_table(tmp_path / "empty")


def test_athena_query_replaces_the_input_folder(
    small_table: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an Athena client that answers the query with the table (Athena runs no SQL locally)
    asked: dict[str, str] = {}

    def fake_athena(query: str, *, database: str, workgroup: str) -> pd.DataFrame:
        asked.update(query=query, database=database, workgroup=workgroup)
        return small_table

    monkeypatch.setattr(preprocess, "read_athena", fake_athena)
    folders = [
        arg for name in ("train", "validation", "test", "transform") for arg in (f"--{name}-dir", str(tmp_path / name))
    ]
    # When preprocessing is pointed at a query instead of files
    preprocess.main(["--athena-query", "SELECT * FROM features", "--athena-database", "lake", *folders])
    # Then the query's result is what gets split
    assert asked == {"query": "SELECT * FROM features", "database": "lake", "workgroup": "primary"}
    assert len(read_table(tmp_path / "train")) > 0
    with pytest.raises(SystemExit, match="--athena-database"):
        preprocess.main(["--athena-query", "SELECT 1", *folders])


def test_training_split_can_be_sharded_by_user(small_table: pd.DataFrame, tmp_path: Path) -> None:
    (tmp_path / "input").mkdir()
    small_table.to_parquet(tmp_path / "input" / "t.parquet")
    folders = [
        arg for name in ("train", "validation", "test", "transform") for arg in (f"--{name}-dir", str(tmp_path / name))
    ]
    preprocess.main(["--input-dir", str(tmp_path / "input"), "--train-shards", "3", *folders])
    shards = [pd.read_parquet(p) for p in sorted((tmp_path / "train").iterdir())]
    assert len(shards) == 3 and all(len(s) > 0 for s in shards)
    users = [set(s["user_id"]) for s in shards]
    assert not (users[0] & users[1]) and not (users[1] & users[2]) and not (users[0] & users[2])
    assert sum(len(s) for s in shards) == len(read_table(tmp_path / "train"))
