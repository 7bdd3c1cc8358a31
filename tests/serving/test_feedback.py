"""The feedback loop: captured predictions joined with churn labels, model quality, retraining."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from glue_jobs.feedback import FeedbackResult, FeedbackSettings, publish, quality_by_version
from glue_jobs.transforms.feedback import (
    labelled_production,
    model_quality,
    read_captures,
    retrain_decision,
    split_captures,
)
from platform_core.names import MODEL_QUALITY_METRIC, MODEL_QUALITY_NAMESPACE
from platform_core.schema import glue_type
from platform_core.schemas.cdc import CHURN_LABEL
from platform_core.schemas.serving import PRODUCTION_LABELLED, capture_key, capture_line, capture_record

RENEWAL = date(2026, 3, 1)
CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
LABEL_TIME = datetime(2026, 3, 31, tzinfo=UTC)
LABELS_DDL = ", ".join(f"`{f.name}` {glue_type(f.type)}" for f in CHURN_LABEL.fields)


def _capture(users: list[str], scores: list[float], at: datetime, event_id: str, version: str = "v2") -> dict[str, Any]:
    request = json.dumps({"user_id": users[0]} if len(users) == 1 else [{"user_id": u} for u in users])
    response = json.dumps({"model_version": version, "scores": scores, "user_ids": users})
    return capture_record(request, response, event_id=event_id, inference_id=event_id, inference_time=at)


def _base64(record: dict[str, Any]) -> dict[str, Any]:
    """The same capture as SageMaker writes it for a content type not listed as JSON."""
    output = record["captureData"]["endpointOutput"]
    output["data"] = base64.b64encode(output["data"].encode()).decode()
    output["encoding"] = "BASE64"
    return record


def _write_captures(root: Path, lines: list[str]) -> Path:
    key = capture_key("mlp-dev-inference", "AllTraffic", CUTOFF, "capture-1.jsonl")
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return root / "serving/data-capture/mlp-dev-inference/"


@pytest.fixture
def captured(tmp_path: Path) -> Path:
    u1_latest = _capture(["u1"], [0.7], CUTOFF - timedelta(days=2), "e-u1-latest")
    lines = [
        capture_line(_capture(["u1"], [0.2], CUTOFF - timedelta(days=10), "e-u1-older", version="v1")),
        capture_line(u1_latest),
        capture_line(u1_latest),  # delivered twice
        capture_line(_capture(["u1"], [0.9], CUTOFF + timedelta(hours=1), "e-u1-after")),  # after the cutoff
        capture_line(_capture(["u2"], [0.4], CUTOFF - timedelta(days=40), "e-u2-too-old")),
        capture_line(_base64(_capture(["u4"], [0.1], CUTOFF - timedelta(days=1), "e-u4"))),
        capture_line(_capture(["u5", "u6"], [0.3, 0.6], CUTOFF - timedelta(days=3), "e-batch")),
        "{this is not json\n",
        capture_line(_capture(["u7"], [], CUTOFF - timedelta(days=1), "e-mismatch")),
    ]
    return _write_captures(tmp_path, lines)


def _labels(spark: Any, users: list[str]) -> Any:
    return spark.createDataFrame([(u, RENEWAL, u in ("u1", "u6"), LABEL_TIME) for u in users], LABELS_DDL)


@pytest.mark.spark
def test_each_label_gets_its_users_latest_prediction_before_the_cutoff(spark: Any, captured: Path) -> None:
    # Given captures (JSON and BASE64, single and batch, duplicated, late, too old, broken) and labels
    captures = read_captures(spark, str(captured)).cache()
    predictions, rejects = split_captures(captures)
    labels = _labels(spark, ["u1", "u2", "u3", "u4", "u5", "u6"])

    # When they are joined
    labelled = labelled_production(labels, predictions, max_lead=timedelta(days=35))
    rows = {r["user_id"]: r.asDict() for r in labelled.collect()}

    # Then u1 gets its latest prediction before the cutoff (not the one after it, nor the older one)
    assert rows["u1"]["score"] == 0.7 and rows["u1"]["model_version"] == "v2"
    assert rows["u1"]["event_id"] == "e-u1-latest"
    assert rows["u1"]["lead_days"] == pytest.approx(2.0)
    assert rows["u1"]["churned"] is True and rows["u1"]["label_date"] == "2026-03-31"
    # And a BASE64 capture and both records of a batch capture are read
    assert (rows["u4"]["score"], rows["u5"]["score"], rows["u6"]["score"]) == (0.1, 0.3, 0.6)
    # And a prediction older than the maximum lead, or no prediction at all, labels nothing
    assert set(rows) == {"u1", "u4", "u5", "u6"}
    assert labelled.columns == [*PRODUCTION_LABELLED.field_names[:-1], "lead_days", "label_date"]
    # And unreadable lines are kept with their reason, while a line delivered twice counts once
    reasons = sorted(r["reason"] for r in rejects.collect())
    assert reasons == ["not a JSON capture line", "the endpoint output has different numbers of scores and user_ids"]
    assert predictions.where("event_id = 'e-u1-latest'").count() == 1
    captures.unpersist()


def _scores(rng: np.random.Generator, labels: np.ndarray, signal: float) -> np.ndarray:
    return np.clip(0.2 + signal * labels + rng.normal(0, 0.2, labels.size), 0.001, 0.999)


def test_quality_below_the_floor_on_enough_rows_starts_retraining() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(400) < 0.2).astype(int)
    good = model_quality("v2", labels.tolist(), _scores(rng, labels, 0.5).tolist())
    bad = model_quality("v2", labels.tolist(), _scores(rng, labels, 0.0).tolist())

    assert good.pr_auc is not None and good.pr_auc > 0.8
    assert retrain_decision(good, pr_auc_min=0.3, min_rows=200).start is False
    assert bad.pr_auc is not None and bad.pr_auc < 0.3
    decision = retrain_decision(bad, pr_auc_min=0.3, min_rows=200)
    assert decision.start is True and "below 0.3" in decision.reason
    one_class = model_quality("v2", [0] * 300, [0.1] * 300)
    assert retrain_decision(one_class, pr_auc_min=0.3, min_rows=200).start is False


def test_quality_is_reported_per_model_version_the_serving_one_first() -> None:
    # Given labelled rows of an older version and of the version serving now
    rng = np.random.default_rng(11)
    labels = (rng.random(600) < 0.2).astype(int)
    window = pd.DataFrame(
        {
            "model_version": ["v1"] * 300 + ["v2"] * 300,
            "inference_time": pd.to_datetime(["2026-02-01"] * 300 + ["2026-02-20"] * 300, utc=True),
            "label": labels,
            "score": _scores(rng, labels, 0.5),
        }
    )

    # When quality is measured
    reports = quality_by_version(window)

    # Then the serving version comes first, each with its own rows and metrics
    assert [(r.model_version, r.rows) for r in reports] == [("v2", 300), ("v1", 300)]
    assert all(r.pr_auc is not None and r.pr_auc > 0.5 for r in reports)


def test_publishing_puts_the_metric_the_alarm_watches_and_starts_training_once() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random(400) < 0.2).astype(int)
    report = model_quality("v2", labels.tolist(), _scores(rng, labels, 0.0).tolist())
    result = FeedbackResult(
        as_of=datetime(2026, 4, 1, tzinfo=UTC),
        counts={},
        reports=[report],
        decision=retrain_decision(report, pr_auc_min=0.3, min_rows=200),
    )
    settings = FeedbackSettings("mlp-dev-inference", "mlp-dev-training", "mlp-dev-churn", 0.3, 200, 35, 7, 30)
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        sagemaker.create_pipeline(
            PipelineName="mlp-dev-training",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn="arn:aws:iam::123456789012:role/mlp-dev-training",
        )

        first = publish(result, settings, cloudwatch=cloudwatch, sagemaker=sagemaker, s3=s3)
        metrics = cloudwatch.list_metrics(Namespace=MODEL_QUALITY_NAMESPACE, MetricName=MODEL_QUALITY_METRIC)["Metrics"]

    assert first is not None and "mlp-dev-training" in first
    assert {"Name": "EndpointName", "Value": "mlp-dev-inference"} in [d for m in metrics for d in m["Dimensions"]]
    assert [m["Dimensions"] for m in metrics if len(m["Dimensions"]) == 1] == [
        [{"Name": "EndpointName", "Value": "mlp-dev-inference"}]
    ]
