"""Training: SageMaker's arguments and environment, class weighting, calibration, several hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import train
from pipelines.feature_transform import FittedTransform
from pipelines.model import ChurnModel
from pipelines.preprocess import TRANSFORM_FILE
from pipelines.tables import read_table
from tests.pipelines.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_hyperparameters_come_as_sagemaker_passes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/data/train")
    monkeypatch.setenv("SM_MODEL_DIR", "/model")
    args = train.parse_args(["--max_depth", "5", "--eta", "0.2", "--num-round", "40", "--scale_pos_weight", "3"])
    assert (args.max_depth, args.eta, args.num_round, args.scale_pos_weight) == (5, 0.2, 40, 3.0)
    assert args.train_dir == Path("/data/train")
    assert args.model_dir == Path("/model")
    assert args.validation_dir == Path("/opt/ml/input/data/validation")


def test_class_weight_is_negatives_per_positive(small_splits: Path, small_model: ChurnModel) -> None:
    labels = read_table(small_splits / "train")["label"].to_numpy()
    expected = (labels == 0).sum() / (labels == 1).sum()
    assert train.class_weight(labels, distributed=False) == pytest.approx(expected)
    # The final booster is refitted on train + validation, weighted by the classes of both
    both = pd.concat([read_table(small_splits / split) for split in ("train", "validation")])["label"].to_numpy()
    assert small_model.metadata["scale_pos_weight"] == pytest.approx((both == 0).sum() / (both == 1).sum())
    with pytest.raises(ValueError, match="single class"):
        train.class_weight(np.zeros(10), distributed=False)


def test_served_scores_undo_the_class_weight(small_splits: Path, small_model: ChurnModel) -> None:
    # Given the training rows, where churners were weighted up by w
    table = read_table(small_splits / "train")
    scores = small_model.predict(table)
    raw = 1 / (
        1 + np.exp(-small_model.booster.inplace_predict(small_model.transform.apply(table), predict_type="margin"))
    )
    # Then the raw booster overstates churn, and the served probability is back near the real rate
    assert raw.mean() > 2 * table["label"].mean()
    assert scores.mean() == pytest.approx(table["label"].mean(), abs=0.03)


def test_model_folder_is_self_describing(small_model_dir: Path, small_model: ChurnModel) -> None:
    assert {p.name for p in small_model_dir.iterdir()} == {"xgboost-model.json", "transform.json", "metadata.json"}
    metadata = json.loads((small_model_dir / "metadata.json").read_text())
    assert metadata["feature_names"] == small_model.transform.feature_names
    assert metadata["score_offset"] == pytest.approx(-np.log(metadata["scale_pos_weight"]))
    # the version is a content hash: reloading gives the same one
    assert ChurnModel.load(small_model_dir).version == small_model.version == metadata["model_version"]


def test_the_final_model_is_refitted_on_train_and_validation_unless_told_not_to(small_splits: Path) -> None:
    transform = FittedTransform.load(small_splits / "transform" / TRANSFORM_FILE)
    runs = {
        refit: train.train(
            train_dir=small_splits / "train",
            validation_dir=small_splits / "validation",
            transform=transform,
            hyperparameters=train.Hyperparameters(num_round=60, early_stopping_rounds=20, nthread=1, refit=refit),
        )
        for refit in (0, 1)
    }
    (kept, kept_summary), (refitted, refitted_summary) = runs[0], runs[1]
    best = kept_summary["best_iteration"]
    # Without refit: the early-stopped booster, best + 1 rounds
    assert kept.booster.num_boosted_rounds() == best + 1 and kept_summary["refit_rounds"] is None
    # With refit: rounds scaled by the rows added, and a different model
    rows, added = refitted_summary["train_rows"], refitted_summary["validation_rows"]
    assert refitted.booster.num_boosted_rounds() == max(1, round((best + 1) * (rows + added) / rows))
    assert refitted.version != kept.version


@pytest.mark.slow
def test_two_workers_train_one_model(small_splits: Path, tmp_path: Path) -> None:
    # Given the training split sharded over two hosts, as ShardedByS3Key would deliver it
    table = read_table(small_splits / "train")
    for k in (0, 1):
        (tmp_path / f"shard{k}").mkdir()
        table.iloc[k::2].to_parquet(tmp_path / f"shard{k}" / "part.parquet")
    port = free_port()
    hosts = ["algo-1", "algo-2"]
    # When each host runs the training script (on the loopback interface)
    workers = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "pipelines.train", "--train-dir", str(tmp_path / f"shard{k}")),
                *("--validation-dir", str(small_splits / "validation")),
                *("--transform-dir", str(small_splits / "transform")),
                *("--model-dir", str(tmp_path / f"model{k}"), "--output-data-dir", str(tmp_path / f"out{k}")),
                *("--tracker-host", "127.0.0.1", "--tracker-port", str(port), "--nthread", "1", "--num_round", "40"),
            ],
            cwd=ROOT,
            env={**os.environ, "SM_HOSTS": json.dumps(hosts), "SM_CURRENT_HOST": hosts[k], "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in (0, 1)
    ]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    # Then only the first host writes the model, weighted with the classes of both shards
    summary = json.loads((tmp_path / "out0" / "training_summary.json").read_text())
    assert summary["hosts"] == 2
    assert summary["train_rows"] == len(table.iloc[0::2])
    # The refit counts the validation rows once (the first host adds them), both shards' train rows
    validation = read_table(small_splits / "validation")
    labels = np.concatenate([table["label"].to_numpy(), validation["label"].to_numpy()])
    assert summary["scale_pos_weight"] == pytest.approx((labels == 0).sum() / (labels == 1).sum())
    assert summary["refit_rounds"] == max(
        1, round((summary["best_iteration"] + 1) * (len(table) + len(validation)) / len(table))
    )
    assert not (tmp_path / "model1").exists()
    model = ChurnModel.load(tmp_path / "model0")
    assert all(model.version in log for log in logs)  # both hosts built the very same trees
    assert 0 < float(np.mean(model.predict(pd.read_parquet(small_splits / "test")))) < 1
