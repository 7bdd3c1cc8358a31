"""Arrow schemas derived from :mod:`platform_core.schema`, for writing and reading Parquet locally.

The Arrow types mirror the Glue types Firehose's Parquet conversion writes (``glue_type``), so a
file written locally and one written by Firehose read back the same. Import this module only where
pyarrow is installed (the local runtime, the Glue jobs, tests), never in a Lambda function.
"""

from __future__ import annotations

import pyarrow as pa

from platform_core.schema import Field, FieldType, MapOf, Primitive, Schema

_ARROW_PRIMITIVES: dict[Primitive, pa.DataType] = {
    Primitive.STRING: pa.string(),
    Primitive.INT: pa.int32(),
    Primitive.LONG: pa.int64(),
    Primitive.DOUBLE: pa.float64(),
    Primitive.BOOLEAN: pa.bool_(),
    # Millisecond instants in UTC, as the schema defines a timestamp.
    Primitive.TIMESTAMP: pa.timestamp("ms", tz="UTC"),
    Primitive.DATE: pa.date32(),
}


def arrow_type(t: FieldType) -> pa.DataType:
    """The Arrow type of a schema field type."""
    if isinstance(t, Primitive):
        return _ARROW_PRIMITIVES[t]
    if isinstance(t, MapOf):
        return pa.map_(pa.string(), _ARROW_PRIMITIVES[t.values])
    return pa.struct([arrow_field(f) for f in t.fields])


def arrow_field(f: Field) -> pa.Field:
    """Required fields are non-nullable, so Arrow refuses a null where the schema forbids one."""
    return pa.field(f.name, arrow_type(f.type), nullable=not f.required)


def arrow_schema(schema: Schema, *, with_partition_keys: bool = False) -> pa.Schema:
    """The Arrow schema of a dataset's rows.

    Partition keys live in the path (``year=2024/...``), not in the files, so they are left out
    unless ``with_partition_keys`` asks for them (e.g. to read a Hive-partitioned dataset).
    """
    fields = [arrow_field(f) for f in schema.fields]
    if with_partition_keys:
        fields += [arrow_field(f) for f in schema.partition_keys]
    return pa.schema(fields)
