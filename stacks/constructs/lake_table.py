"""Glue tables generated from the schema package, with Athena partition projection."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_glue as glue
from constructs import Construct

from platform_core.schema import Schema, glue_columns, glue_partition_keys

_PARQUET = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}


def hourly_projection(location: str, start_year: int = 2000) -> dict[str, str]:
    """Partition projection for ``year=/month=/day=/hour=`` partitions (no crawler, no MSCK)."""
    params = {
        "projection.enabled": "true",
        "projection.year.type": "integer",
        "projection.year.range": f"{start_year},2100",
        "storage.location.template": f"{location}year=${{year}}/month=${{month}}/day=${{day}}/hour=${{hour}}/",
    }
    for key, upper in (("month", 12), ("day", 31), ("hour", 23)):
        params[f"projection.{key}.type"] = "integer"
        params[f"projection.{key}.range"] = f"{0 if key == 'hour' else 1},{upper}"
        params[f"projection.{key}.digits"] = "2"
    return params


class LakeTable(Construct):
    """A Parquet table whose columns come from a :class:`Schema`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalog_id: str,
        database_name: str,
        table_name: str,
        schema: Schema,
        location: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table_name = table_name
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=catalog_id,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=table_name,
                description=schema.doc,
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "parquet.compression": "SNAPPY",
                    **(parameters or {}),
                },
                partition_keys=[glue.CfnTable.ColumnProperty(**c) for c in glue_partition_keys(schema)],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format=_PARQUET["input_format"],
                    output_format=_PARQUET["output_format"],
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=_PARQUET["serde"],
                        parameters={"serialization.format": "1"},
                    ),
                    columns=[glue.CfnTable.ColumnProperty(**c) for c in glue_columns(schema)],
                ),
            ),
        )
