"""The schema language and its derived representations."""

from __future__ import annotations

import io

import fastavro
import pytest

from platform_core.schema import (
    Field,
    MapOf,
    Primitive,
    Schema,
    StructOf,
    avro_schema,
    glue_columns,
    glue_type,
    json_schema,
    type_errors,
)
from platform_core.schemas.clickstream import CLICKSTREAM_EVENT, CLICKSTREAM_RAW, collector_request_schema

TINY = Schema(
    name="Tiny",
    namespace="test",
    fields=(
        Field("id", Primitive.STRING, required=True),
        Field("n", Primitive.INT),
        Field("tags", MapOf(Primitive.STRING)),
        Field("req", StructOf("Req", (Field("status", Primitive.INT), Field("path", Primitive.STRING)))),
    ),
)


def test_glue_types_follow_hive_spelling():
    assert glue_type(Primitive.LONG) == "bigint"
    assert glue_type(MapOf(Primitive.STRING)) == "map<string,string>"
    assert glue_type(TINY.field("req").type) == "struct<status:int,path:string>"
    assert [c["name"] for c in glue_columns(TINY)] == ["id", "n", "tags", "req"]


def test_raw_row_extends_the_input_event_without_renaming_it():
    assert CLICKSTREAM_RAW.field_names[: len(CLICKSTREAM_EVENT.field_names)] == CLICKSTREAM_EVENT.field_names
    assert [p.name for p in CLICKSTREAM_RAW.partition_keys] == ["year", "month", "day", "hour"]


def test_avro_schema_round_trips_and_optional_fields_default_to_null():
    parsed = fastavro.parse_schema(avro_schema(TINY))
    buffer = io.BytesIO()
    record = {"id": "a", "n": 3, "tags": {"k": "v"}, "req": {"status": 200, "path": "/"}}
    fastavro.schemaless_writer(buffer, parsed, record)
    buffer.seek(0)
    assert fastavro.schemaless_reader(buffer, parsed) == record
    optional = next(f for f in avro_schema(TINY)["fields"] if f["name"] == "n")
    assert optional["type"][0] == "null" and optional["default"] is None


def test_clickstream_avro_schema_is_valid():
    fastavro.parse_schema(avro_schema(CLICKSTREAM_RAW))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"id": "x"}, []),
        ({"id": "x", "n": "3"}, ["$.n: expected int, got string"]),
        ({"id": "x", "n": True}, ["$.n: expected int, got boolean"]),
        ({"id": "x", "n": 2**40}, ["$.n: integer out of 32-bit range"]),
        ({"n": 1}, ["$.id: required field missing"]),
        ({"id": "x", "tags": {"a": 1}}, ["$.tags.a: expected string, got number"]),
        ({"id": "x", "req": {"status": "ok"}}, ["$.req.status: expected int, got string"]),
        ([], ["$: expected object, got array"]),
    ],
)
def test_type_errors_name_the_path_and_the_problem(value, expected):
    assert type_errors(value, StructOf("Tiny", TINY.fields), "$") == expected


def test_json_schema_marks_required_and_nullable_fields():
    schema = json_schema(TINY)
    assert schema["required"] == ["id"]
    assert schema["properties"]["id"]["type"] == "string"
    assert schema["properties"]["n"]["type"] == ["integer", "null"]
    assert schema["properties"]["req"]["properties"]["status"]["type"] == ["integer", "null"]


def test_collector_request_schema_bounds_the_batch():
    schema = collector_request_schema(max_records=500)
    records = schema["properties"]["records"]  # type: ignore[index]
    assert records["minItems"] == 1 and records["maxItems"] == 500
    assert "event_id" in records["items"]["required"]
