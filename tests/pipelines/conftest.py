"""Fixtures for the pipeline scripts: generated training tables and a small trained model."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from datagen.config import GeneratorConfig
from datagen.world import build_world
from pipelines import feature_transform
from pipelines.model import ChurnModel
from pipelines.preprocess import time_split
from pipelines.tables import write_table
from pipelines.train import Hyperparameters, train


@pytest.fixture(scope="package")
def small_table() -> pd.DataFrame:
    return build_world(GeneratorConfig(n_users=700, seed=13)).training_table()


@pytest.fixture(scope="package")
def small_splits(small_table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train/validation/test folders and the fitted transform, as preprocessing leaves them."""
    root = tmp_path_factory.mktemp("small-splits")
    split = time_split(small_table, label_horizon_days=7)
    write_table(split.train, root / "train", "train")
    write_table(split.validation, root / "validation", "validation")
    write_table(split.test, root / "test", "test")
    (root / "transform").mkdir()
    feature_transform.fit(split.train).save(root / "transform" / "transform.json")
    return root


@pytest.fixture(scope="package")
def small_model_dir(small_splits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained quickly on the small splits and saved as SM_MODEL_DIR would hold it."""
    model, _ = train(
        train_dir=small_splits / "train",
        validation_dir=small_splits / "validation",
        transform=feature_transform.FittedTransform.load(small_splits / "transform" / "transform.json"),
        hyperparameters=Hyperparameters(num_round=60, early_stopping_rounds=20, nthread=1),
    )
    folder = tmp_path_factory.mktemp("small-model")
    model.save(folder)
    return folder


@pytest.fixture(scope="package")
def small_model(small_model_dir: Path) -> ChurnModel:
    return ChurnModel.load(small_model_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
