"""The feature-like training table and the oracle's truth, and the command-line writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from datagen.__main__ import main
from datagen.training_table import TRUTH_COLUMN
from datagen.world import SyntheticWorld


def test_table_has_the_training_contract(world: SyntheticWorld) -> None:
    table = world.training_table()
    assert list(table.columns[:3]) == ["user_id", "cutoff_time", "label"]
    assert table["user_id"].map(type).eq(str).all()
    assert isinstance(table["cutoff_time"].dtype, pd.DatetimeTZDtype)
    assert set(table["label"].unique()) == {0, 1}
    assert not table.duplicated(["user_id", "cutoff_time"]).any()
    features = table.drop(columns=["user_id", "cutoff_time", "label"])
    strings = [c for c in features if pd.api.types.is_string_dtype(features[c])]
    assert set(strings) == {"plan", "primary_device"}
    assert features["avg_rating_30d"].isna().any()  # missing values exist, for the transform to handle
    assert TRUTH_COLUMN not in table.columns  # the truth is never a feature


def test_labels_and_truth_line_up_row_for_row(world: SyntheticWorld) -> None:
    table, truth = world.training_table(), world.truth()
    joined = table.merge(truth, on=["user_id", "cutoff_time"], how="left", validate="one_to_one")
    assert joined[TRUTH_COLUMN].notna().all()
    assert (
        joined.loc[joined["label"] == 1, TRUTH_COLUMN].mean()
        > 2 * joined.loc[joined["label"] == 0, TRUTH_COLUMN].mean()
    )


def test_features_carry_the_signal_of_the_traits(big_world: SyntheticWorld) -> None:
    table = big_world.training_table().merge(big_world.truth(), on=["user_id", "cutoff_time"])
    risk = np.log(table[TRUTH_COLUMN] / (1 - table[TRUTH_COLUMN]))
    assert np.corrcoef(np.log(table["watch_minutes_30d"]), risk)[0, 1] < -0.4
    assert np.corrcoef(table["watch_time_trend"], risk)[0, 1] < -0.2
    assert np.corrcoef(table["support_views_30d"], risk)[0, 1] > 0.1
    # the device is a distractor: it carries no churn signal
    by_device = table.groupby("primary_device")["label"].mean()
    assert by_device.max() - by_device.min() < 0.04


def test_command_line_writes_a_world_and_its_manifest(tmp_path: Path, capsys: object) -> None:
    main(["--users", "60", "--seed", "2", "--out", str(tmp_path), "--duplicates", "4", "--bad", "4", "--cdc-bad", "3"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    lines = (tmp_path / "clickstream.ndjson").read_text().splitlines()
    assert len(lines) == manifest["clickstream"]["good"] + 4 + 4
    assert manifest["clickstream"]["bad_by_kind"] == {
        "not_json": 1,
        "missing_field": 1,
        "absurd_time": 1,
        "unknown_event_type": 1,
    }
    assert len((tmp_path / "cdc.jsonl").read_text().splitlines()) == manifest["cdc"]["lines"]
    table = pd.read_parquet(tmp_path / "training_table.parquet")
    assert len(table) == manifest["training_rows"] == len(pd.read_parquet(tmp_path / "truth.parquet"))
