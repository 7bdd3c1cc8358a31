"""Glue tables of the curated feature datasets, and the Athena named queries over the lake.

Every table is derived from the schema package: a feature group's snapshot table from the group
(:meth:`FeatureGroup.schema`) plus its ``snapshot_date`` partition, and the training set from the
training label schema (``platform_core.schemas.training``: the columns the training pipeline reads)
plus each group's feature values, in the order the training set job writes them.
Partitions are projected (no crawler, no ``MSCK REPAIR``): a new daily snapshot is queryable the
moment the job has written it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from aws_cdk import aws_athena
from constructs import Construct

import athena as athena_queries
from platform_core.schema import Field, Primitive, Schema
from platform_core.schemas.features import (
    SNAPSHOT_PARTITION,
    TRAINING_SET_PREFIX,
    USER_CLICKSTREAM,
    USER_SUBSCRIPTION,
    FeatureGroup,
)
from platform_core.schemas.training import TRAINING_LABEL
from stacks.constructs.lake_table import LakeTable

# The first snapshot date the projection offers (the clickstream contract rejects events before 2000).
PROJECTION_START = "2000-01-01"

TRAINING_SET_TABLE = "training_set"


def snapshot_table_name(group: FeatureGroup) -> str:
    """Glue table of a group's daily Parquet snapshots, e.g. ``user_clickstream_features``."""
    return f"{group.name.replace('-', '_')}_features"


def snapshot_schema(group: FeatureGroup) -> Schema:
    """The group's features, partitioned by the day the snapshot is as of."""
    partition = Field(SNAPSHOT_PARTITION, Primitive.STRING, doc="UTC date (YYYY-MM-DD) of the snapshot's as_of")
    return dataclasses.replace(group.schema(), partition_keys=(partition,))


def training_set_schema(groups: Sequence[FeatureGroup] = (USER_CLICKSTREAM, USER_SUBSCRIPTION)) -> Schema:
    """The training label's columns (key, cutoff, label), then each group's feature values (as of
    the latest snapshot at or before the cutoff)."""
    fields: list[Field] = list(TRAINING_LABEL.fields)
    for group in groups:
        fields.extend(group.feature(name) for name in group.value_names)
    return Schema(
        name="TrainingSet",
        namespace=TRAINING_LABEL.namespace,
        doc="Churn labels joined point-in-time with the feature snapshots (no feature is newer than its label's cutoff).",
        fields=tuple(fields),
    )


def daily_projection(location: str, column: str = SNAPSHOT_PARTITION) -> dict[str, str]:
    """Partition projection for ``<column>=YYYY-MM-DD/`` partitions up to today."""
    return {
        "projection.enabled": "true",
        f"projection.{column}.type": "date",
        f"projection.{column}.format": "yyyy-MM-dd",
        f"projection.{column}.range": f"{PROJECTION_START},NOW",
        f"projection.{column}.interval": "1",
        f"projection.{column}.interval.unit": "DAYS",
        "storage.location.template": f"{location}{column}=${{{column}}}/",
    }


class FeatureCatalog(Construct):
    """Tables of the feature snapshots and the training set, and the lake's named queries."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalog_id: str,
        database_name: str,
        curated_bucket_name: str,
        workgroup_name: str,
        groups: Sequence[FeatureGroup] = (USER_CLICKSTREAM, USER_SUBSCRIPTION),
    ) -> None:
        super().__init__(scope, construct_id)
        curated = f"s3://{curated_bucket_name}/"
        self.snapshot_tables: dict[str, LakeTable] = {}
        for group in groups:
            location = f"{curated}{group.snapshot_prefix}"
            construct = group.name.title().replace("-", "") + "SnapshotsTable"
            self.snapshot_tables[group.name] = LakeTable(
                self,
                construct,
                catalog_id=catalog_id,
                database_name=database_name,
                table_name=snapshot_table_name(group),
                schema=snapshot_schema(group),
                location=location,
                parameters=daily_projection(location),
            )
        # Rebuilt whole by every run (overwrite), so it has no partitions.
        self.training_set_table = LakeTable(
            self,
            "TrainingSetTable",
            catalog_id=catalog_id,
            database_name=database_name,
            table_name=TRAINING_SET_TABLE,
            schema=training_set_schema(groups),
            location=f"{curated}{TRAINING_SET_PREFIX}",
        )
        self.named_queries = self._named_queries(database_name, workgroup_name)

    def _named_queries(self, database_name: str, workgroup_name: str) -> dict[str, aws_athena.CfnNamedQuery]:
        """One named query per ``athena/queries/*.sql``, rendered for this environment's database."""
        queries = {}
        for name in athena_queries.query_names():
            construct = "".join(part.capitalize() for part in name.split("_")) + "Query"
            queries[name] = aws_athena.CfnNamedQuery(
                self,
                construct,
                name=name,
                database=database_name,
                work_group=workgroup_name,
                description=athena_queries.DESCRIPTIONS.get(name, f"athena/queries/{name}.sql"),
                query_string=athena_queries.render(name, database_name),
            )
        return queries
