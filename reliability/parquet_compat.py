"""Can Parquet files written with one schema be read as a table with another? A check before a reader finds out.

The lake's tables are read by column *name* (Athena and Glue read Parquet by name; so do pyarrow
datasets and DuckDB's ``union_by_name``), and old files are never rewritten when a schema changes.
So every file must stay readable with the table's newest schema. The engines disagree on what that
means: pyarrow and DuckDB's ``union_by_name`` silently cast an old ``int`` column to ``string``,
while Athena refuses the file (``HIVE_BAD_DATA``) and Spark refuses to merge the schemas. The rules
here are the strict common ground, the Parquet counterpart of the Avro rules in
:mod:`platform_core.avro_compat`:

- a column the reader has and the file lacks reads as null, so it must be nullable in the reader;
- a column the file has and the reader lacks is ignored;
- types must be equal, or widen without loss: integers to wider integers, ``float`` to ``double``,
  ``string`` to ``large_string`` (and back), a timestamp to a finer unit of the same time zone,
  and a column of nulls to anything;
- structs compare member by member (by name), lists and maps by their items;
- a column the file may hold nulls in cannot be read as a required (non-nullable) one.

Everything else, notably a change between numbers and text, is a :class:`ReadProblem`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

_INTEGER_WIDTH = {
    pa.int8(): 8,
    pa.int16(): 16,
    pa.int32(): 32,
    pa.int64(): 64,
}
_UNIT_RANK = {"s": 0, "ms": 1, "us": 2, "ns": 3}


class Problem(enum.StrEnum):
    MISSING_REQUIRED = "missing_required"  # the reader requires a column the file does not have
    TYPE_CHANGED = "type_changed"  # the file's type cannot be read as the reader's without loss
    NULLABLE_INTO_REQUIRED = "nullable_into_required"  # the file may hold nulls the reader forbids


@dataclass(frozen=True)
class ReadProblem:
    source: str  # the file (or "" for a schema-to-schema check)
    path: str  # dotted column path, e.g. "request.status"
    problem: Problem
    detail: str


def read_problems(written: pa.Schema, reader: pa.Schema, *, source: str = "") -> list[ReadProblem]:
    """Why data written with ``written`` cannot be read as ``reader`` (empty when it can)."""
    return _fields(list(written), list(reader), prefix="", source=source)


def dataset_read_problems(files: Iterable[Path], reader: pa.Schema) -> list[ReadProblem]:
    """:func:`read_problems` for every Parquet file, from its footer (no data is read)."""
    problems: list[ReadProblem] = []
    for path in sorted(files):
        problems += read_problems(pq.read_schema(path), reader, source=str(path))
    return problems


def _fields(written: list[pa.Field], reader: list[pa.Field], *, prefix: str, source: str) -> list[ReadProblem]:
    by_name = {f.name: f for f in written}
    problems: list[ReadProblem] = []
    for field in reader:
        path = f"{prefix}{field.name}"
        old = by_name.get(field.name)
        if old is None:
            if not field.nullable:
                problems.append(ReadProblem(source, path, Problem.MISSING_REQUIRED, "the file has no such column"))
            continue
        if old.nullable and not field.nullable and not pa.types.is_null(old.type):
            problems.append(
                ReadProblem(
                    source, path, Problem.NULLABLE_INTO_REQUIRED, "nullable in the file, required in the reader"
                )
            )
        problems += _types(old.type, field.type, path=path, source=source)
    return problems


def _types(written: pa.DataType, reader: pa.DataType, *, path: str, source: str) -> list[ReadProblem]:
    if written == reader or pa.types.is_null(written) or _widens(written, reader):
        return []
    if pa.types.is_struct(written) and pa.types.is_struct(reader):
        return _fields(list(written), list(reader), prefix=f"{path}.", source=source)
    if _is_list(written) and _is_list(reader):
        return _types(written.value_type, reader.value_type, path=f"{path}[]", source=source)
    if pa.types.is_map(written) and pa.types.is_map(reader):
        return _types(written.key_type, reader.key_type, path=f"{path}{{key}}", source=source) + _types(
            written.item_type, reader.item_type, path=f"{path}{{value}}", source=source
        )
    detail = f"written as {written}, read as {reader}"
    return [ReadProblem(source, path, Problem.TYPE_CHANGED, detail)]


def _widens(written: pa.DataType, reader: pa.DataType) -> bool:
    if written in _INTEGER_WIDTH and reader in _INTEGER_WIDTH:
        return _INTEGER_WIDTH[written] <= _INTEGER_WIDTH[reader]
    if pa.types.is_float32(written) and pa.types.is_float64(reader):
        return True
    texts = (pa.string(), pa.large_string())
    if written in texts and reader in texts:
        return True
    if pa.types.is_timestamp(written) and pa.types.is_timestamp(reader):
        # Same instant semantics (time zone) and no precision lost.
        return bool(written.tz == reader.tz and _UNIT_RANK[written.unit] <= _UNIT_RANK[reader.unit])
    return False


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))
