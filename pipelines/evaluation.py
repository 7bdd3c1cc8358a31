"""Metrics for a rare-positive binary classifier, and their SageMaker model-quality JSON.

Churners are a minority, so accuracy says little (predicting "nobody churns" is right ~85% of
the time). What is reported instead, all from labels ``y`` (0/1) and scores ``s`` (churn
probabilities):

- ranking: PR-AUC (average precision, the headline) and ROC-AUC;
- operating point: recall at a fixed precision; precision, recall and F1 at a chosen threshold;
- calibration: Brier score and a reliability curve (do 30% scores churn 30% of the time?);
- targeting: lift in the top decile (how much richer in churners the riskiest 10% are);
- money: the expected value of acting on the model under a cost matrix, against offering the
  retention deal to nobody and to everyone.

The decision threshold is chosen on the validation split, never on the test split, to maximise
the expected value by default (the business objective), or F1 when asked.

Everything is plain numpy, so the metrics are cheap to test against hand-computed values and
against scikit-learn, whose conventions they follow (ties, step-wise average precision).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

ThresholdObjective = Literal["expected_value", "f1"]
_CURVE_POINTS = 101


def _arrays(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y, dtype=np.int64).ravel()
    scores = np.asarray(s, dtype=float).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if labels.size == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return labels, scores


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when predicting positive at each distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted)[last_of_tie].astype(float)
    fps = (last_of_tie + 1) - tps
    return tps, fps, s_sorted[last_of_tie]


def precision_recall_curve(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and threshold at each distinct score (highest threshold first)."""
    labels, scores = _arrays(y, s)
    tps, fps, thresholds = _cumulative_counts(labels, scores)
    positives = tps[-1]
    precision = tps / (tps + fps)
    recall = tps / positives if positives > 0 else np.zeros_like(tps)
    return precision, recall, thresholds


