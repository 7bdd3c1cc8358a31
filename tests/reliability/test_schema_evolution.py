"""Schema evolution end to end: a new optional clickstream field flows everywhere, old files stay
readable, and an incompatible type change is caught (Avro by platform_core.avro_compat, Parquet by
reliability.parquet_compat) before any reader meets it."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lambdas.clickstream_transform import aws as transform_aws
from lambdas.clickstream_transform import handler as transform_handler
from lambdas.clickstream_transform import settings as transform_settings
from local_runtime.firehose import LocalFirehose
from local_runtime.kinesis_reader import StreamRecord
from platform_core.arrow_schema import arrow_schema
from platform_core.avro_compat import Mode, check
from platform_core.avro_compat import Problem as AvroProblem
from platform_core.schema import Field, Primitive, Schema, avro_schema, glue_columns
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from reliability.parquet_compat import Problem, dataset_read_problems, read_problems
from reliability.workload import clickstream_events

NEW_FIELD = Field("app_version", Primitive.STRING, doc="version of the app that sent the event")
CLICKSTREAM_RAW_V2 = dataclasses.replace(CLICKSTREAM_RAW, fields=(*CLICKSTREAM_RAW.fields, NEW_FIELD))
OLD_EVENTS = 300
NEW_EVENTS = 200


def with_field(schema: Schema, field: Field) -> Schema:
    return dataclasses.replace(schema, fields=(*schema.fields, field))


# ---------------------------------------------------------------------------------------------
# A lake with files written before and after the field was added
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Old files through Firehose with the old schema, new ones with the new schema, where the
    transform (after the change) also sends ``app_version``."""
    out = tmp_path_factory.mktemp("evolution")
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="rejects")
        mp.setenv("IP_PROTECTION", "truncate")
        mp.setenv("REJECTS_BUCKET", "rejects")
        _clear_transform_caches()
        events = clickstream_events(OLD_EVENTS + NEW_EVENTS, users=20, seed=11, without_event_id_share=0.0)
        records = [
            StreamRecord(
                "shardId-000000000000", str(10_000 + i), e["session_id"], json.dumps(e).encode(), 1_748_800_000_000
            )
            for i, e in enumerate(events)
        ]
        _firehose(out, CLICKSTREAM_RAW, transform_handler.handler).deliver(records[:OLD_EVENTS])
        _firehose(out, CLICKSTREAM_RAW_V2, _transform_after_the_change).deliver(records[OLD_EVENTS:])
        _clear_transform_caches()
    yield out / "clickstream_raw"


def _clear_transform_caches() -> None:
    transform_settings.settings.cache_clear()
    transform_handler._ip_protector.cache_clear()
    transform_aws.s3_client.cache_clear()


def _firehose(out: Path, schema: Schema, handler: Any) -> LocalFirehose:
    return LocalFirehose(
        name=f"clickstream-{schema.name}",
        stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/mlp-dev-clickstream",
        handler=handler,
        schema=schema,
        lake_dir=out / "clickstream_raw",
        errors_dir=out / "errors",
        backup_dir=out / "backup",
    )


