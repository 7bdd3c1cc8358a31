"""The documents the provisioning puts into OpenSearch: mapping, retention, security, audit."""

from __future__ import annotations

import dataclasses

import pytest

from observability.index_template import clickstream_index_template, field_paths, schema_mapping
from observability.retention import retention_policy
from observability.security import (
    DASHBOARDS_READ_ONLY_ROLE,
    READER_ROLE,
    WRITER_ROLE,
    audit_config,
    role_mappings,
    security_roles,
)
from platform_core.config import ObservabilityConfig, load_config
from platform_core.schema import MapOf, StructOf
from platform_core.schemas.clickstream import CLICKSTREAM_RAW


def test_the_mapping_covers_every_field_of_the_schema_and_nothing_else():
    mapping = schema_mapping(CLICKSTREAM_RAW)
    assert list(mapping["properties"]) == list(CLICKSTREAM_RAW.field_names)
    assert mapping["dynamic"] is False  # unknown fields stay in _source, unindexed


def test_event_time_is_a_date_read_from_epoch_milliseconds():
    properties = schema_mapping(CLICKSTREAM_RAW)["properties"]
    assert properties["event_time"] == {"type": "date", "format": "epoch_millis||strict_date_optional_time"}
    assert properties["ingested_at"]["type"] == "date"


def test_nested_request_fields_are_typed_for_aggregation():
    request = schema_mapping(CLICKSTREAM_RAW)["properties"]["request"]["properties"]
    assert request["status"] == {"type": "integer"}
    assert request["latency_ms"] == {"type": "double"}
    assert request["path"]["type"] == "keyword"
    assert set(request) == {f.name for f in CLICKSTREAM_RAW.field("request").type.fields}  # type: ignore[union-attr]


def test_free_form_properties_are_one_flat_object():
    assert isinstance(CLICKSTREAM_RAW.field("properties").type, MapOf)
    assert schema_mapping(CLICKSTREAM_RAW)["properties"]["properties"] == {"type": "flat_object"}


def test_field_paths_are_dotted_for_nested_fields():
    paths = field_paths(CLICKSTREAM_RAW)
    assert {"request.method", "request.path", "request.query", "request.status", "request.latency_ms"} <= set(paths)
    assert isinstance(paths["request"], StructOf)


@pytest.mark.parametrize(("env", "shards", "replicas"), [("dev", 1, 0), ("prod", 3, 2)])
def test_the_template_follows_the_domains_shape(env, shards, replicas):
    template = clickstream_index_template(load_config(env))
    assert template["index_patterns"] == ["clickstream-*"]
    assert template["template"]["settings"] == {"number_of_shards": shards, "number_of_replicas": replicas}


def test_indices_are_deleted_after_the_configured_retention():
    config = load_config("dev")
    config = dataclasses.replace(
        config, observability=dataclasses.replace(config.observability, opensearch_retention_days=9)
    )
    policy = retention_policy(config)["policy"]
    hot, delete = policy["states"]
    assert hot["transitions"] == [{"state_name": "delete", "conditions": {"min_index_age": "9d"}}]
    assert delete["actions"] == [{"delete": {}}]
    assert policy["ism_template"] == [{"index_patterns": ["clickstream-*"], "priority": 100}]


def test_the_reader_can_only_read_and_only_clickstream():
    reader = security_roles()[READER_ROLE]
    assert reader["cluster_permissions"] == ["cluster_composite_ops_ro"]
    assert reader["index_permissions"] == [{"index_patterns": ["clickstream-*"], "allowed_actions": ["read"]}]
    assert reader["tenant_permissions"] == [
        {"tenant_patterns": ["global_tenant"], "allowed_actions": ["kibana_all_read"]}
    ]


def test_the_writer_writes_clickstream_indices_only_and_cannot_delete_them():
    writer = security_roles()[WRITER_ROLE]
    (permission,) = writer["index_permissions"]
    assert permission["index_patterns"] == ["clickstream-*"]
    assert "crud" in permission["allowed_actions"] and "create_index" in permission["allowed_actions"]
    assert not {"manage", "delete_index", "indices_all", "indices:admin/delete"} & set(permission["allowed_actions"])
    assert not {"cluster_all", "cluster_manage_index_templates"} & set(writer["cluster_permissions"])


def test_each_role_maps_to_exactly_one_iam_role():
    mappings = role_mappings(reader_role_arn="arn:reader", writer_role_arn="arn:firehose")
    assert mappings == {
        READER_ROLE: {"backend_roles": ["arn:reader"]},
        DASHBOARDS_READ_ONLY_ROLE: {"backend_roles": ["arn:reader"]},
        WRITER_ROLE: {"backend_roles": ["arn:firehose"]},
    }


def test_audit_logs_failures_and_security_changes_not_every_write():
    config = audit_config()
    assert config["enabled"] is True
    assert config["audit"]["enable_rest"] is True
    assert {"AUTHENTICATED", "GRANTED_PRIVILEGES"} <= set(config["audit"]["disabled_rest_categories"])
    assert config["audit"]["log_request_body"] is False
    assert config["compliance"]["internal_config"] is True


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"opensearch_multi_az": True, "opensearch_dedicated_masters": False}, "dedicated master"),
        (
            {"opensearch_multi_az": True, "opensearch_dedicated_masters": True, "opensearch_data_nodes": 2},
            "multiple of 3",
        ),
        (
            {"opensearch_multi_az": True, "opensearch_dedicated_masters": True, "opensearch_data_nodes": 3},
            "burstable",
        ),
        ({"opensearch_retry_seconds": 7201}, "0..7200"),
        ({"firehose_processing_success_min": 1.5}, r"\(0, 1\]"),
        ({"opensearch_dedicated_masters": True, "opensearch_master_nodes": 2}, "3 or 5"),
    ],
)
def test_impossible_search_settings_fail_at_synth(changes, message):
    with pytest.raises(ValueError, match=message):
        ObservabilityConfig(**changes)


def test_both_environments_are_valid():
    assert load_config("prod").observability.opensearch_multi_az is True
    assert load_config("dev").observability.opensearch_multi_az is False
