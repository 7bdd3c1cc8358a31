"""Feature transforms fitted on training data and applied, identically, at serving time.

Fitting learns, from the training split only: for each numeric column its mean and standard
deviation (standardisation) and its median (the value that replaces a missing one), plus whether
a missing-value indicator column is needed; for each categorical (string) column its known
categories. The result is a small JSON artifact that travels with the model, so the inference
container turns a JSON record into exactly the matrix the model was trained on.

Two ways to apply it, with identical results (a test holds them to that):
- :meth:`FittedTransform.apply` on a DataFrame (training, batch scoring), vectorised;
- :meth:`FittedTransform.apply` on a record or a list of records (the inference path), plain
  Python, no DataFrame, because building one costs more than the prediction itself.

Month extraction and other row-level derivations happen upstream (the feature jobs); by the time
a table reaches here every feature column is a number, a boolean or a string.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from platform_core.schemas.training import NON_FEATURE_COLUMNS

# Columns of the training table that are never features (the key, the cutoff and the label).
RESERVED_COLUMNS: tuple[str, ...] = NON_FEATURE_COLUMNS
FORMAT_VERSION = 1
OTHER_CATEGORY = "__other__"
MISSING_SUFFIX = "__missing"
Encoding = Literal["one_hot", "ordinal"]


class FeatureError(ValueError):
    """Features that cannot be transformed: the reason says which column and why."""


@dataclass(frozen=True)
class NumericFeature:
    name: str
    mean: float
    std: float
    fill: float  # replaces a missing value (the training median)
    missing_indicator: bool  # training data had missing values: add a 0/1 "is missing" column


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    # Known categories, most frequent first. Anything else (rare in training, or unseen) is
    # "other"; a missing value encodes as all zeros (one-hot) or -1 (ordinal).
    categories: tuple[str, ...]


@dataclass(frozen=True)
class FittedTransform:
    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    encoding: Encoding = "one_hot"

    # -- description ---------------------------------------------------------------------------
    @property
    def input_columns(self) -> list[str]:
        return [f.name for f in self.numeric] + [f.name for f in self.categorical]

    @property
    def feature_names(self) -> list[str]:
        """Names of the output matrix's columns, in order."""
        names: list[str] = []
        for f in self.numeric:
            names.append(f.name)
            if f.missing_indicator:
                names.append(f"{f.name}{MISSING_SUFFIX}")
        for c in self.categorical:
            if self.encoding == "ordinal":
                names.append(c.name)
            else:
                names.extend(f"{c.name}={value}" for value in (*c.categories, OTHER_CATEGORY))
        return names

    # -- application ---------------------------------------------------------------------------
    def apply(self, data: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The float32 feature matrix (one row per record) for a table, a record or records."""
        if isinstance(data, pd.DataFrame):
            return self._apply_frame(data)
        if isinstance(data, Mapping):
            return self._apply_records([data])
        return self._apply_records(data)

    def _apply_frame(self, df: pd.DataFrame) -> np.ndarray:
        columns: list[np.ndarray] = []
        n = len(df)
        for f in self.numeric:
            values = _numeric_column(df[f.name]) if f.name in df.columns else np.full(n, np.nan)
            missing = ~np.isfinite(values)
            columns.append((np.where(missing, f.fill, values) - f.mean) / f.std)
            if f.missing_indicator:
                columns.append(missing.astype(float))
        for c in self.categorical:
            raw = df[c.name] if c.name in df.columns else pd.Series([None] * n, index=df.index, dtype=object)
            columns.extend(self._encode_column(c, raw))
        if not columns:
            return np.zeros((n, 0), dtype=np.float32)
        return np.column_stack(columns).astype(np.float32)

    def _encode_column(self, c: CategoricalFeature, raw: pd.Series) -> list[np.ndarray]:
        missing = raw.isna().to_numpy()
        bad = [v for v in raw[~missing].head(1000) if not isinstance(v, str)]
        if bad:
            raise FeatureError(f"feature {c.name!r} must be a string, got {type(bad[0]).__name__}")
        codes = pd.Categorical(raw, categories=list(c.categories)).codes.astype(float)
        known = codes >= 0
        if self.encoding == "ordinal":
            return [np.where(missing, -1.0, np.where(known, codes, float(len(c.categories))))]
        out = [(codes == k).astype(float) for k in range(len(c.categories))]
        out.append((~known & ~missing).astype(float))
        return out

    def _apply_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        width = len(self.feature_names)
        matrix = np.zeros((len(records), width), dtype=np.float32)
        for r, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise FeatureError(f"record {r} must be a JSON object, got {type(record).__name__}")
            matrix[r] = self._encode_record(record, r)
        return matrix

    def _encode_record(self, record: Mapping[str, Any], r: int) -> list[float]:
        if self.input_columns and not any(name in record for name in self.input_columns):
            raise FeatureError(f"record {r} has none of the model's features ({', '.join(self.input_columns)})")
        row: list[float] = []
        for f in self.numeric:
            value = _number(record.get(f.name), f.name, r)
            missing = value is None
            row.append(((f.fill if value is None else value) - f.mean) / f.std)
            if f.missing_indicator:
                row.append(1.0 if missing else 0.0)
        for c in self.categorical:
            value = record.get(c.name)
            if value is not None and not isinstance(value, str):
                raise FeatureError(f"record {r}: feature {c.name!r} must be a string, got {type(value).__name__}")
            position = c.categories.index(value) if value in c.categories else -1
            if self.encoding == "ordinal":
                row.append(-1.0 if value is None else float(position if position >= 0 else len(c.categories)))
                continue
            onehot = [0.0] * (len(c.categories) + 1)
            if value is not None:
                onehot[position] = 1.0  # position -1 is the "other" slot, last
            row.extend(onehot)
        return row

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "encoding": self.encoding,
                "numeric": [asdict(f) for f in self.numeric],
                "categorical": [{"name": c.name, "categories": list(c.categories)} for c in self.categorical],
                "feature_names": self.feature_names,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> FittedTransform:
        spec = json.loads(text)
        if spec.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported transform format {spec.get('format_version')!r}; expected {FORMAT_VERSION}")
        return cls(
            numeric=tuple(NumericFeature(**f) for f in spec["numeric"]),
            categorical=tuple(CategoricalFeature(c["name"], tuple(c["categories"])) for c in spec["categorical"]),
            encoding=spec["encoding"],
        )

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FittedTransform:
        return cls.from_json(path.read_text(encoding="utf-8"))


def feature_columns(df: pd.DataFrame, exclude: Sequence[str] = RESERVED_COLUMNS) -> list[str]:
    """Every column except the keys and the label is a feature."""
    return [c for c in df.columns if c not in exclude]


def fit(
    df: pd.DataFrame,
    *,
    encoding: Encoding = "one_hot",
    max_categories: int = 50,
    exclude: Sequence[str] = RESERVED_COLUMNS,
) -> FittedTransform:
    """Learn the transform from the training split (never from validation or test data)."""
    if encoding not in ("one_hot", "ordinal"):
        raise ValueError(f"encoding must be one_hot or ordinal, got {encoding!r}")
    numeric: list[NumericFeature] = []
    categorical: list[CategoricalFeature] = []
    for name in feature_columns(df, exclude):
        column = df[name]
        if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            numeric.append(_fit_numeric(name, _numeric_column(column)))
        elif pd.api.types.is_datetime64_any_dtype(column):
            raise FeatureError(f"feature {name!r} is a timestamp: derive numbers from it upstream (e.g. the month)")
        else:
            categorical.append(_fit_categorical(name, column, max_categories))
    return FittedTransform(numeric=tuple(numeric), categorical=tuple(categorical), encoding=encoding)


def _fit_numeric(name: str, values: np.ndarray) -> NumericFeature:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return NumericFeature(name, mean=0.0, std=1.0, fill=0.0, missing_indicator=True)
    mean = float(finite.mean())
    std = float(finite.std())
    return NumericFeature(
        name,
        mean=mean,
        std=std if std > 0 else 1.0,  # a constant column stays constant (zero) instead of dividing by 0
        fill=float(np.median(finite)),
        missing_indicator=bool(finite.size < values.size),
    )


def _fit_categorical(name: str, column: pd.Series, max_categories: int) -> CategoricalFeature:
    present = column.dropna()
    bad = [v for v in present.head(1000) if not isinstance(v, str)]
    if bad:
        raise FeatureError(f"feature {name!r} mixes strings with {type(bad[0]).__name__}: make it one type upstream")
    counts = present.value_counts()
    # Most frequent first; ties broken by name so that refitting the same data gives the same file.
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return CategoricalFeature(name, tuple(str(k) for k, _ in ordered[:max_categories]))


def _numeric_column(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        return column.astype(float).to_numpy()
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(float).to_numpy()
    if column.isna().all():
        return np.full(len(column), np.nan)
    try:
        return pd.to_numeric(column, errors="raise").astype(float).to_numpy()
    except (TypeError, ValueError):
        raise FeatureError(f"feature {column.name!r} must be numeric, got {column.dtype}") from None


def _number(value: Any, name: str, r: int) -> float | None:
    """A record's numeric value as a float, or None when missing (null, absent, NaN, inf)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    raise FeatureError(f"record {r}: feature {name!r} must be a number, got {type(value).__name__}")
