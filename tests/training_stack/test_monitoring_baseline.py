"""The baseline dataset step's script: the training set becomes exactly the requests the endpoint
receives (keys, JSON types, missing values), which is what Model Monitor's baseline must describe."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdas.inference_api.features import UserFeatures
from pipelines.monitoring_baseline import (
    DATASET_FILE,
    BaselineDatasetError,
    request_columns,
    write_dataset,
)
from platform_core.schema import Primitive
from platform_core.schemas.features import FEATURE_GROUPS
from platform_core.schemas.training import TRAINING_LABEL
from stacks.constructs.training_pipeline import REPO_ROOT

ARROW_TYPES = {
    Primitive.STRING: pa.string(),
    Primitive.INT: pa.int32(),
    Primitive.LONG: pa.int64(),
    Primitive.DOUBLE: pa.float64(),
    Primitive.BOOLEAN: pa.bool_(),
    Primitive.TIMESTAMP: pa.timestamp("ms", tz="UTC"),
    Primitive.DATE: pa.date32(),
}


def _training_set_schema() -> pa.Schema:
    """The training table of the contract: key, cutoff, label, then every group's features."""
    fields = [*TRAINING_LABEL.fields, *(group.feature(name) for group in FEATURE_GROUPS for name in group.value_names)]
    return pa.schema([pa.field(f.name, ARROW_TYPES[f.type]) for f in fields])  # type: ignore[index]


def _read_lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / DATASET_FILE).read_text(encoding="utf-8").splitlines()]


def _small_table() -> pa.Table:
    cutoff = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "user_id": ["u-1", "u-2", "u-3"],
            "cutoff_time": pa.array([cutoff] * 3, pa.timestamp("ms", tz="UTC")),
            "label": pa.array([0, 1, 0], pa.int32()),
            "sessions_7d": pa.array([3, None, 0], pa.int64()),
            "bounce_rate_7d": pa.array([0.25, float("nan"), None], pa.float64()),
            "plan": ["basic", None, "premium"],
            "is_active": [True, False, None],
            "last_seen": pa.array([cutoff, None, cutoff], pa.timestamp("ms", tz="UTC")),
        }
    )


def test_the_records_have_the_keys_of_the_inference_apis_requests():
    # Given the training set's columns by contract, and a request the inference API builds
    schema = _training_set_schema()
    values = {name: None for group in FEATURE_GROUPS for name in group.value_names}
    request = UserFeatures(user_id="u-1", values=values, as_of={}).model_input()
    # When the baseline dataset's columns are chosen
    columns = request_columns(schema)
    # Then they are the request's keys, user_id first, without the cutoff time and the label
    assert columns == list(request)
    assert columns[0] == "user_id" and "cutoff_time" not in columns and "label" not in columns


def test_values_keep_their_json_types_and_missing_values_become_null(tmp_path):
    # Given a training set written as Parquet part files (as the Glue job writes it), with gaps
    source = tmp_path / "training_set"
    source.mkdir()
    table = _small_table()
    pq.write_table(table.slice(0, 2), source / "part-00000.snappy.parquet")
    pq.write_table(table.slice(2), source / "part-00001.snappy.parquet")
    (source / "_SUCCESS").write_text("")
    # When the baseline dataset is written
    rows = write_dataset(source, tmp_path / "dataset")
    # Then there is one JSON object per row, keyed like a request
    records = _read_lines(tmp_path / "dataset")
    assert rows == len(records) == 3
    by_user = {r["user_id"]: r for r in records}
    assert list(by_user["u-1"]) == ["user_id", "sessions_7d", "bounce_rate_7d", "plan", "is_active", "last_seen"]
    # And integers stay integers next to a gap (the analyzer infers Integral, as for the requests)
    assert by_user["u-1"]["sessions_7d"] == 3 and isinstance(by_user["u-1"]["sessions_7d"], int)
    assert by_user["u-3"]["sessions_7d"] == 0 and isinstance(by_user["u-3"]["sessions_7d"], int)
    # And null and NaN are both null (never the non-JSON NaN), as the API sends an absent feature
    assert by_user["u-2"]["sessions_7d"] is None
    assert by_user["u-2"]["bounce_rate_7d"] is None and by_user["u-3"]["bounce_rate_7d"] is None
    assert by_user["u-2"]["plan"] is None and by_user["u-3"]["is_active"] is None
    # And times are ISO-8601 strings, booleans booleans
    assert by_user["u-1"]["last_seen"] == "2026-03-01T00:00:00+00:00"
    assert by_user["u-2"]["is_active"] is False


def test_a_training_set_without_parquet_files_is_refused_with_the_reason(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaselineDatasetError, match=r"no \.parquet file"):
        write_dataset(tmp_path / "empty", tmp_path / "dataset")


def test_a_training_set_without_the_key_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    pq.write_table(_small_table().drop_columns(["user_id"]), tmp_path / "in" / "part.parquet")
    with pytest.raises(BaselineDatasetError, match="user_id"):
        write_dataset(tmp_path / "in", tmp_path / "dataset")


def test_an_empty_training_set_gives_no_baseline(tmp_path):
    (tmp_path / "in").mkdir()
    pq.write_table(_small_table().slice(0, 0), tmp_path / "in" / "part.parquet")
    with pytest.raises(BaselineDatasetError, match="no row"):
        write_dataset(tmp_path / "in", tmp_path / "dataset")


def test_the_script_runs_as_a_file_as_the_processing_job_starts_it(tmp_path):
    # Given a training set, and the script run by path with the step's arguments
    (tmp_path / "in").mkdir()
    pq.write_table(_small_table(), tmp_path / "in" / "part.parquet")
    script = REPO_ROOT / "pipelines" / "monitoring_baseline.py"
    result = subprocess.run(
        [sys.executable, str(script), f"--input-dir={tmp_path / 'in'}", f"--output-dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    # Then it writes the dataset
    assert result.returncode == 0, result.stderr
    assert len(_read_lines(tmp_path / "out")) == 3


def test_the_script_loads_only_the_training_contract_from_the_ground_package():
    # The framework container runs Python 3.10: platform_core.schemas.features (3.11) must not load
    probe = (
        "import json, sys\n"
        "import pipelines.monitoring_baseline\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'platform_core')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=REPO_ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "platform_core",
        "platform_core.schema",
        "platform_core.schemas",
        "platform_core.schemas.training",
    ]
