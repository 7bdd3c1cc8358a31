"""The BACKWARD (and FORWARD/FULL) rules of platform_core.avro_compat, checked against fastavro
actually reading old data with the new schema wherever a rule says it can."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from platform_core.avro_compat import (
    Mode,
    Problem,
    check,
    invalid_defaults,
    is_backward_compatible,
    normalized,
    reader_incompatibilities,
)


def record(*fields: dict[str, Any], name: str = "Thing", **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "platform.test", "fields": list(fields), **extra}


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


OLD = record(f("id", "string"), f("count", "int"), f("note", ["null", "string"], default=None))


def problems(new: Any, old: Any) -> list[Problem]:
    return [p.problem for p in reader_incompatibilities(new, old)]


def fastavro_reads(new: Any, old: Any, datum: dict[str, Any]) -> dict[str, Any]:
    """Write ``datum`` with ``old``, read it with ``new`` (raises when Avro cannot)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(old), datum)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, fastavro.parse_schema(old), fastavro.parse_schema(new))  # type: ignore[return-value]


DATUM = {"id": "a", "count": 3, "note": None}


def test_adding_a_field_with_a_default_passes_and_reads() -> None:
    new = record(*OLD["fields"], f("score", ["null", "double"], default=None))
    assert problems(new, OLD) == []
    assert fastavro_reads(new, OLD, DATUM)["score"] is None


def test_adding_a_field_without_a_default_fails() -> None:
    new = record(*OLD["fields"], f("score", "double"))
    assert problems(new, OLD) == [Problem.MISSING_DEFAULT]
    with pytest.raises(Exception):  # noqa: B017 - fastavro's own error type varies by version
        fastavro_reads(new, OLD, DATUM)


def test_removing_a_field_passes_backward_but_not_forward_without_default() -> None:
    new = record(f("id", "string"), f("note", ["null", "string"], default=None))
    # BACKWARD: the new reader skips `count` in old data
    assert problems(new, OLD) == []
    assert fastavro_reads(new, OLD, DATUM) == {"id": "a", "note": None}
    # FORWARD: old readers expect `count`, which had no default
    assert [p.problem for p in check(new, [OLD], Mode.FORWARD)] == [Problem.MISSING_DEFAULT]
    # ... while removing a field that had a default passes FULL
    without_note = record(f("id", "string"), f("count", "int"))
    assert check(without_note, [OLD], Mode.FULL) == []


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("int", "long"),
        ("int", "float"),
        ("int", "double"),
        ("long", "double"),
        ("float", "double"),
        ("string", "bytes"),
        ("bytes", "string"),
    ],
)
def test_avro_promotions_pass(writer: str, reader: str) -> None:
    old = record(f("v", writer))
    new = record(f("v", reader))
    assert is_backward_compatible(new, old)
    value = {"string": "x", "bytes": b"x"}.get(writer, 1)
    assert fastavro_reads(new, old, {"v": value})["v"] in (1, 1.0, "x", b"x")


@pytest.mark.parametrize(
    ("writer", "reader"),
    [("long", "int"), ("double", "float"), ("string", "int"), ("boolean", "string"), ("int", "boolean")],
)
def test_other_type_changes_fail(writer: str, reader: str) -> None:
    assert problems(record(f("v", reader)), record(f("v", writer))) == [Problem.TYPE_MISMATCH]


def test_field_becoming_a_union_that_reads_it_passes_and_the_reverse_fails() -> None:
    old, new = record(f("v", "int")), record(f("v", ["null", "long"], default=None))
    assert problems(new, old) == []
    assert fastavro_reads(new, old, {"v": 5}) == {"v": 5}
    # Back again: the union writer may have written null or a long, neither of which an int reads
    assert [str(p) for p in reader_incompatibilities(old, new)] == [
        "/Thing/v: type_mismatch: reader int cannot read writer null",
        "/Thing/v: type_mismatch: reader int cannot read writer long",
    ]


