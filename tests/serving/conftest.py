"""Shared fixtures of the serving tests: AWS-shaped events and a small real churn model."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from platform_core.schema import Primitive
from platform_core.schemas.features import FEATURE_GROUPS

EVENTS = Path(__file__).parent / "events"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def load_event(name: str, **detail: Any) -> dict[str, Any]:
    """An event fixture exactly as AWS sends it, with some ``detail`` fields replaced."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event = copy.deepcopy(event)
    event.setdefault("detail", {}).update(detail)
    return event


def package_event(group: str, version: int, status: str) -> dict[str, Any]:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"
    event = load_event(
        "model_package_state_change",
        ModelPackageGroupName=group,
        ModelPackageVersion=version,
        ModelPackageArn=arn,
        ModelApprovalStatus=status,
    )
    event["resources"] = [arn]
    return event


def feature_table(n: int, seed: int = 7) -> pd.DataFrame:
    """A training table whose features are exactly the feature groups' values."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {
        "user_id": [f"u-{i:04d}" for i in range(n)],
        "cutoff_time": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
    }
    for group in FEATURE_GROUPS:
        for name in group.value_names:
            kind = group.feature(name).type
            if kind is Primitive.STRING:
                columns[name] = rng.choice(["basic", "standard", "premium"], n)
            elif kind in (Primitive.INT, Primitive.LONG):
                columns[name] = rng.integers(0, 20, n)
            else:
                columns[name] = rng.random(n) * 30
    table = pd.DataFrame(columns)
    table["label"] = (table["cancellations"] + rng.normal(0, 3, n) > 12).astype(int)
    return table


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ChurnModel (booster, transform, metadata) trained in a second on generated rows."""
    import xgboost as xgb

    from pipelines import feature_transform
    from pipelines.model import build

    table = feature_table(300)
    transform = feature_transform.fit(table)
    labels = table["label"].to_numpy()
    weight = float((labels == 0).sum() / (labels == 1).sum())
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "scale_pos_weight": weight},
        xgb.DMatrix(transform.apply(table), label=labels, feature_names=transform.feature_names),
        num_boost_round=5,
    )
    model = build(booster, transform, scale_pos_weight=weight, extra={"hyperparameters": {"scale_pos_weight": None}})
    folder = tmp_path_factory.mktemp("model")
    model.save(folder)
    return folder


def model_archive(folder: Path) -> bytes:
    """``model.tar.gz`` as SageMaker packs SM_MODEL_DIR: the files at the archive's top level."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.iterdir()):
            archive.add(path, arcname=path.name)
    return buffer.getvalue()
