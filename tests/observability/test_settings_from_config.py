"""Alarm thresholds and the search Firehose's retry duration come from the configuration.

Both environments use the defaults of ``ObservabilityConfig``, so a construct that hard-coded
them would still pass the stack tests. Here every setting is moved off its default and the
synthesised alarms and delivery stream must follow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from platform_core.config import ObservabilityConfig, PlatformConfig
from stacks.observability_stack import ObservabilityStack
from tests.infra.harness import build_stack

pytestmark = pytest.mark.xdist_group("cdk")

# Every value differs from the default (checked below), so a hard-coded number cannot match.
CHANGED: dict[str, Any] = {
    "stream_iterator_age_seconds": 123,
    "stream_write_throttle_threshold": 7,
    "firehose_freshness_seconds": 456,
    "firehose_processing_success_min": 0.95,
    "lambda_error_threshold": 3,
    "lambda_throttle_threshold": 4,
    "lambda_duration_timeout_fraction": 0.6,
    "dlq_depth_threshold": 2,
    "endpoint_5xx_threshold": 11,
    "endpoint_latency_ms": 321,
    "model_pr_auc_min": 0.45,
    "inference_api_5xx_threshold": 13,
    "inference_api_latency_p99_ms": 1500,
    "opensearch_free_storage_min_fraction": 0.4,
    "opensearch_jvm_pressure_max_percent": 70,
    "feature_drift_max": 0.2,
    "feature_drift_periods": 5,
    "opensearch_retry_seconds": 1234,
    "opensearch_buffer_interval_seconds": 120,
    "opensearch_buffer_size_mb": 10,
}


def _changed(config: PlatformConfig) -> PlatformConfig:
    return dataclasses.replace(config, observability=dataclasses.replace(config.observability, **CHANGED))


@pytest.fixture(scope="module")
def prod() -> Template:
    # prod: the only environment with every alarm (Model Monitor's drift alarms included).
    stack = build_stack(
        lambda app, config, env: ObservabilityStack(app, "Observability", config=_changed(config), env=env), "prod"
    )
    return Template.from_stack(stack)


def _alarm(template: Template, name: str) -> dict[str, Any]:
    found = template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": name}})
    assert len(found) == 1, f"alarm {name!r}: {len(found)}"
    return dict(next(iter(found.values()))["Properties"])


def test_every_changed_setting_is_off_its_default():
    defaults = ObservabilityConfig()
    assert {name: getattr(defaults, name) for name in CHANGED if getattr(defaults, name) == CHANGED[name]} == {}


@pytest.mark.parametrize(
    ("alarm", "threshold"),
    [
        ("mlp-prod-clickstream iterator age", 123 * 1000),  # milliseconds
        ("mlp-prod-cdc write throttles", 7),
        ("mlp-prod-clickstream-to-lake data freshness", 456),
        ("mlp-prod-clickstream-to-search data freshness", 456),
        ("mlp-prod-clickstream-to-lake processing failures", 0.95),
        ("mlp-prod-clickstream-to-search processing failures", 0.95),
        ("mlp-prod-cdc-processor errors", 3),
        ("mlp-prod-clickstream-transform-search throttles", 4),
        ("mlp-prod-inference-api duration near timeout", 10 * 1000 * 0.6),  # of its 10 s timeout
        ("mlp-prod-model-deployer duration near timeout", 120 * 1000 * 0.6),
        ("mlp-prod-online-features-dlq depth", 2),
        ("mlp-prod-inference 5xx errors", 11),
        ("mlp-prod-inference p99 model latency", 321 * 1000),  # microseconds
        ("mlp-prod-inference model quality (PR AUC)", 0.45),
        ("mlp-prod-inference-api 5xx errors", 13),
        ("mlp-prod-inference-api p99 latency", 1500),
        ("mlp-prod-search free storage", 100 * 1024 * 0.4),  # MiB of a 100 GiB volume
        ("mlp-prod-search JVM memory pressure", 70),
    ],
)
def test_alarm_thresholds_follow_the_configuration(prod, alarm, threshold):
    assert _alarm(prod, alarm)["Threshold"] == pytest.approx(threshold)


def test_drift_alarms_follow_the_configured_distance_and_hours(prod):
    found = prod.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": Match.string_like_regexp("feature drift")}}
    )
    assert found
    for resource in found.values():
        alarm = resource["Properties"]
        assert alarm["Threshold"] == 0.2
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 5


def test_search_firehose_retries_and_buffers_as_configured(prod):
    (stream,) = prod.find_resources("AWS::KinesisFirehose::DeliveryStream").values()
    destination = stream["Properties"]["AmazonopensearchserviceDestinationConfiguration"]
    assert destination["RetryOptions"] == {"DurationInSeconds": 1234}
    assert destination["BufferingHints"] == {"IntervalInSeconds": 120, "SizeInMBs": 10}
