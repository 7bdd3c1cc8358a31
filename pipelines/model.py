"""The churn model as one unit: the booster, its feature transform and its metadata.

Saved as three files in the model folder (``SM_MODEL_DIR``, packed by SageMaker into
``model.tar.gz``), and loaded the same way by evaluation, the inference container and tests:

- ``xgboost-model.json``  the booster (XGBoost's JSON format, portable across versions)
- ``transform.json``      the fitted feature transform (:mod:`pipelines.feature_transform`)
- ``metadata.json``       version, score offset, feature names, hyperparameters

Scores are churn probabilities. Training weighs the churners up by ``scale_pos_weight = w``,
which multiplies the odds the booster learns by ``w``; the model undoes that with a fixed offset
of ``-log(w)`` on the margin, so the served score is a calibrated probability again (what the
expected-value threshold and the Brier score need).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from pipelines.feature_transform import FittedTransform

BOOSTER_FILE = "xgboost-model.json"
TRANSFORM_FILE = "transform.json"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class ChurnModel:
    booster: xgb.Booster
    transform: FittedTransform
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def score_offset(self) -> float:
        return float(self.metadata.get("score_offset", 0.0))

    def predict(self, data: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Churn probabilities, one per row or record."""
        return self.predict_matrix(self.transform.apply(data))

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[0] == 0:
            return np.zeros(0)
        # Column order is the transform's by construction (checked once at load), so the
        # per-call feature-name validation, a third of a single-row prediction, is skipped.
        margin = self.booster.inplace_predict(matrix, predict_type="margin", validate_features=False)
        return 1.0 / (1.0 + np.exp(-(np.asarray(margin, dtype=float) + self.score_offset)))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(folder / BOOSTER_FILE)
        self.transform.save(folder / TRANSFORM_FILE)
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, *, nthread: int | None = None) -> ChurnModel:
        booster = xgb.Booster(model_file=str(folder / BOOSTER_FILE))
        if nthread is not None:
            booster.set_param({"nthread": nthread})
        transform = FittedTransform.load(folder / TRANSFORM_FILE)
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        if booster.feature_names is not None and list(booster.feature_names) != transform.feature_names:
            raise ValueError(f"the booster in {folder} was trained on other features than its transform produces")
        return cls(booster=booster, transform=transform, metadata=metadata)


def model_version(booster: xgb.Booster, transform: FittedTransform) -> str:
    """A content hash: the same model and transform always get the same version."""
    digest = hashlib.sha256(bytes(booster.save_raw(raw_format="json")))
    digest.update(transform.to_json().encode())
    return digest.hexdigest()[:16]


def build(
    booster: xgb.Booster, transform: FittedTransform, *, scale_pos_weight: float, extra: Mapping[str, Any]
) -> ChurnModel:
    """Wrap a trained booster; the offset undoes the class weighting (see the module docstring)."""
    metadata = {
        **extra,
        "model_version": model_version(booster, transform),
        "scale_pos_weight": scale_pos_weight,
        "score_offset": -math.log(scale_pos_weight) if scale_pos_weight > 0 else 0.0,
        "feature_names": transform.feature_names,
        "input_columns": transform.input_columns,
        "xgboost_version": xgb.__version__,
    }
    return ChurnModel(booster=booster, transform=transform, metadata=metadata)
