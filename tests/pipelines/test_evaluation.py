"""Metrics against hand-computed values on tiny arrays, and against scikit-learn on larger ones."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import calibration as sk_calibration
from sklearn import metrics as sk

from pipelines import evaluation as ev

Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])


def test_ranking_metrics_by_hand() -> None:
    # Ranked: 0.8 (1), 0.4 (0), 0.35 (1), 0.1 (0).
    # Average precision = 1/2 * 1 (at 0.8) + 1/2 * 2/3 (at 0.35) = 5/6.
    assert ev.average_precision(Y, S) == pytest.approx(5 / 6)
    # ROC AUC: of the 4 (positive, negative) pairs, 3 are ordered right.
    assert ev.roc_auc(Y, S) == pytest.approx(0.75)
    precision, recall, thresholds = ev.precision_recall_curve(Y, S)
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [0.8, 0.4, 0.35, 0.1])


def test_operating_point_metrics_by_hand() -> None:
    counts = ev.confusion(Y, S, threshold=0.35)  # calls 0.8, 0.4, 0.35 churners
    assert (counts.tp, counts.fp, counts.tn, counts.fn) == (2, 1, 1, 0)
    assert counts.precision == pytest.approx(2 / 3)
    assert counts.recall == 1.0
    assert counts.f1 == pytest.approx(0.8)
    assert counts.accuracy == 0.75
    assert ev.recall_at_precision(Y, S, 0.6) == (1.0, 0.35)
    assert ev.recall_at_precision(Y, S, 0.9) == (0.5, 0.8)
    assert ev.recall_at_precision(np.array([1, 0]), np.array([0.1, 0.9]), 0.9) == (0.0, None)


def test_calibration_and_lift_by_hand() -> None:
    assert ev.brier_score(Y, S) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert ev.lift_at(Y, S, 0.25) == pytest.approx(2.0)  # top row is a churner; base rate 1/2
    assert ev.lift_at(Y, S, 0.5) == pytest.approx(1.0)  # top two: one churner in two
    mean, observed, counts = ev.calibration_curve(Y, S, n_bins=2, strategy="uniform")
    np.testing.assert_allclose(mean, [(0.1 + 0.4 + 0.35) / 3, 0.8])
    np.testing.assert_allclose(observed, [1 / 3, 1.0])
    np.testing.assert_array_equal(counts, [3, 1])


def test_expected_value_and_thresholds_by_hand() -> None:
    value = ev.ValueModel(offer_cost=10, saved_value=100, acceptance_rate=0.5)
    assert value.break_even_probability == pytest.approx(0.2)
    # Offering to the top two: one churner (0.5 * 100 - 10 = 40), one non-churner (-10).
    assert value.expected_value(Y, S >= 0.4) == pytest.approx(30.0)
    assert value.expected_value(Y, np.ones(4, bool)) == pytest.approx(2 * 40 - 2 * 10)
    # All four: 60; top three: 70; top one: 40, top two: 30 -> the best is to stop at 0.35.
    assert ev.choose_threshold(Y, S, objective="expected_value", value_model=value) == 0.35
    assert ev.choose_threshold(Y, S, objective="f1") == 0.35  # F1 = 0.8 there, the best
    costly = ev.ValueModel(offer_cost=1000, saved_value=1, acceptance_rate=0.1)
    assert ev.choose_threshold(Y, S, value_model=costly) == 1.0  # no offer pays: target nobody


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(500) < 0.15).astype(int)
    # coarse scores, so that ties occur and tie handling is checked too
    s = np.round(np.clip(0.15 + 0.3 * y + rng.normal(0, 0.2, 500), 0.001, 0.999), 2)
    assert ev.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s))
    assert ev.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s))
    assert ev.brier_score(y, s) == pytest.approx(sk.brier_score_loss(y, s))
    precision, recall, thresholds = ev.precision_recall_curve(y, s)
    sk_precision, sk_recall, sk_thresholds = sk.precision_recall_curve(y, s)
    # scikit-learn lists thresholds ascending and appends the (precision 1, recall 0) end point
    np.testing.assert_allclose(precision[::-1], sk_precision[:-1])
    np.testing.assert_allclose(recall[::-1], sk_recall[:-1])
    np.testing.assert_allclose(thresholds[::-1], sk_thresholds)
    fpr, tpr, _ = ev.roc_curve(y, s)
    sk_fpr, sk_tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    threshold = 0.4
    assert ev.confusion(y, s, threshold).f1 == pytest.approx(sk.f1_score(y, s >= threshold))
    observed_sk, mean_sk = sk_calibration.calibration_curve(y, s, n_bins=5, strategy="uniform")
    mean, observed, _ = ev.calibration_curve(y, s, n_bins=5, strategy="uniform")
    np.testing.assert_allclose(mean, mean_sk)
    np.testing.assert_allclose(observed, observed_sk)


def test_report_has_the_sagemaker_model_quality_shape() -> None:
    rng = np.random.default_rng(7)
    y = (rng.random(1000) < 0.2).astype(int)
    s = np.clip(0.2 + 0.3 * y + rng.normal(0, 0.15, 1000), 0, 1)
    report = ev.binary_classification_report(y, s, threshold=0.4, min_precision=0.5)
    metrics = report["binary_classification_metrics"]
    for name in ("pr_auc", "roc_auc", "brier_score"):
        assert set(metrics[name]) == {"value", "standard_deviation"}
        assert 0 < metrics[name]["standard_deviation"] < 0.05
    for name in ("recall_at_precision_50", "f1", "precision", "recall", "lift_top_decile", "threshold"):
        assert set(metrics[name]) == {"value"}
    assert metrics["expected_value_offer_to_nobody"] == {"value": 0.0}
    matrix = metrics["confusion_matrix"]
    assert sum(matrix[a][b] for a in "01" for b in "01") == 1000
    assert matrix["1"]["1"] == int(np.sum((s >= 0.4) & (y == 1)))
    assert len(metrics["precision_recall_curve"]["precisions"]) <= 101
    curve = metrics["receiver_operating_characteristic_curve"]
    assert curve["false_positive_rates"][0] == 0.0 and curve["true_positive_rates"][-1] == 1.0


def test_small_samples_get_no_standard_deviation() -> None:
    report = ev.binary_classification_report(Y, S, threshold=0.5)
    assert "standard_deviation" not in report["binary_classification_metrics"]["pr_auc"]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        ev.average_precision([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        ev.roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="both classes"):
        ev.roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        ev.brier_score([0, 1], [0.1, float("nan")])
