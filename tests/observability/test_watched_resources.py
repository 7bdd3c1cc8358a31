"""What the alarms watch is derived from names, so it is known before the other stacks exist."""

from __future__ import annotations

import dataclasses

import pytest
from aws_cdk import App, Stack

from platform_core.config import load_config
from platform_core.schemas.features import FEATURE_GROUPS
from stacks.constructs.platform_alarms import WatchedResources, function_name
from stacks.observability_stack import DEAD_LETTER_QUEUE_OWNERS, platform_functions

pytestmark = pytest.mark.xdist_group("cdk")


def test_the_platform_is_watched_by_its_physical_names():
    watched = WatchedResources.of_platform(
        load_config("prod"),
        functions=["cdc_processor", "online_features"],
        dead_letter_queue_owners=DEAD_LETTER_QUEUE_OWNERS,
        extra_queues=("mlp-prod-online-features-rejects",),
    )
    assert watched.streams == ("mlp-prod-clickstream", "mlp-prod-cdc")
    assert watched.lake_deliveries == ("mlp-prod-clickstream-to-lake",)
    assert watched.search_deliveries == ("mlp-prod-clickstream-to-search",)
    assert watched.functions == ("mlp-prod-cdc-processor", "mlp-prod-online-features")
    assert watched.queues == (
        "mlp-prod-cdc-processor-dlq",
        "mlp-prod-online-features-dlq",
        "mlp-prod-video-ingest-dlq",
        "mlp-prod-model-deployer-dlq",
        "mlp-prod-online-features-rejects",
    )
    assert watched.glue_job_prefix == "mlp-prod-"
    assert watched.state_machines == (
        "mlp-prod-orchestration",
        "mlp-prod-batch-scoring",
        "mlp-prod-inference-data-quality-setup",
    )
    assert watched.pipelines == ("mlp-prod-training",)
    assert (watched.endpoint, watched.endpoint_variant) == ("mlp-prod-inference", "AllTraffic")
    assert (watched.search_domain, watched.search_volume_gb) == ("mlp-prod-search", 100)


def test_serving_is_watched_by_name_with_its_functions_timeouts_from_the_configuration():
    # Given prod, whose endpoint runs on instances with Model Monitor on
    config = load_config("prod")
    # When the platform's watched resources are derived
    watched = WatchedResources.of_platform(config, functions=[], dead_letter_queue_owners=[])
    # Then the two serving functions are watched against their own timeouts
    assert dict(watched.function_timeouts) == {
        "mlp-prod-model-deployer": config.serving.deployer.timeout_seconds,
        "mlp-prod-inference-api": config.serving.api_function.timeout_seconds,
    }
    assert watched.function_timeouts["mlp-prod-inference-api"] == 10
    # And the API by its REST API name, and Model Monitor by its schedule over every feature
    assert watched.api == "mlp-prod-inference-api"
    assert watched.monitoring_schedule == "mlp-prod-inference-data-quality"
    features = [name for group in FEATURE_GROUPS for name in group.value_names]
    assert list(watched.monitored_features) == features
    assert "user_id" not in watched.monitored_features


def test_without_model_monitor_no_drift_and_no_set_up_workflow_is_watched():
    # Given dev: a serverless endpoint, which captures nothing, so Model Monitor is off
    watched = WatchedResources.of_platform(load_config("dev"), functions=[], dead_letter_queue_owners=[])
    # Then batch scoring is watched but nothing of Model Monitor
    assert watched.state_machines == ("mlp-dev-orchestration", "mlp-dev-batch-scoring")
    assert watched.monitoring_schedule is None
    assert watched.monitored_features == ()


def test_without_opensearch_nothing_search_related_is_watched():
    config = load_config("dev")
    config = dataclasses.replace(
        config, observability=dataclasses.replace(config.observability, opensearch_enabled=False)
    )
    watched = WatchedResources.of_platform(config, functions=[], dead_letter_queue_owners=[])
    assert watched.search_deliveries == ()
    assert watched.search_domain is None


def test_every_lambda_folder_is_a_watched_function():
    functions = platform_functions(include_search=True)
    assert {"clickstream_transform", "cdc_processor", "dashboards_import"} <= set(functions)
    assert "dashboards_import" not in platform_functions(include_search=False)


def test_function_names_and_arns_both_give_the_metric_dimension():
    assert function_name("mlp-dev-cdc-processor") == "mlp-dev-cdc-processor"
    assert function_name("arn:aws:lambda:eu-west-1:123456789012:function:mlp-dev-cdc-processor") == (
        "mlp-dev-cdc-processor"
    )


def test_an_unresolved_arn_is_split_by_cloudformation():
    stack = Stack(App(), "S")
    arn = stack.format_arn(service="lambda", resource="function", resource_name="mlp-dev-x")
    resolved = stack.resolve(function_name(arn))
    assert resolved["Fn::Select"][0] == 6
    assert "Fn::Split" in resolved["Fn::Select"][1]
