"""The feedback loop's retraining passes the approved model's PR-AUC too (glue_jobs/feedback.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from glue_jobs.feedback import FeedbackResult, FeedbackSettings, publish
from glue_jobs.transforms.feedback import model_quality, retrain_decision
from platform_core.model_baseline import MetricUnreadableError
from tests.baseline_metrics.registry import GROUP, Registry, evaluation_report, pr_auc_of

SETTINGS = FeedbackSettings(
    endpoint_name="mlp-dev-inference",
    pipeline_name="mlp-dev-training",
    model_package_group=GROUP,
    pr_auc_min=0.3,
    min_rows=200,
    max_lead_days=35,
    rejoin_days=7,
    quality_window_days=30,
)


def _poor_quality() -> FeedbackResult:
    """A serving model whose measured PR-AUC fell below the floor on enough rows: retrain."""
    rng = np.random.default_rng(3)
    labels = (rng.random(400) < 0.2).astype(int)
    report = model_quality("v2", labels.tolist(), rng.random(400).tolist())
    decision = retrain_decision(report, pr_auc_min=0.3, min_rows=200)
    assert decision.start
    return FeedbackResult(as_of=datetime(2026, 4, 1, tzinfo=UTC), counts={}, reports=[report], decision=decision)


def _pipeline(registry: Registry) -> None:
    registry.sagemaker.create_pipeline(
        PipelineName="mlp-dev-training",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::123456789012:role/mlp-dev-training",
    )


def _publish(registry: Registry) -> str | None:
    import boto3

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    return publish(_poor_quality(), SETTINGS, cloudwatch=cloudwatch, sagemaker=registry.sagemaker, s3=registry.s3)


def test_a_retraining_must_reach_the_approved_models_pr_auc(registry: Registry) -> None:
    # Given an approved model and the training pipeline
    _pipeline(registry)
    registry.register(execution="e1", report=evaluation_report(8))
    # When the feedback loop starts a retraining
    arn = _publish(registry)
    # Then the run's BaselinePrAuc is the approved model's test PR-AUC
    assert arn is not None
    parameters = registry.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    assert parameters["PipelineParameters"] == [
        {"Name": "BaselinePrAuc", "Value": repr(pr_auc_of(evaluation_report(8)))}
    ]


def test_no_retraining_starts_against_a_baseline_that_cannot_be_read(registry: Registry) -> None:
    # Given an approved model whose evaluation.json is not JSON
    _pipeline(registry)
    registry.register(execution="e1", report=b"<html>")
    # When the feedback loop would retrain, then it fails with the reason and starts nothing
    with pytest.raises(MetricUnreadableError, match="not JSON"):
        _publish(registry)
    summaries = registry.sagemaker.list_pipeline_executions(PipelineName="mlp-dev-training")
    assert summaries["PipelineExecutionSummaries"] == []
