"""What the alarms watch is derived from names, so it is known before the other stacks exist."""

from __future__ import annotations

import dataclasses

import pytest
from aws_cdk import App, Stack

from platform_core.config import load_config
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
        "mlp-prod-online-features-rejects",
    )
    assert watched.glue_job_prefix == "mlp-prod-"
    assert watched.state_machines == ("mlp-prod-orchestration",)
    assert watched.pipelines == ("mlp-prod-training",)
    assert (watched.endpoint, watched.endpoint_variant) == ("mlp-prod-inference", "AllTraffic")
    assert (watched.search_domain, watched.search_volume_gb) == ("mlp-prod-search", 100)


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
