"""The validator, the Glue columns and the Arrow schema all say the same about every field."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_core.arrow_schema import arrow_schema
from platform_core.schema import (
    FieldType,
    MapOf,
    Primitive,
    glue_columns,
    glue_partition_keys,
    glue_type,
    type_errors,
)
from platform_core.schemas.clickstream import CLICKSTREAM_EVENT, CLICKSTREAM_RAW
from platform_core.validation import ReasonCode, Rejection, ValidatedEvent, fits, validate_clickstream_event
from tests.clickstream_transform.conftest import NOW_MS, event_bytes

# A value of each Glue primitive type that fits it, and one that does not.
GOOD_BY_GLUE_TYPE: dict[str, Any] = {
    "string": "some text",
    "int": 7,
    "bigint": 2**40,
    "double": 1.25,
    "boolean": True,
    "timestamp": "2025-03-01T10:00:00Z",
    "date": "2025-03-01",
}
BAD_BY_GLUE_TYPE: dict[str, Any] = {
    "string": 12345,
    "int": "7",
    "bigint": "7",
    "double": "1.25",
    "boolean": "true",
    "timestamp": True,
    "date": 20250301,
}
# Fields whose meaning constrains the value beyond its type: a valid value of the right type.
MEANINGFUL: dict[str, Any] = {
    "event_type": "search",
    "event_time": "2025-03-01T10:00:00+01:00",
    "ip": "198.51.100.7",
}


def split_top_level(text: str) -> list[str]:
    """Split ``a:int,b:struct<c:int,d:string>`` on the commas that are not inside <...>."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "<"
        depth -= char == ">"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def good_value(name: str, glue: str) -> Any:
    if name in MEANINGFUL:
        return MEANINGFUL[name]
    if glue.startswith("map<string,"):
        return {"k": GOOD_BY_GLUE_TYPE[glue[len("map<string,") : -1]]}
    if glue.startswith("struct<"):
        members = [m.split(":", 1) for m in split_top_level(glue[len("struct<") : -1])]
        return {m: good_value(m, t) for m, t in members}
    return GOOD_BY_GLUE_TYPE[glue]


def bad_value(glue: str) -> Any:
    if glue.startswith(("map<", "struct<")):
        return "not an object"
    return BAD_BY_GLUE_TYPE[glue]


COLUMNS = glue_columns(CLICKSTREAM_EVENT)


@pytest.mark.parametrize("column", COLUMNS, ids=[c["name"] for c in COLUMNS])
def test_each_glue_column_accepts_a_value_of_its_type_and_carries_it(column: dict[str, str]) -> None:
    # Given an event where this column holds a value of its Glue type
    raw = json.loads(event_bytes())
    raw[column["name"]] = good_value(column["name"], column["type"])

    # Then the validator accepts it and passes the value on
    outcome = validate_clickstream_event(raw, now_ms=NOW_MS)
    assert isinstance(outcome, ValidatedEvent), outcome
    assert outcome.fields[column["name"]] == raw[column["name"]]


@pytest.mark.parametrize("column", COLUMNS, ids=[c["name"] for c in COLUMNS])
def test_each_glue_column_rejects_a_value_of_another_type(column: dict[str, str]) -> None:
    # Given an event where this column holds a value that does not fit its Glue type
    raw = json.loads(event_bytes())
    raw[column["name"]] = bad_value(column["type"])

    # Then the validator rejects it as wrong_type, naming the column
    outcome = validate_clickstream_event(raw, now_ms=NOW_MS)
    assert isinstance(outcome, Rejection)
    assert outcome.code is ReasonCode.WRONG_TYPE
    assert outcome.message.startswith(f"{column['name']}")