def test_union_losing_a_branch_fails() -> None:
    old = record(f("v", ["null", "int", "string"], default=None))
    new = record(f("v", ["null", "int"], default=None))
    assert problems(new, old) == [Problem.MISSING_UNION_BRANCH]


def test_logical_type_change_is_reported() -> None:
    old = record(f("t", {"type": "long", "logicalType": "timestamp-millis"}))
    new = record(f("t", {"type": "long", "logicalType": "timestamp-micros"}))
    assert problems(new, old) == [Problem.LOGICAL_TYPE_CHANGED]
    assert problems(old, old) == []


def test_renaming_a_field_needs_an_alias() -> None:
    renamed = record(f("id", "string"), f("total", "int"), f("note", ["null", "string"], default=None))
    assert problems(renamed, OLD) == [Problem.MISSING_DEFAULT]
    aliased = record(
        f("id", "string"), f("total", "int", aliases=["count"]), f("note", ["null", "string"], default=None)
    )
    assert problems(aliased, OLD) == []
    assert fastavro_reads(aliased, OLD, DATUM)["total"] == 3


def test_renaming_the_record_fails_unless_aliased() -> None:
    assert problems(record(*OLD["fields"], name="Other"), OLD) == [Problem.NAME_MISMATCH]
    assert problems(record(*OLD["fields"], name="Other", aliases=["platform.test.Thing"]), OLD) == []


def test_enum_may_gain_symbols_and_lose_one_only_with_a_default() -> None:
    def enum(*symbols: str, **extra: Any) -> dict[str, Any]:
        return record(f("e", {"type": "enum", "name": "Colour", "symbols": list(symbols), **extra}))

    assert problems(enum("R", "G", "B"), enum("R", "G")) == []
    assert problems(enum("R"), enum("R", "G")) == [Problem.MISSING_ENUM_SYMBOLS]
    assert problems(enum("R", "X", default="X"), enum("R", "G")) == []


def test_nested_records_arrays_maps_and_fixed_are_compared_inside() -> None:
    def nested(item_type: str, size: int = 4) -> dict[str, Any]:
        inner = {"type": "record", "name": "Inner", "fields": [f("x", item_type)]}
        return record(
            f("items", {"type": "array", "items": inner}),
            f("again", "Inner"),  # a reference by name
            f("tags", {"type": "map", "values": item_type}),
            f("hash", {"type": "fixed", "name": "Hash", "size": size}),
        )

    assert problems(nested("long"), nested("int")) == []
    assert problems(nested("int"), nested("long")) == [Problem.TYPE_MISMATCH] * 3
    assert problems(nested("int", size=8), nested("int")) == [Problem.FIXED_SIZE_MISMATCH]


def test_recursive_types_terminate() -> None:
    node = record(f("value", "int"), f("next", ["null", "Thing"], default=None))
    assert problems(node, node) == []


def test_defaults_must_fit_their_type() -> None:
    bad = record(f("n", "int", default="zero"), f("u", ["null", "int"], default=3))
    assert [str(p.path) for p in invalid_defaults(bad)] == ["/Thing/n", "/Thing/u"]
    assert invalid_defaults(record(f("u", ["int", "null"], default=3))) == []


def test_modes_check_the_right_versions() -> None:
    v1 = record(f("id", "string"))
    v2 = record(f("id", "string"), f("a", "int", default=0))
    v3 = record(f("id", "string"), f("a", "int", default=0), f("b", "int"))  # no default: reads neither
    assert check(v2, [v1]) == []
    assert len(check(v3, [v1, v2], Mode.BACKWARD)) == 1
    assert len(check(v3, [v1, v2], Mode.BACKWARD_ALL)) == 1  # same problem, reported once
    assert check(v3, [v1, v2], Mode.NONE) == []


def test_normalized_ignores_documentation_only() -> None:
    documented = {**OLD, "doc": "things", "fields": [{**fl, "doc": "d"} for fl in OLD["fields"]]}
    assert normalized(documented) == normalized(OLD)
    assert normalized(record(f("id", "string"))) != normalized(OLD)
