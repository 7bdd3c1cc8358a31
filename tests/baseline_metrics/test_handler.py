"""The baseline_metrics Lambda: the state machine's payload in, the start's parameter value out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lambdas.baseline_metrics import clients, handler
from lambdas.baseline_metrics.settings import Settings, get_settings
from platform_core.model_baseline import MetricMissingError
from tests.baseline_metrics.registry import GROUP, Registry, evaluation_report, pr_auc_of

# What the state machine sends (ResolveBaseline's Payload: {"execution.$": "$$.Execution.Id"}).
EVENT = {"execution": "arn:aws:states:us-east-1:123456789012:execution:mlp-dev-orchestration:2c3f7e0a"}


@pytest.fixture(autouse=True)
def fresh_function(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A cold start: settings and clients made anew inside the test's moto account."""
    monkeypatch.setenv("MODEL_PACKAGE_GROUP", GROUP)
    for cached in (get_settings, clients.sagemaker, clients.s3):
        cached.cache_clear()
    yield
    for cached in (get_settings, clients.sagemaker, clients.s3):
        cached.cache_clear()


def test_the_answer_carries_the_approved_models_pr_auc_as_a_parameter_value(registry: Registry) -> None:
    arn = registry.register(execution="e1", report=evaluation_report(5))
    answer = handler.handler(EVENT, None)
    assert answer == {
        "baseline_pr_auc": repr(pr_auc_of(evaluation_report(5))),
        "model_package_arn": arn,
        "source": "evaluation",
    }


def test_before_any_approval_the_answer_is_zero(registry: Registry) -> None:
    registry.register(execution="e1", report=evaluation_report(5), status="PendingManualApproval")
    assert handler.handler(EVENT, None) == {"baseline_pr_auc": "0.0", "model_package_arn": None, "source": "none"}


def test_a_baseline_that_cannot_be_known_fails_the_invocation(registry: Registry) -> None:
    # The error's type becomes the state machine's error name; its message, the notified cause.
    registry.register(execution="e1", report=None)
    with pytest.raises(MetricMissingError, match="records no PR-AUC"):
        handler.handler(EVENT, None)


def test_settings_need_the_group() -> None:
    assert Settings.from_env({"MODEL_PACKAGE_GROUP": "mlp-prod-churn"}).model_package_group == "mlp-prod-churn"
    with pytest.raises(ValueError, match="MODEL_PACKAGE_GROUP"):
        Settings.from_env({})