@pytest.mark.parametrize("column", [c for c in COLUMNS if c["type"].startswith("struct<")], ids=lambda c: c["name"])
def test_each_struct_member_is_type_checked(column: dict[str, str]) -> None:
    members = [m.split(":", 1) for m in split_top_level(column["type"][len("struct<") : -1])]
    for member, glue in members:
        # Given a struct whose one member has the wrong type
        raw = json.loads(event_bytes())
        raw[column["name"]] = {member: bad_value(glue)}

        # Then the rejection names that member
        outcome = validate_clickstream_event(raw, now_ms=NOW_MS)
        assert isinstance(outcome, Rejection)
        assert outcome.code is ReasonCode.WRONG_TYPE
        assert outcome.message.startswith(f"{column['name']}.{member}:")


def test_validated_fields_are_exactly_the_glue_columns() -> None:
    outcome = validate_clickstream_event(json.loads(event_bytes()), now_ms=NOW_MS)
    assert isinstance(outcome, ValidatedEvent)
    assert list(outcome.fields) == [c["name"] for c in COLUMNS]


def test_arrow_schema_matches_the_glue_columns_type_for_type() -> None:
    # The Glue type each Arrow type stands for (what Firehose's Parquet conversion writes).
    glue_of_arrow = {
        pa.string(): "string",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.timestamp("ms", tz="UTC"): "timestamp",
        pa.date32(): "date",
    }

    def glue_of(t: pa.DataType) -> str:
        if pa.types.is_map(t):
            return f"map<{glue_of(t.key_type)},{glue_of(t.item_type)}>"
        if pa.types.is_struct(t):
            return (
                "struct<" + ",".join(f"{t.field(i).name}:{glue_of(t.field(i).type)}" for i in range(t.num_fields)) + ">"
            )
        return glue_of_arrow[t]

    schema = arrow_schema(CLICKSTREAM_RAW)
    assert [(f.name, glue_of(f.type)) for f in schema] == [
        (c["name"], c["type"]) for c in glue_columns(CLICKSTREAM_RAW)
    ]
    assert [f.nullable for f in schema] == [not f.required for f in CLICKSTREAM_RAW.fields]
    with_keys = arrow_schema(CLICKSTREAM_RAW, with_partition_keys=True)
    assert with_keys.names[len(schema) :] == [k["name"] for k in glue_partition_keys(CLICKSTREAM_RAW)]


# Any JSON value: the fast type test may only accept what type_errors accepts.
BOUNDARIES = [2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from(BOUNDARIES)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
# Every primitive and a map of each (whether or not a schema uses it yet), and the schema's own types.
FIELD_TYPES: list[FieldType] = list(
    dict.fromkeys([*Primitive, *(MapOf(p) for p in Primitive), *(f.type for f in CLICKSTREAM_RAW.fields)])
)


@pytest.mark.parametrize("t", FIELD_TYPES, ids=glue_type)
@settings(max_examples=40, deadline=None)
@given(value=json_values)
def test_the_fast_type_test_never_accepts_what_type_errors_rejects(t: FieldType, value: Any) -> None:
    if fits(t)(value):
        assert type_errors(value, t, "x") == [], (glue_type(t), value)


@settings(max_examples=100, deadline=None)
@given(
    request=st.dictionaries(
        st.sampled_from(["method", "path", "query", "status", "latency_ms", "extra"]),
        st.none() | st.sampled_from(BOUNDARIES) | st.integers() | st.floats() | st.text(max_size=3) | st.booleans(),
        max_size=6,
    )
)
def test_struct_verdicts_equal_type_errors(request: dict[str, Any]) -> None:
    # Whatever the fast path decides, the outcome for the request struct is type_errors' verdict.
    raw = json.loads(event_bytes())
    raw["request"] = request
    outcome = validate_clickstream_event(raw, now_ms=NOW_MS)
    problems = type_errors(request, CLICKSTREAM_EVENT.field("request").type, "request")
    if problems:
        assert isinstance(outcome, Rejection) and outcome.message == problems[0]
    else:
        assert isinstance(outcome, ValidatedEvent)
