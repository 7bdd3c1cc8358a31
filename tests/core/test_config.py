"""The typed per-environment configuration."""

from __future__ import annotations

import dataclasses

import pytest

from platform_core.config import (
    ConsumerConfig,
    FirehoseConfig,
    LakeConfig,
    PlatformConfig,
    StreamConfig,
    load_config,
)
from platform_core.names import Names


def test_dev_and_prod_differ_where_production_needs_it():
    dev, prod = load_config("dev"), load_config("prod")
    assert dev.serving.serverless and not prod.serving.serverless
    assert prod.serving.min_instances >= 2
    assert prod.observability.opensearch_multi_az and prod.observability.opensearch_dedicated_masters
    assert prod.termination_protection and not dev.termination_protection
    assert prod.cdc.db_reader and prod.cdc.dms_multi_az


def test_unknown_environment_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown environment 'staging'; expected one of: dev, prod"):
        load_config("staging")


def test_destroy_flag_is_explicit_and_dev_only():
    assert load_config("dev").destroy_data_on_teardown is False
    assert load_config("dev", destroy_data_on_teardown=True).destroy_data_on_teardown is True
    with pytest.raises(ValueError):
        load_config("prod", destroy_data_on_teardown=True)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_config("dev").prefix = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "build",
    [
        lambda: StreamConfig(mode="SOMETIMES"),  # type: ignore[arg-type]
        lambda: StreamConfig(retention_hours=12),
        lambda: ConsumerConfig(parallelization_factor=11),
        lambda: ConsumerConfig(max_record_age_seconds=10**7),
        lambda: FirehoseConfig(buffer_size_mb=32),
        lambda: LakeConfig(raw_infrequent_access_after_days=10),
        lambda: LakeConfig(raw_infrequent_access_after_days=60, raw_glacier_after_days=40),
        lambda: PlatformConfig(env_name="dev", prefix="Bad_Prefix"),
    ],
)
def test_impossible_settings_fail_early(build):
    with pytest.raises(ValueError):
        build()


def test_names_derive_from_the_prefix():
    names = Names(load_config("prod"))
    assert names.clickstream_stream == "mlp-prod-clickstream"
    assert names.glue_database == "mlp_prod_lake"
    assert names.bucket("raw", account="123456789012", region="eu-west-1") == "mlp-prod-raw-123456789012-eu-west-1"
    with pytest.raises(ValueError, match="unknown bucket purpose"):
        names.bucket("scratch", account="1", region="r")
