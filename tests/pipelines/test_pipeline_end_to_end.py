"""The whole pipeline on generated data, as SageMaker would run it: preprocess -> train -> evaluate
-> serve; and the key quality check: the model gets close to the oracle without beating it."""

from __future__ import annotations

import http.client
import json
import tarfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from datagen.config import GeneratorConfig
from datagen.world import build_world
from pipelines import evaluate, evaluation, inference, preprocess, train
from pipelines.model import ChurnModel
from pipelines.tables import read_table

# Big enough for the tree model to approach the oracle (~20,000 training rows), small enough to
# train in seconds.
WORLD = GeneratorConfig(n_users=8000, seed=1)
HORIZON_DAYS = WORLD.lead_days  # a label is known at the renewal, lead_days after its cutoff


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    world = build_world(WORLD)
    (root / "input").mkdir()
    world.training_table().to_parquet(root / "input" / "features.parquet")
    (root / "truth").mkdir()
    world.truth().to_parquet(root / "truth" / "truth.parquet")
    processing = ["train", "validation", "test", "transform"]
    preprocess.main(
        ["--input-dir", str(root / "input"), "--label-horizon-days", str(HORIZON_DAYS)]
        + [arg for name in processing for arg in (f"--{name}-dir", str(root / name))]
    )
    # Training sees its channels and model folder through SageMaker's environment variables, and
    # its hyperparameters as SageMaker passes them.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SM_CHANNEL_TRAIN", str(root / "train"))
        env.setenv("SM_CHANNEL_VALIDATION", str(root / "validation"))
        env.setenv("SM_CHANNEL_TRANSFORM", str(root / "transform"))
        env.setenv("SM_MODEL_DIR", str(root / "model"))
        env.setenv("SM_OUTPUT_DATA_DIR", str(root / "output"))
        env.setenv("SM_HOSTS", '["algo-1"]')
        env.setenv("SM_CURRENT_HOST", "algo-1")
        train.main(["--max_depth", "3", "--eta", "0.1", "--nthread", "1"])
    # SageMaker hands the evaluation step the model as model.tar.gz.
    (root / "artifact").mkdir()
    with tarfile.open(root / "artifact" / "model.tar.gz", "w:gz") as tar:
        for path in (root / "model").iterdir():
            tar.add(path, arcname=path.name)
    evaluate.main(
        [
            *("--model-dir", str(root / "artifact"), "--validation-dir", str(root / "validation")),
            *("--test-dir", str(root / "test"), "--output-dir", str(root / "evaluation")),
            *("--oracle-dir", str(root / "truth")),
        ]
    )
    return root


@pytest.fixture(scope="module")
def report(run: Path) -> dict[str, Any]:
    return json.loads((run / "evaluation" / "evaluation.json").read_text())


def test_splits_follow_each_other_in_time_without_overlap(run: Path) -> None:
    train_, validation, test = (read_table(run / name) for name in ("train", "validation", "test"))
    horizon = pd.Timedelta(days=HORIZON_DAYS)
    assert train_["cutoff_time"].max() + horizon < validation["cutoff_time"].min()
    assert validation["cutoff_time"].max() + horizon < test["cutoff_time"].min()
    keys = pd.concat([t[["user_id", "cutoff_time"]] for t in (train_, validation, test)])
    assert not keys.duplicated().any()


def test_training_leaves_a_complete_model_folder(run: Path) -> None:
    model = ChurnModel.load(run / "model")
    summary = json.loads((run / "output" / "training_summary.json").read_text())
    assert summary["model_version"] == model.version
    labels = pd.concat([read_table(run / split) for split in ("train", "validation")])["label"]
    assert model.metadata["scale_pos_weight"] == pytest.approx((labels == 0).sum() / (labels == 1).sum())
    assert model.metadata["hyperparameters"]["max_depth"] == 3