def average_precision(y: Any, s: Any) -> float:
    """PR-AUC as average precision: sum over thresholds of (recall gain) x precision."""
    precision, recall, _ = precision_recall_curve(y, s)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates from (0, 0), with the threshold of each point after it."""
    labels, scores = _arrays(y, s)
    tps, fps, thresholds = _cumulative_counts(labels, scores)
    if tps[-1] == 0 or fps[-1] == 0:
        raise ValueError("ROC needs both classes among the labels")
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]], np.r_[np.inf, thresholds]


def roc_auc(y: Any, s: Any) -> float:
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.trapezoid(tpr, fpr))


def recall_at_precision(y: Any, s: Any, min_precision: float) -> tuple[float, float | None]:
    """The highest recall whose precision reaches ``min_precision``, and its threshold (or None)."""
    precision, recall, thresholds = precision_recall_curve(y, s)
    ok = precision >= min_precision
    if not ok.any():
        return 0.0, None
    best = int(np.argmax(np.where(ok, recall, -1.0)))
    return float(recall[best]), float(thresholds[best])


@dataclass(frozen=True)
class Confusion:
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / (self.tp + self.fp + self.tn + self.fn)

    @property
    def false_positive_rate(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0


def confusion(y: Any, s: Any, threshold: float) -> Confusion:
    """Counts when every score at or above ``threshold`` is called a churner."""
    labels, scores = _arrays(y, s)
    predicted = scores >= threshold
    return Confusion(
        tp=int(np.sum(predicted & (labels == 1))),
        fp=int(np.sum(predicted & (labels == 0))),
        tn=int(np.sum(~predicted & (labels == 0))),
        fn=int(np.sum(~predicted & (labels == 1))),
    )


def brier_score(y: Any, s: Any) -> float:
    labels, scores = _arrays(y, s)
    return float(np.mean((scores - labels) ** 2))


def calibration_curve(
    y: Any, s: Any, *, n_bins: int = 10, strategy: Literal["quantile", "uniform"] = "quantile"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean score, observed churn rate and row count per bin (empty bins left out).

    ``quantile`` bins hold equal numbers of rows, which suits scores crowded near zero.
    """
    labels, scores = _arrays(y, s)
    if strategy == "quantile":
        edges = np.quantile(scores, np.linspace(0, 1, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (a, b], as in scikit-learn: a score on an inner edge counts in the lower bin.
    bins = np.searchsorted(edges[1:-1], scores, side="left")
    counts = np.bincount(bins, minlength=n_bins)
    sums = np.bincount(bins, weights=scores, minlength=n_bins)
    hits = np.bincount(bins, weights=labels, minlength=n_bins)
    present = counts > 0
    return sums[present] / counts[present], hits[present] / counts[present], counts[present]


def lift_at(y: Any, s: Any, fraction: float = 0.1) -> float:
    """Churn rate among the top ``fraction`` of scores, over the overall churn rate."""
    labels, scores = _arrays(y, s)
    base = labels.mean()
    if base == 0:
        return 0.0
    top = max(1, math.ceil(fraction * labels.size))
    order = np.argsort(-scores, kind="mergesort")
    return float(labels[order[:top]].mean() / base)


def lift_curve(y: Any, s: Any, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative lift when targeting the top 1/n, 2/n, ... of the population."""
    fractions = np.arange(1, n_bins + 1) / n_bins
    return fractions, np.array([lift_at(y, s, f) for f in fractions])


@dataclass(frozen=True)
class ValueModel:
    """The cost matrix of a retention campaign.

    Each offer costs ``offer_cost`` whoever receives it. A churner who receives one accepts it with
    probability ``acceptance_rate`` and is then saved, worth ``saved_value``. A non-churner's offer
    is pure cost, and a churner without an offer is lost (the baseline, worth 0). So targeting a
    user with churn probability ``p`` is worth ``p * acceptance_rate * saved_value - offer_cost``.
    """

    offer_cost: float = 8.0
    saved_value: float = 90.0
    acceptance_rate: float = 0.3

    def __post_init__(self) -> None:
        if self.offer_cost < 0 or self.saved_value < 0 or not 0 <= self.acceptance_rate <= 1:
            raise ValueError("costs and values must be non-negative and the acceptance rate in [0, 1]")

    @property
    def break_even_probability(self) -> float:
        """The churn probability above which an offer pays for itself."""
        gain = self.acceptance_rate * self.saved_value
        return self.offer_cost / gain if gain > 0 else math.inf

    def expected_value(self, y: Any, targeted: Any) -> float:
        """Expected value of sending offers to the ``targeted`` rows, given the true labels."""
        labels = np.asarray(y, dtype=float).ravel()
        chosen = np.asarray(targeted, dtype=bool).ravel()
        return float(np.sum(chosen * (self.acceptance_rate * self.saved_value * labels - self.offer_cost)))


def choose_threshold(
    y: Any, s: Any, *, objective: ThresholdObjective = "expected_value", value_model: ValueModel | None = None
) -> float:
    """The score threshold that maximises the objective on these rows (use validation rows).

    With the expected value, a threshold above every score (1.0: offer to nobody) is a valid
    answer when no targeting pays.
    """
    labels, scores = _arrays(y, s)
    tps, fps, thresholds = _cumulative_counts(labels, scores)
    if objective == "f1":
        f1 = 2 * tps / (tps + fps + tps[-1])
        return float(thresholds[int(np.argmax(f1))])
    vm = value_model or ValueModel()
    values = vm.acceptance_rate * vm.saved_value * tps - vm.offer_cost * (tps + fps)
    best = int(np.argmax(values))
    return float(thresholds[best]) if values[best] > 0 else 1.0


def subsample_std(
    metric: Callable[[np.ndarray, np.ndarray], float], y: Any, s: Any, *, repeats: int = 5, seed: int = 0
) -> float | None:
    """Standard deviation of a metric over random 80% subsamples, as SageMaker Model Monitor does
    (5 draws, only with at least 200 rows); None when it cannot be estimated."""
    labels, scores = _arrays(y, s)
    if labels.size < 200:
        return None
    rng = np.random.default_rng(seed)
    size = int(0.8 * labels.size)
    values = []
    for _ in range(repeats):
        pick = rng.choice(labels.size, size=size, replace=False)
        if labels[pick].min() == labels[pick].max():
            return None
        values.append(metric(labels[pick], scores[pick]))
    return float(np.std(values))


def _downsample(*curves: np.ndarray, points: int = _CURVE_POINTS) -> list[list[float]]:
    n = len(curves[0])
    keep = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int))
    return [[round(float(v), 6) for v in c[keep]] for c in curves]


def _metric(value: float, std: float | None = None) -> dict[str, float]:
    out = {"value": float(value)}
    if std is not None:
        out["standard_deviation"] = std
    return out


def binary_classification_report(
    y: Any,
    s: Any,
    *,
    threshold: float,
    min_precision: float = 0.5,
    value_model: ValueModel | None = None,
    calibration_bins: int = 10,
) -> dict[str, Any]:
    """Every metric, in the SageMaker model-quality shape: ``{"binary_classification_metrics":
    {"pr_auc": {"value": ..., "standard_deviation": ...}, ...}}``. Curves are downsampled."""
    labels, scores = _arrays(y, s)
    vm = value_model or ValueModel()
    counts = confusion(labels, scores, threshold)
    recall_p, threshold_p = recall_at_precision(labels, scores, min_precision)
    precision, recall, _ = precision_recall_curve(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    mean_predicted, observed, bin_counts = calibration_curve(labels, scores, n_bins=calibration_bins)
    fractions, lifts = lift_curve(labels, scores)
    pr_points = _downsample(np.r_[1.0, precision], np.r_[0.0, recall])
    roc_points = _downsample(fpr, tpr)
    model_value = vm.expected_value(labels, scores >= threshold)
    everyone_value = vm.expected_value(labels, np.ones_like(labels, dtype=bool))
    metrics: dict[str, Any] = {
        "pr_auc": _metric(average_precision(labels, scores), subsample_std(average_precision, labels, scores)),
        "roc_auc": _metric(roc_auc(labels, scores), subsample_std(roc_auc, labels, scores)),
        f"recall_at_precision_{round(min_precision * 100)}": _metric(recall_p),
        "threshold": _metric(threshold),
        "precision": _metric(counts.precision),
        "recall": _metric(counts.recall),
        "f1": _metric(counts.f1),
        "accuracy": _metric(counts.accuracy),
        "true_positive_rate": _metric(counts.recall),
        "false_positive_rate": _metric(counts.false_positive_rate),
        "brier_score": _metric(brier_score(labels, scores), subsample_std(brier_score, labels, scores)),
        "lift_top_decile": _metric(lift_at(labels, scores, 0.1)),
        "positive_rate": _metric(float(labels.mean())),
        "expected_value_model": _metric(model_value),
        "expected_value_offer_to_everyone": _metric(everyone_value),
        "expected_value_offer_to_nobody": _metric(0.0),
        "expected_value_per_customer": _metric(model_value / labels.size),
        "confusion_matrix": {
            "0": {"0": counts.tn, "1": counts.fp},
            "1": {"0": counts.fn, "1": counts.tp},
        },
        "precision_recall_curve": {"precisions": pr_points[0], "recalls": pr_points[1]},
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": roc_points[0],
            "true_positive_rates": roc_points[1],
        },
        "calibration_curve": {
            "mean_predicted_probabilities": [round(float(v), 6) for v in mean_predicted],
            "fraction_of_positives": [round(float(v), 6) for v in observed],
            "counts": [int(c) for c in bin_counts],
        },
        "lift_curve": {
            "population_fractions": [float(f) for f in fractions],
            "lifts": [round(float(v), 6) for v in lifts],
        },
    }
    if threshold_p is not None:
        metrics[f"threshold_at_precision_{round(min_precision * 100)}"] = _metric(threshold_p)
    return {"binary_classification_metrics": metrics}
