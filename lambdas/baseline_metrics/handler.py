"""Lambda entry point: invoked by the feature orchestration's state machine (``LambdaInvoke``)
right before it starts the training pipeline.

The event is the payload the state machine sends (``{"execution": <its execution id>}``, used
only to tie the log line to the run). The answer is what the state machine passes on as the
pipeline's ``BaselinePrAuc`` parameter::

    {"baseline_pr_auc": "0.8123", "model_package_arn": "arn:...:model-package/mlp-dev-churn/7",
     "source": "evaluation"}

``baseline_pr_auc`` is a string because pipeline parameter values are strings; it is ``"0.0"``
(with ``model_package_arn`` null and ``source`` ``"none"``) while no model is approved. When the
approved model's PR-AUC cannot be known the function raises (``MetricMissingError`` or
``MetricUnreadableError``, the reason in the message): the state machine notifies the failure
instead of training against a wrong bar.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from lambdas.baseline_metrics import clients
from lambdas.baseline_metrics.settings import get_settings
from platform_core.model_baseline import Baseline, approved_baseline

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    baseline = approved_baseline(settings.model_package_group, sagemaker=clients.sagemaker(), s3=clients.s3())
    answer = response(baseline)
    execution = event.get("execution") if isinstance(event, Mapping) else None
    logger.info("baseline for %s: %s", execution, json.dumps(answer))
    return answer


def response(baseline: Baseline) -> dict[str, Any]:
    """What the state machine reads (``$.Payload``)."""
    return {
        "baseline_pr_auc": baseline.parameter_value,
        "model_package_arn": baseline.model_package_arn,
        "source": baseline.source,
    }