def _transform_after_the_change(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The real transform, plus the new field in every row (what it does once the schema has it)."""
    answer: dict[str, Any] = transform_handler.handler(event, context)
    for record in answer["records"]:
        if record["result"] == "Ok":
            row = json.loads(base64.b64decode(record["data"]))
            row[NEW_FIELD.name] = f"7.{int(row['event_time']) % 10}"
            record["data"] = base64.b64encode(json.dumps(row).encode()).decode()
    return answer


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


# ---------------------------------------------------------------------------------------------
# A new optional field
# ---------------------------------------------------------------------------------------------


def test_the_new_field_becomes_the_last_glue_column() -> None:
    # Appended, so that every existing column keeps its name, type and position.
    old, new = glue_columns(CLICKSTREAM_RAW), glue_columns(CLICKSTREAM_RAW_V2)
    assert new[: len(old)] == old
    assert new[len(old) :] == [{"name": "app_version", "type": "string", "comment": NEW_FIELD.doc}]


def test_the_new_field_is_compatible_both_ways_in_avro() -> None:
    old, new = avro_schema(CLICKSTREAM_RAW), avro_schema(CLICKSTREAM_RAW_V2)
    assert check(new, [old], Mode.FULL_ALL) == []


def test_new_files_carry_the_new_column_and_old_files_do_not(lake: Path) -> None:
    with_column = [p for p in _files(lake) if NEW_FIELD.name in pq.read_schema(p).names]
    without = [p for p in _files(lake) if NEW_FIELD.name not in pq.read_schema(p).names]
    assert with_column and without
    assert sum(pq.read_metadata(p).num_rows for p in with_column) == NEW_EVENTS
    assert sum(pq.read_metadata(p).num_rows for p in without) == OLD_EVENTS
    assert all(pq.read_schema(p).field(NEW_FIELD.name).type == pa.string() for p in with_column)


def test_old_and_new_files_read_together_with_the_new_schema(lake: Path) -> None:
    # The check finds nothing to object to...
    reader = arrow_schema(CLICKSTREAM_RAW_V2)
    assert dataset_read_problems(_files(lake), reader) == []

    # ...and pyarrow reads every file with the new schema: old rows have a null app_version.
    table = ds.dataset(_files(lake), schema=reader, format="parquet").to_table()
    rows = table.to_pylist()
    assert len(rows) == OLD_EVENTS + NEW_EVENTS
    assert sum(1 for r in rows if r[NEW_FIELD.name] is None) == OLD_EVENTS
    assert all(r[NEW_FIELD.name].startswith("7.") for r in rows if r[NEW_FIELD.name] is not None)
    assert len({r["event_id"] for r in rows}) == OLD_EVENTS + NEW_EVENTS
    assert table.schema.names == reader.names


def test_duckdb_reads_old_and_new_files_by_name_with_partitions(lake: Path) -> None:
    pattern = str(lake / "**" / "*.parquet")
    query = f"""
        SELECT count(*), count(app_version), count(DISTINCT event_id), min(year)
        FROM read_parquet('{pattern}', union_by_name = true, hive_partitioning = true)
    """
    total, with_version, distinct, year = duckdb.connect().execute(query).fetchone() or ()
    assert (total, with_version, distinct) == (OLD_EVENTS + NEW_EVENTS, NEW_EVENTS, OLD_EVENTS + NEW_EVENTS)
    assert str(year) == "2025"  # the partition keys come back from the paths


# ---------------------------------------------------------------------------------------------
# An incompatible type change: int -> string
# ---------------------------------------------------------------------------------------------

BUILD_AS_INT = with_field(CLICKSTREAM_RAW, Field("app_build", Primitive.INT, doc="build number"))
BUILD_AS_TEXT = with_field(CLICKSTREAM_RAW, Field("app_build", Primitive.STRING, doc="build number"))


def test_avro_refuses_int_to_string() -> None:
    # The optional field is a union ["null", T]: no branch of the new union reads the old int.
    problems = check(avro_schema(BUILD_AS_TEXT), [avro_schema(BUILD_AS_INT)], Mode.BACKWARD)
    assert [(p.path, p.problem) for p in problems] == [("/ClickstreamRaw/app_build", AvroProblem.MISSING_UNION_BRANCH)]
    # and the other way round too (a string never reads as an int).
    assert check(avro_schema(BUILD_AS_INT), [avro_schema(BUILD_AS_TEXT)], Mode.BACKWARD) != []


@pytest.fixture
def int_files(tmp_path: Path) -> list[Path]:
    """Old files where app_build was an int."""
    schema = arrow_schema(BUILD_AS_INT)
    row = dict.fromkeys(schema.names)
    row.update(event_id="e-1", event_type="click", session_id="s-1", app_build=41)
    row["event_time"] = pa.scalar(1_748_800_000_000, pa.timestamp("ms", tz="UTC")).as_py()
    path = tmp_path / "old.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=schema), path)
    return [path]


def test_the_check_detects_old_int_files_read_as_string(int_files: list[Path]) -> None:
    problems = dataset_read_problems(int_files, arrow_schema(BUILD_AS_TEXT))
    assert [(p.path, p.problem) for p in problems] == [("app_build", Problem.TYPE_CHANGED)]
    assert "int32" in problems[0].detail and "string" in problems[0].detail


def test_engines_disagree_on_int_files_read_as_string_which_is_why_the_check_exists(int_files: list[Path]) -> None:
    # pyarrow silently turns 41 into "41" (Athena refuses such a file with HIVE_BAD_DATA)...
    table = ds.dataset(int_files, schema=arrow_schema(BUILD_AS_TEXT), format="parquet").to_table()
    assert table.column("app_build").to_pylist() == ["41"]
    # ...while a text file read as int fails outright.
    text_file = int_files[0].with_name("new.parquet")
    row = table.to_pylist()[0] | {"app_build": "41-beta"}
    pq.write_table(pa.Table.from_pylist([row], schema=arrow_schema(BUILD_AS_TEXT)), text_file)
    with pytest.raises(pa.ArrowInvalid):
        ds.dataset([text_file], schema=arrow_schema(BUILD_AS_INT), format="parquet").to_table()
    assert [p.problem for p in dataset_read_problems([text_file], arrow_schema(BUILD_AS_INT))] == [Problem.TYPE_CHANGED]


def test_widening_and_optional_additions_pass_the_check_but_narrowing_and_new_required_fields_do_not() -> None:
    base = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("n", pa.int32())])
    assert read_problems(base, pa.schema([*base, pa.field("extra", pa.string())])) == []
    assert read_problems(base, pa.schema([base.field("id"), pa.field("n", pa.int64())])) == []
    narrowed = read_problems(pa.schema([pa.field("n", pa.int64())]), pa.schema([pa.field("n", pa.int32())]))
    assert [p.problem for p in narrowed] == [Problem.TYPE_CHANGED]
    required = read_problems(base, pa.schema([*base, pa.field("extra", pa.string(), nullable=False)]))
    assert [(p.path, p.problem) for p in required] == [("extra", Problem.MISSING_REQUIRED)]
    nested_old = pa.schema([pa.field("request", pa.struct([pa.field("status", pa.int32())]))])
    nested_new = pa.schema([pa.field("request", pa.struct([pa.field("status", pa.string())]))])
    assert [p.path for p in read_problems(nested_old, nested_new)] == ["request.status"]
