"""The fitted feature transform: statistics from training data, identical results on tables and records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.feature_transform import FeatureError, FittedTransform, fit


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u-1", "u-2", "u-3", "u-4"],
            "cutoff_time": pd.to_datetime(["2025-01-01"] * 4, utc=True),
            "label": [0, 1, 0, 0],
            "sessions": [1.0, 3.0, np.nan, 8.0],
            "flag": [True, False, True, True],
            "constant": [5, 5, 5, 5],
            "plan": ["basic", "premium", "basic", None],
        }
    )


def test_fit_learns_statistics_from_the_feature_columns_only(frame: pd.DataFrame) -> None:
    transform = fit(frame)
    assert transform.input_columns == ["sessions", "flag", "constant", "plan"]  # keys and label excluded
    sessions = transform.numeric[0]
    assert sessions.mean == pytest.approx(4.0)  # of 1, 3, 8
    assert sessions.std == pytest.approx(np.std([1.0, 3.0, 8.0]))
    assert sessions.fill == 3.0  # the median
    assert sessions.missing_indicator is True
    assert transform.numeric[1].mean == pytest.approx(0.75)  # booleans are 0/1 numbers
    assert transform.numeric[2].std == 1.0  # a constant column is not divided by zero
    assert transform.categorical[0].categories == ("basic", "premium")  # most frequent first
    assert transform.feature_names == [
        "sessions",
        "sessions__missing",
        "flag",
        "constant",
        "plan=basic",
        "plan=premium",
        "plan=__other__",
    ]


def test_table_is_standardised_filled_and_one_hot_encoded(frame: pd.DataFrame) -> None:
    matrix = fit(frame).apply(frame)
    std = np.std([1.0, 3.0, 8.0])
    np.testing.assert_allclose(matrix[:, 0], [(1 - 4) / std, (3 - 4) / std, (3 - 4) / std, (8 - 4) / std], rtol=1e-6)
    np.testing.assert_array_equal(matrix[:, 1], [0, 0, 1, 0])  # the filled row is flagged
    np.testing.assert_array_equal(matrix[:, 3], [0, 0, 0, 0])
    np.testing.assert_array_equal(matrix[:, 4:], [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])  # missing: zeros
    assert matrix.dtype == np.float32


def test_records_give_exactly_the_table_result(small_table: pd.DataFrame) -> None:
    # Given a transform fitted on a realistic table
    transform = fit(small_table)
    rows = small_table.head(200)
    # When the same rows go through the inference path, as JSON would bring them
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items() if k != "cutoff_time"}
        for r in rows.to_dict(orient="records")
    ]
    # Then both paths give the same matrix
    np.testing.assert_array_equal(transform.apply(records), transform.apply(rows))
    np.testing.assert_array_equal(transform.apply(records[0]), transform.apply(rows.head(1)))


def test_unseen_categories_and_missing_features_are_handled(frame: pd.DataFrame) -> None:
    transform = fit(frame)
    matrix = transform.apply({"sessions": None, "plan": "family", "flag": False})
    std = np.std([1.0, 3.0, 8.0])
    expected = [(3 - 4) / std, 1.0, (0 - 0.75) / np.std([1, 0, 1, 1]), 0.0, 0.0, 0.0, 1.0]
    np.testing.assert_allclose(matrix[0], np.array(expected, dtype=float), rtol=1e-6)


def test_ordinal_encoding_uses_category_positions(frame: pd.DataFrame) -> None:
    transform = fit(frame, encoding="ordinal")
    assert transform.feature_names[-1] == "plan"
    matrix = transform.apply(pd.DataFrame({"plan": ["premium", "basic", "family", None]}))
    np.testing.assert_array_equal(matrix[:, -1], [1, 0, 2, -1])
    np.testing.assert_array_equal(transform.apply({"plan": "family"})[:, -1], [2])


def test_json_round_trip_keeps_the_transform(frame: pd.DataFrame) -> None:
    transform = fit(frame, max_categories=1)
    again = FittedTransform.from_json(transform.to_json())
    assert again == transform
    assert again.categorical[0].categories == ("basic",)
    np.testing.assert_array_equal(again.apply(frame), transform.apply(frame))


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"sessions": "three"}, "'sessions' must be a number, got str"),
        ({"plan": 7}, "'plan' must be a string, got int"),
        ({"unrelated": 1}, "none of the model's features"),
    ],
)
def test_bad_records_are_refused_with_a_reason(frame: pd.DataFrame, record: dict, reason: str) -> None:
    with pytest.raises(FeatureError, match=reason):
        fit(frame).apply(record)


def test_tables_of_the_wrong_kind_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="'sessions' must be numeric"):
        fit(frame).apply(frame.assign(sessions=["a", "b", "c", "d"]))
    with pytest.raises(FeatureError, match="timestamp"):
        fit(frame.assign(signup=pd.to_datetime(["2024-01-01"] * 4)))
    with pytest.raises(FeatureError, match="mixes strings"):
        fit(frame.assign(plan=["basic", 3, "basic", "premium"]))
