"""Glue tables of the curated feature datasets and the Athena named queries."""

from __future__ import annotations

import pytest

import athena
from platform_core.config import load_config
from platform_core.names import Names
from platform_core.schema import glue_columns
from platform_core.schemas.cdc import CHURN_LABEL
from platform_core.schemas.features import (
    FEATURE_GROUPS,
    SNAPSHOT_PARTITION,
    TRAINING_SET_PREFIX,
    USER_CLICKSTREAM,
    USER_SUBSCRIPTION,
)
from platform_core.schemas.training import CUTOFF_TIME, KEY, LABEL
from stacks.constructs.feature_catalog import (
    TRAINING_SET_TABLE,
    snapshot_table_name,
    training_set_schema,
)
from tests.feature_stack.conftest import flatten, resources

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth]


def _table(template, name: str) -> dict:
    """A Glue table's properties by table name, intrinsics flattened (locations read as text)."""
    for resource in resources(template, "AWS::Glue::Table").values():
        if resource["Properties"]["TableInput"]["Name"] == name:
            return flatten(resource["Properties"])
    raise AssertionError(f"no table {name}")


@pytest.mark.parametrize("group", FEATURE_GROUPS, ids=lambda g: g.name)
def test_snapshot_tables_have_the_group_features_and_a_projected_day_partition(dev, group):
    # Given the snapshot table of a feature group
    table = _table(dev, snapshot_table_name(group))["TableInput"]
    # Then its columns are the group's features, in order, with the schema package's types
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [(c["name"], c["type"]) for c in glue_columns(group.schema())]
    # And it is partitioned by the snapshot's day, projected so that a new day needs no crawler
    assert [(p["Name"], p["Type"]) for p in table["PartitionKeys"]] == [(SNAPSHOT_PARTITION, "string")]
    parameters = table["Parameters"]
    assert parameters["classification"] == "parquet"
    assert parameters["projection.enabled"] == "true"
    assert parameters[f"projection.{SNAPSHOT_PARTITION}.type"] == "date"
    assert parameters[f"projection.{SNAPSHOT_PARTITION}.format"] == "yyyy-MM-dd"
    assert parameters[f"projection.{SNAPSHOT_PARTITION}.range"].endswith(",NOW")
    location = table["StorageDescriptor"]["Location"]
    assert location.startswith("s3://mlp-dev-curated-") and location.endswith(f"/{group.snapshot_prefix}")
    assert parameters["storage.location.template"] == f"{location}{SNAPSHOT_PARTITION}=${{{SNAPSHOT_PARTITION}}}/"


def test_training_set_table_is_the_training_pipelines_contract_then_each_groups_features(dev):
    table = _table(dev, TRAINING_SET_TABLE)["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [(c["name"], c["type"]) for c in glue_columns(training_set_schema())]
    # The key, the cutoff and the label the pipeline's scripts read, with the types they expect
    assert columns[:3] == [(KEY, "string"), (CUTOFF_TIME, "timestamp"), (LABEL, "int")]
    assert [name for name, _ in columns[3:]] == [*USER_CLICKSTREAM.value_names, *USER_SUBSCRIPTION.value_names]
    assert "PartitionKeys" not in table or table["PartitionKeys"] == []
    assert table["StorageDescriptor"]["Location"].endswith(f"/{TRAINING_SET_PREFIX}")


@pytest.mark.spark
def test_training_set_table_matches_what_the_job_writes(spark):
    # Given empty inputs with the schemas the job reads (labels and both groups' snapshots)
    from datetime import timedelta

    from glue_jobs.clickstream_features import spark_ddl
    from glue_jobs.training_set import build

    labels = spark.createDataFrame([], spark_ddl(CHURN_LABEL.fields))
    snapshots = {
        group.name: spark.createDataFrame([], spark_ddl(group.features))
        for group in (USER_CLICKSTREAM, USER_SUBSCRIPTION)
    }
    # When the job's own join builds the training set
    written = build(labels, snapshots, lead=timedelta(days=7), max_age=timedelta(days=8))
    # Then the Glue table describes exactly its columns and types
    assert [(f.name, f.dataType.simpleString()) for f in written.schema.fields] == [
        (c["name"], c["type"]) for c in glue_columns(training_set_schema())
    ]


def test_every_sql_file_is_a_named_query_rendered_for_the_lake_database(dev):
    names = Names(load_config("dev"))
    queries = {q["Properties"]["Name"]: q["Properties"] for q in resources(dev, "AWS::Athena::NamedQuery").values()}
    assert sorted(queries) == athena.query_names()
    assert len(queries) >= 3
    for name, query in queries.items():
        assert query["QueryString"] == athena.render(name, names.glue_database)
        assert "{database}" not in query["QueryString"]
        assert query["Database"] == names.glue_database
        assert query["WorkGroup"] == names.athena_workgroup
        assert query["Description"] == athena.DESCRIPTIONS[name]


def test_prod_queries_read_the_prod_database(prod):
    databases = {q["Properties"]["Database"] for q in resources(prod, "AWS::Athena::NamedQuery").values()}
    assert databases == {"mlp_prod_lake"}
