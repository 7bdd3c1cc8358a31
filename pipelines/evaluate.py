"""Evaluation step: score the held-out test split and write ``evaluation.json`` plus plots.

SageMaker Processing contract:

==========================  ======================================  ===================
what                        default                                 argument
==========================  ======================================  ===================
model (model.tar.gz or dir) /opt/ml/processing/model                --model-dir
validation split            /opt/ml/processing/validation           --validation-dir
test split                  /opt/ml/processing/test                 --test-dir
evaluation (out)            /opt/ml/processing/evaluation           --output-dir
true probabilities (opt.)   none                                    --oracle-dir
==========================  ======================================  ===================

The decision threshold is chosen on the validation split (``--threshold-objective``:
``expected_value``, the default, maximises the campaign's expected value under the cost matrix
``--offer-cost/--saved-value/--acceptance-rate``; ``f1`` maximises F1), then every metric is
computed once on the test split at that threshold. ``evaluation.json`` has the SageMaker
model-quality shape (``binary_classification_metrics.pr_auc.value``...) so that a pipeline
condition step and the model registry read it directly; it also records the settings and, when
``--oracle-dir`` gives the synthetic data's true probabilities, the oracle's metrics (the best
any model could do on these rows) for comparison.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (``python evaluate.py``, as SageMaker processing jobs start scripts): make the
    # folder above ``pipelines/`` importable so that ``from pipelines ...`` works as in the tests.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from pipelines import evaluation
from pipelines.model import ChurnModel
from pipelines.tables import KEY, LABEL, TIME, read_table

LOG = logging.getLogger(__name__)
PROCESSING = "/opt/ml/processing"
EVALUATION_FILE = "evaluation.json"
ORACLE_COLUMN = "true_churn_probability"


def resolve_model_dir(path: Path, scratch: Path) -> Path:
    """The folder holding the model files; unpacks ``model.tar.gz`` as SageMaker hands it over."""
    archive = path / "model.tar.gz" if path.is_dir() else path
    if archive.is_file() and archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")  # "data" refuses links and paths outside scratch
        return scratch
    return path


def oracle_scores(test: pd.DataFrame, oracle_dir: Path) -> np.ndarray:
    """The true churn probability of every test row, joined on (user_id, cutoff_time)."""
    truth = pd.read_parquet(oracle_dir) if oracle_dir.is_file() else read_truth(oracle_dir)
    truth = truth.assign(**{KEY: truth[KEY].astype(str), TIME: pd.to_datetime(truth[TIME], utc=True)})
    joined = test[[KEY, TIME]].merge(truth[[KEY, TIME, ORACLE_COLUMN]], on=[KEY, TIME], how="left")
    if joined[ORACLE_COLUMN].isna().any():
        raise ValueError(f"{int(joined[ORACLE_COLUMN].isna().sum())} test row(s) have no true probability")
    return joined[ORACLE_COLUMN].to_numpy(float)


def read_truth(folder: Path) -> pd.DataFrame:
    files = sorted(folder.rglob("*.parquet")) + sorted(folder.rglob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no truth table under {folder}")
    return pd.concat([pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f) for f in files])


def evaluate(
    model: ChurnModel,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    *,
    value_model: evaluation.ValueModel,
    objective: evaluation.ThresholdObjective = "expected_value",
    min_precision: float = 0.5,
    calibration_bins: int = 10,
    oracle: np.ndarray | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """The evaluation report and the test scores."""
    validation_scores = model.predict(validation)
    threshold = evaluation.choose_threshold(
        validation[LABEL].to_numpy(), validation_scores, objective=objective, value_model=value_model
    )
    test_scores = model.predict(test)
    report = evaluation.binary_classification_report(
        test[LABEL].to_numpy(),
        test_scores,
        threshold=threshold,
        min_precision=min_precision,
        value_model=value_model,
        calibration_bins=calibration_bins,
    )
    report["model_version"] = model.version
    report["settings"] = {
        "threshold_objective": objective,
        "threshold_chosen_on": "validation",
        "min_precision": min_precision,
        "offer_cost": value_model.offer_cost,
        "saved_value": value_model.saved_value,
        "acceptance_rate": value_model.acceptance_rate,
        "break_even_probability": value_model.break_even_probability,
        "test_rows": len(test),
        "validation_rows": len(validation),
    }
    report["validation"] = {
        "pr_auc": evaluation.average_precision(validation[LABEL].to_numpy(), validation_scores),
        "threshold": threshold,
    }
    if oracle is not None:
        labels = test[LABEL].to_numpy()
        report["oracle"] = {
            "pr_auc": evaluation.average_precision(labels, oracle),
            "roc_auc": evaluation.roc_auc(labels, oracle),
            "brier_score": evaluation.brier_score(labels, oracle),
            "expected_value": value_model.expected_value(labels, oracle >= value_model.break_even_probability),
        }
        report["oracle"]["model_pr_auc_ratio"] = (
            report["binary_classification_metrics"]["pr_auc"]["value"] / report["oracle"]["pr_auc"]
        )
    return report, test_scores


@dataclass(frozen=True)
class _Plot:
    """One curve against its no-skill reference: a horizontal line, or the diagonal when None."""

    file: str
    xlabel: str
    ylabel: str
    x: list[float]
    y: list[float]
    label: str
    reference: float | None
    reference_label: str


def _plots(metrics: dict[str, Any]) -> list[_Plot]:
    pr, roc = metrics["precision_recall_curve"], metrics["receiver_operating_characteristic_curve"]
    calibration, lift = metrics["calibration_curve"], metrics["lift_curve"]
    base = metrics["positive_rate"]["value"]
    return [
        _Plot(
            "pr_curve.png", "recall", "precision", pr["recalls"], pr["precisions"],
            f"model (AP {metrics['pr_auc']['value']:.3f})", base, f"no skill ({base:.3f})",
        ),
        _Plot(
            "roc_curve.png", "false positive rate", "true positive rate",
            roc["false_positive_rates"], roc["true_positive_rates"],
            f"model (AUC {metrics['roc_auc']['value']:.3f})", None, "no skill",
        ),
        _Plot(
            "calibration.png", "mean predicted churn probability", "observed churn rate",
            calibration["mean_predicted_probabilities"], calibration["fraction_of_positives"],
            "model", None, "perfectly calibrated",
        ),
        _Plot(
            "lift.png", "share of customers targeted (highest scores first)", "cumulative lift",
            lift["population_fractions"], lift["lifts"], "model", 1.0, "random targeting",
        ),
    ]  # fmt: skip


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """PR curve, ROC curve, calibration and lift as PNG files (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in _plots(report["binary_classification_metrics"]):
        fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
        ax.plot(plot.x, plot.y, marker="o" if len(plot.x) <= 20 else None, label=plot.label)
        if plot.reference is None:
            ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label=plot.reference_label)
        else:
            ax.axhline(plot.reference, linestyle="--", color="grey", label=plot.reference_label)
        ax.set_xlabel(plot.xlabel)
        ax.set_ylabel(plot.ylabel)
        ax.set_title(plot.file.removesuffix(".png").replace("_", " "))
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(folder / plot.file)
        plt.close(fig)
        written.append(folder / plot.file)
    return written


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path(f"{PROCESSING}/model"))
    parser.add_argument("--validation-dir", type=Path, default=Path(f"{PROCESSING}/validation"))
    parser.add_argument("--test-dir", type=Path, default=Path(f"{PROCESSING}/test"))
    parser.add_argument("--output-dir", type=Path, default=Path(f"{PROCESSING}/evaluation"))
    parser.add_argument("--oracle-dir", type=Path, default=None)
    parser.add_argument("--threshold-objective", choices=["expected_value", "f1"], default="expected_value")
    parser.add_argument("--min-precision", type=float, default=0.5)
    parser.add_argument("--offer-cost", type=float, default=evaluation.ValueModel.offer_cost)
    parser.add_argument("--saved-value", type=float, default=evaluation.ValueModel.saved_value)
    parser.add_argument("--acceptance-rate", type=float, default=evaluation.ValueModel.acceptance_rate)
    parser.add_argument("--calibration-bins", type=int, default=10)
    parser.add_argument("--no-plots", action="store_true")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        model = ChurnModel.load(resolve_model_dir(args.model_dir, Path(scratch)))
    test = read_table(args.test_dir)
    report, _ = evaluate(
        model,
        read_table(args.validation_dir),
        test,
        value_model=evaluation.ValueModel(args.offer_cost, args.saved_value, args.acceptance_rate),
        objective=args.threshold_objective,
        min_precision=args.min_precision,
        calibration_bins=args.calibration_bins,
        oracle=oracle_scores(test, args.oracle_dir) if args.oracle_dir else None,
    )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if not args.no_plots:
        write_plots(report, args.output_dir)
    headline = report["binary_classification_metrics"]
    LOG.info("test pr_auc=%.4f roc_auc=%.4f", headline["pr_auc"]["value"], headline["roc_auc"]["value"])
    return report


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(parse_args(argv))


if __name__ == "__main__":
    main()