def test_evaluation_json_has_the_model_registry_shape(run: Path, report: dict[str, Any]) -> None:
    metrics = report["binary_classification_metrics"]
    for name in ("pr_auc", "roc_auc", "recall_at_precision_50", "f1", "brier_score", "lift_top_decile"):
        assert isinstance(metrics[name]["value"], float)
    assert 0 < metrics["pr_auc"]["standard_deviation"] < 0.05
    test_rows = len(read_table(run / "test"))
    assert sum(metrics["confusion_matrix"][a][b] for a in "01" for b in "01") == test_rows
    assert report["settings"]["threshold_chosen_on"] == "validation"
    assert report["validation"]["threshold"] == metrics["threshold"]["value"]
    for plot in ("pr_curve.png", "roc_curve.png", "calibration.png", "lift.png"):
        assert (run / "evaluation" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_acting_on_the_model_beats_offering_to_nobody_or_everyone(report: dict[str, Any]) -> None:
    metrics = report["binary_classification_metrics"]
    model_value = metrics["expected_value_model"]["value"]
    assert model_value > metrics["expected_value_offer_to_nobody"]["value"] == 0.0
    assert model_value > metrics["expected_value_offer_to_everyone"]["value"]
    assert metrics["lift_top_decile"]["value"] > 3


def test_scores_are_calibrated_probabilities(report: dict[str, Any]) -> None:
    metrics = report["binary_classification_metrics"]
    base = metrics["positive_rate"]["value"]
    assert metrics["brier_score"]["value"] < 0.8 * base * (1 - base)  # well below a constant guess
    calibration = metrics["calibration_curve"]
    gaps = np.abs(np.subtract(calibration["mean_predicted_probabilities"], calibration["fraction_of_positives"]))
    assert gaps.max() < 0.12


def test_model_approaches_the_oracle_and_never_beats_it(run: Path, report: dict[str, Any]) -> None:
    # Given the test rows, the model's scores and the true probabilities (the oracle)
    test = read_table(run / "test")
    labels = test["label"].to_numpy()
    model_scores = ChurnModel.load(run / "model").predict(test)
    oracle_scores = evaluate.oracle_scores(test, run / "truth")
    model_ap = evaluation.average_precision(labels, model_scores)
    oracle_ap = evaluation.average_precision(labels, oracle_scores)
    # the noise of the difference, from a paired bootstrap over test rows
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(200):
        pick = rng.integers(0, len(labels), len(labels))
        differences.append(
            evaluation.average_precision(labels[pick], model_scores[pick])
            - evaluation.average_precision(labels[pick], oracle_scores[pick])
        )
    noise = float(np.std(differences))
    print(
        f"\ntest PR-AUC: model {model_ap:.4f}, oracle {oracle_ap:.4f}, ratio {model_ap / oracle_ap:.3f}, noise {noise:.4f}"
    )
    # Then the model gets at least 90% of the oracle's PR-AUC...
    assert model_ap >= 0.9 * oracle_ap
    # ...and does not beat it by more than noise: beating the truth would mean leakage
    assert model_ap <= oracle_ap + 2 * noise
    assert report["oracle"]["pr_auc"] == pytest.approx(oracle_ap)
    assert report["binary_classification_metrics"]["pr_auc"]["value"] == pytest.approx(model_ap)


def test_the_container_serves_the_evaluated_model(run: Path) -> None:
    # Given the inference server on a free loopback port, on the trained model folder
    server = inference.InferenceServer(run / "model", host="127.0.0.1", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert server.holder.ready.wait(timeout=60)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("GET", "/ping")
        ping = connection.getresponse()
        assert ping.status == 200
        ping.read()
        # When test rows are posted as JSON records
        rows = read_table(run / "test").head(100)
        records = json.loads(rows.drop(columns=["cutoff_time", "label"]).to_json(orient="records"))
        connection.request("POST", "/invocations", json.dumps(records), {"Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        # Then the answers are the model's batch scores
        assert response.status == 200
        model = ChurnModel.load(run / "model")
        assert body["model_version"] == model.version
        np.testing.assert_allclose(body["scores"], model.predict(rows), rtol=1e-5)
    finally:
        server.shutdown()
        server.server_close()
