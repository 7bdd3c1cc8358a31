"""The evaluation script on a plain model folder, without an oracle, choosing the threshold by F1."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import evaluate, evaluation
from pipelines.model import ChurnModel
from pipelines.tables import read_table


def test_threshold_by_f1_is_chosen_on_validation(small_splits: Path, small_model_dir: Path, tmp_path: Path) -> None:
    # When the evaluation script runs on the model folder itself (not a model.tar.gz)
    evaluate.main(
        [
            *("--model-dir", str(small_model_dir), "--validation-dir", str(small_splits / "validation")),
            *("--test-dir", str(small_splits / "test"), "--output-dir", str(tmp_path)),
            *("--threshold-objective", "f1", "--no-plots", "--min-precision", "0.4"),
        ]
    )
    report = json.loads((tmp_path / "evaluation.json").read_text())
    # Then the threshold is the validation split's F1-best one, applied to the test split
    validation = read_table(small_splits / "validation")
    scores = ChurnModel.load(small_model_dir).predict(validation)
    expected = evaluation.choose_threshold(validation["label"], scores, objective="f1")
    metrics = report["binary_classification_metrics"]
    assert metrics["threshold"]["value"] == report["validation"]["threshold"] == expected
    assert "recall_at_precision_40" in metrics
    assert report["settings"]["threshold_objective"] == "f1"
    assert "oracle" not in report
    assert [p.name for p in tmp_path.iterdir()] == ["evaluation.json"]
