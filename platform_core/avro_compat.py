"""Avro schema compatibility, with the rules the AWS Glue Schema Registry enforces.

Moto's Schema Registry stores versions without checking them, so the platform checks its own
schemas here, in ``make test``, against the versions checked in under
``platform_core/schemas/registry/<SchemaName>/v<N>.avsc``.

Modes (as the Glue Schema Registry and Confluent name them):

- ``BACKWARD``: the new schema can *read* data written with the previous version
  (``reader = new``, ``writer = previous``). Glue checks the latest version only;
  ``BACKWARD_ALL`` checks every earlier version.
- ``FORWARD``: the previous version can read data written with the new one
  (``reader = previous``, ``writer = new``); ``FORWARD_ALL`` against every earlier version.
- ``FULL`` (``FULL_ALL``): both.  ``NONE``: no check.

Whether a reader can read a writer's data follows Avro's schema resolution rules
(specification, "Schema Resolution"), so for BACKWARD:

- **adding a field** passes only if the new field has a ``default`` (the reader fills it in for old
  data); a nullable field ``["null", T]`` with ``"default": null`` is the usual way;
- **removing a field** always passes: a reader skips writer fields it does not know. (It fails
  FORWARD unless the removed field had a default, because old readers still expect it; that is
  the condition people often attach to removal, but it belongs to FORWARD/FULL, not BACKWARD.)
- **renaming a field** is a removal plus an addition, so it passes only if the new field has a
  default or lists the old name in its ``aliases``;
- **changing a type** fails unless the writer's type *promotes* to the reader's:
  ``int -> long | float | double``, ``long -> float | double``, ``float -> double``,
  ``string <-> bytes``; a type that becomes a union passes if one branch reads the old type;
  a union reads and is read branch by branch (every branch the writer may write must be
  readable); named types (record, enum, fixed) must keep their unqualified name (or the reader
  lists the old name in ``aliases``); an enum may gain symbols, and may lose one only if the
  reader has an enum ``default``; a fixed must keep its size; arrays and maps compare their items.

One deliberate strictness beyond the specification: a change of ``logicalType`` (or of a decimal's
precision or scale) on the same underlying type is reported as incompatible. Avro resolves on the
underlying type and would silently reinterpret, e.g., ``timestamp-millis`` values as micros.
Defaults are also checked against their field's type (for a union, its first branch, as the
specification requires).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# writer type -> reader types that can read it (besides itself).
PROMOTIONS: Mapping[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}
_NAMED = frozenset({"record", "error", "enum", "fixed"})


class Mode(enum.StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_ALL = "BACKWARD_ALL"
    FORWARD = "FORWARD"
    FORWARD_ALL = "FORWARD_ALL"
    FULL = "FULL"
    FULL_ALL = "FULL_ALL"


class Problem(enum.StrEnum):
    """Why a reader cannot read a writer's data."""

    TYPE_MISMATCH = "type_mismatch"
    LOGICAL_TYPE_CHANGED = "logical_type_changed"
    NAME_MISMATCH = "name_mismatch"
    MISSING_DEFAULT = "reader_field_missing_default"
    INVALID_DEFAULT = "invalid_default"
    MISSING_ENUM_SYMBOLS = "missing_enum_symbols"
    FIXED_SIZE_MISMATCH = "fixed_size_mismatch"
    MISSING_UNION_BRANCH = "missing_union_branch"
    UNKNOWN_TYPE = "unknown_type"


@dataclass(frozen=True)
class Incompatibility:
    """One reason a reader cannot read data written with a writer schema."""

    problem: Problem
    path: str  # where in the reader schema, e.g. ``/SubscriptionTransition/price``
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem.value}: {self.detail}"


# ---------------------------------------------------------------------------------------------
# Named types
# ---------------------------------------------------------------------------------------------


def _full_name(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _short_name(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]


class _Names:
    """Named types of one schema by full name, so that references resolve."""

    def __init__(self, schema: Any) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self._collect(schema, None)

    def _collect(self, schema: Any, namespace: str | None) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind in _NAMED:
            full = _full_name(schema["name"], schema.get("namespace", namespace))
            namespace = full.rpartition(".")[0] or None
            # Keep the resolved full name with the definition for error paths and name checks.
            self.types[full] = {**schema, "_full_name": full, "_namespace": namespace}
            for f in schema.get("fields", ()):
                self._collect(f["type"], namespace)
        elif kind == "array":
            self._collect(schema["items"], namespace)
        elif kind == "map":
            self._collect(schema["values"], namespace)
        elif isinstance(kind, (dict, list)):
            self._collect(kind, namespace)

    def resolve(self, schema: Any, namespace: str | None) -> Any:
        """A reference by name becomes its definition; ``{"type": "int"}`` becomes ``"int"``."""
        if isinstance(schema, str):
            return self._by_name(schema, namespace)
        if not isinstance(schema, dict):
            return schema
        kind = schema.get("type")
        if kind in _NAMED:
            return self.types[_full_name(schema["name"], schema.get("namespace", namespace))]
        if isinstance(kind, (dict, list)):
            return self.resolve(kind, namespace)
        if isinstance(kind, str) and (kind not in PRIMITIVES or "logicalType" not in schema):
            # {"type": "int"} is "int"; {"type": "Name"} is a reference; arrays and maps stay.
            return schema if kind in ("array", "map") else self._by_name(kind, namespace)
        return schema

    def _by_name(self, name: str, namespace: str | None) -> Any:
        if name in PRIMITIVES:
            return name
        for candidate in (_full_name(name, namespace), name):
            if candidate in self.types:
                return self.types[candidate]
        return {"type": "_unknown", "name": name}


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    kind = schema.get("type")
    return "record" if kind == "error" else str(kind)


def _logical(schema: Any) -> tuple[Any, ...] | None:
    if isinstance(schema, dict) and "logicalType" in schema:
        return (schema["logicalType"], schema.get("precision"), schema.get("scale"))
    return None


def _namespace_of(schema: Any, default: str | None) -> str | None:
    if isinstance(schema, dict) and "_namespace" in schema:
        namespace: str | None = schema["_namespace"]
        return namespace
    return default


# ---------------------------------------------------------------------------------------------
# Schema resolution: can ``reader`` read what ``writer`` wrote?
# ---------------------------------------------------------------------------------------------


class _Resolver:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader_names = _Names(reader)
        self.writer_names = _Names(writer)
        self.in_progress: set[tuple[str, str]] = set()

    def check(self, reader: Any, writer: Any, path: str, r_ns: str | None, w_ns: str | None) -> list[Incompatibility]:
        reader = self.reader_names.resolve(reader, r_ns)
        writer = self.writer_names.resolve(writer, w_ns)
        r_ns, w_ns = _namespace_of(reader, r_ns), _namespace_of(writer, w_ns)
        r_kind, w_kind = _kind(reader), _kind(writer)
        if "_unknown" in (r_kind, w_kind):
            return [Incompatibility(Problem.UNKNOWN_TYPE, path, "a type refers to an undefined name")]
        if w_kind == "union":
            # Every branch the writer may have written must be readable.
            return [p for branch in writer for p in self.check(reader, branch, path, r_ns, w_ns)]
        if r_kind == "union":
            return self._read_into_union(reader, writer, path, r_ns, w_ns)
        if r_kind != w_kind:
            return self._promotion(reader, writer, path)
        if _logical(reader) != _logical(writer):
            detail = f"logical type {_logical(writer)} became {_logical(reader)}"
            return [Incompatibility(Problem.LOGICAL_TYPE_CHANGED, path, detail)]
        return self._same_kind(r_kind, reader, writer, path, namespaces=(r_ns, w_ns))

    @staticmethod
    def _promotion(reader: Any, writer: Any, path: str) -> list[Incompatibility]:
        r_kind, w_kind = _kind(reader), _kind(writer)
        if w_kind in PROMOTIONS and r_kind in PROMOTIONS[w_kind] and _logical(reader) == _logical(writer):
            return []
        return [Incompatibility(Problem.TYPE_MISMATCH, path, f"reader {r_kind} cannot read writer {w_kind}")]

    def _same_kind(
        self, kind: str, reader: Any, writer: Any, path: str, *, namespaces: tuple[str | None, str | None]
    ) -> list[Incompatibility]:
        if kind in PRIMITIVES:
            return []
        if kind in ("array", "map"):
            key, suffix = ("items", "[]") if kind == "array" else ("values", "{}")
            return self.check(reader[key], writer[key], f"{path}{suffix}", *namespaces)
        name_problem = self._names_match(reader, writer, path)
        if name_problem:
            return [name_problem]
        named_checks = {"enum": self._enum, "fixed": self._fixed, "record": self._record}
        return named_checks[kind](reader, writer, path)

    @staticmethod
    def _fixed(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[Incompatibility]:
        if reader["size"] != writer["size"]:
            detail = f"size {writer['size']} became {reader['size']}"
            return [Incompatibility(Problem.FIXED_SIZE_MISMATCH, path, detail)]
        return []

    def _read_into_union(
        self, reader: list[Any], writer: Any, path: str, r_ns: str | None, w_ns: str | None
    ) -> list[Incompatibility]:
        for branch in reader:
            if not self.check(branch, writer, path, r_ns, w_ns):
                return []
        detail = f"no branch of the reader's union reads writer {_kind(self.writer_names.resolve(writer, w_ns))}"
        return [Incompatibility(Problem.MISSING_UNION_BRANCH, path, detail)]

    @staticmethod
    def _names_match(reader: dict[str, Any], writer: dict[str, Any], path: str) -> Incompatibility | None:
        r_full, w_full = reader["_full_name"], writer["_full_name"]
        aliases = {_full_name(a, reader["_namespace"]) for a in reader.get("aliases", ())}
        if _short_name(r_full) == _short_name(w_full) or w_full in aliases:
            return None
        return Incompatibility(Problem.NAME_MISMATCH, path, f"named type {w_full} became {r_full}")

    @staticmethod
    def _enum(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[Incompatibility]:
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            return [Incompatibility(Problem.MISSING_ENUM_SYMBOLS, path, f"reader lacks symbols {missing}")]
        return []

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[Incompatibility]:
        pair = (reader["_full_name"], writer["_full_name"])
        if pair in self.in_progress:  # recursive type: already being compared further up
            return []
        self.in_progress.add(pair)
        writer_fields = {f["name"]: f for f in writer.get("fields", ())}
        problems: list[Incompatibility] = []
        for field in reader.get("fields", ()):
            field_path = f"{path}/{field['name']}"
            written = writer_fields.get(field["name"])
            if written is None:
                written = next((writer_fields[a] for a in field.get("aliases", ()) if a in writer_fields), None)
            if written is not None:
                problems += self.check(
                    field["type"], written["type"], field_path, reader["_namespace"], writer["_namespace"]
                )
            elif "default" not in field:
                detail = "field is not in the writer's schema and has no default"
                problems.append(Incompatibility(Problem.MISSING_DEFAULT, field_path, detail))
        self.in_progress.discard(pair)
        return problems


def reader_incompatibilities(reader: Any, writer: Any) -> list[Incompatibility]:
    """Why ``reader`` cannot read data written with ``writer`` (empty when it can).

    Both are Avro schemas as parsed JSON (dict, list or str) or JSON text. Invalid defaults in
    either schema are reported too, since the registry would refuse such a schema.
    """
    reader, writer = _as_json(reader), _as_json(writer)
    problems = invalid_defaults(reader) + invalid_defaults(writer)
    root = _root_path(reader)
    return problems + _Resolver(reader, writer).check(reader, writer, root, None, None)


def _root_path(schema: Any) -> str:
    if isinstance(schema, dict) and "name" in schema:
        return f"/{schema['name']}"
    return "/"


def _as_json(schema: Any) -> Any:
    if isinstance(schema, str) and schema.lstrip().startswith(("{", "[", '"')):
        return json.loads(schema)
    return schema


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def invalid_defaults(schema: Any) -> list[Incompatibility]:
    """Record fields whose ``default`` is not a valid JSON value of the field's type."""
    schema = _as_json(schema)
    names = _Names(schema)
    problems: list[Incompatibility] = []
    for record in names.types.values():
        if _kind(record) != "record":
            continue
        for field in record.get("fields", ()):
            if "default" in field and not _default_fits(field["default"], field["type"], names, record["_namespace"]):
                path = f"/{_short_name(record['_full_name'])}/{field['name']}"
                detail = f"default {field['default']!r} does not fit the field's type"
                problems.append(Incompatibility(Problem.INVALID_DEFAULT, path, detail))
    return problems


def _fits_int(limit: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and -limit <= v < limit


# JSON defaults of the primitive types, as the specification encodes them.
_PRIMITIVE_DEFAULTS: Mapping[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": _fits_int(2**31),
    "long": _fits_int(2**63),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, str),
}


def _default_fits(value: Any, schema: Any, names: _Names, namespace: str | None) -> bool:
    schema = names.resolve(schema, namespace)
    kind = _kind(schema)
    if kind in _PRIMITIVE_DEFAULTS:
        return _PRIMITIVE_DEFAULTS[kind](value)
    if kind == "union":
        # The specification: a union's default corresponds to its first branch.
        return bool(schema) and _default_fits(value, schema[0], names, namespace)
    if kind == "fixed":
        return isinstance(value, str) and len(value) == schema["size"]
    if kind == "enum":
        return value in schema["symbols"]
    if kind in ("array", "map"):
        return _container_default_fits(value, schema, names, namespace)
    return kind == "record" and _record_default_fits(value, schema, names)


def _container_default_fits(value: Any, schema: dict[str, Any], names: _Names, namespace: str | None) -> bool:
    if schema["type"] == "array":
        return isinstance(value, list) and all(_default_fits(v, schema["items"], names, namespace) for v in value)
    return isinstance(value, dict) and all(_default_fits(v, schema["values"], names, namespace) for v in value.values())


def _record_default_fits(value: Any, schema: dict[str, Any], names: _Names) -> bool:
    if not isinstance(value, dict):
        return False
    inner = schema["_namespace"]
    return all(
        (f["name"] in value and _default_fits(value[f["name"]], f["type"], names, inner)) or "default" in f
        for f in schema.get("fields", ())
    )


# ---------------------------------------------------------------------------------------------
# Modes and versions
# ---------------------------------------------------------------------------------------------


def check(new: Any, previous: Sequence[Any], mode: Mode | str = Mode.BACKWARD) -> list[Incompatibility]:
    """Why ``new`` may not be registered after ``previous`` (oldest first) under ``mode``."""
    mode = Mode(mode)
    if mode is Mode.NONE or not previous:
        return invalid_defaults(new)
    against = list(previous) if mode.value.endswith("_ALL") else [previous[-1]]
    problems: list[Incompatibility] = []
    for old in against:
        if mode.value.startswith(("BACKWARD", "FULL")):
            problems += reader_incompatibilities(new, old)
        if mode.value.startswith(("FORWARD", "FULL")):
            problems += reader_incompatibilities(old, new)
    return _unique(problems)


def is_backward_compatible(new: Any, old: Any) -> bool:
    """The new schema can read everything written with the old one."""
    return not reader_incompatibilities(new, old)


def _unique(problems: Iterable[Incompatibility]) -> list[Incompatibility]:
    return list(dict.fromkeys(problems))


def normalized(schema: Any) -> Any:
    """The schema without documentation and with full names, for equality checks.

    Documentation never changes what is written, so two schemas that differ only in ``doc``
    are the same version.
    """
    schema = _as_json(schema)

    def strip(node: Any, namespace: str | None) -> Any:
        if isinstance(node, list):
            return [strip(n, namespace) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: v for k, v in node.items() if k not in ("doc", "namespace")}
        if node.get("type") in _NAMED:
            full = _full_name(node["name"], node.get("namespace", namespace))
            out["name"] = full
            namespace = full.rpartition(".")[0] or None
        if "fields" in node:
            out["fields"] = [
                {**{k: v for k, v in f.items() if k != "doc"}, "type": strip(f["type"], namespace)}
                for f in node["fields"]
            ]
        for key in ("items", "values"):
            if key in node:
                out[key] = strip(node[key], namespace)
        if isinstance(node.get("type"), (dict, list)):
            out["type"] = strip(node["type"], namespace)
        return out

    return strip(schema, None)


# ---------------------------------------------------------------------------------------------
# The checked-in registry
# ---------------------------------------------------------------------------------------------

REGISTRY_ROOT = Path(__file__).parent / "schemas" / "registry"
_VERSION_FILE = re.compile(r"v(\d+)\.avsc")


@dataclass(frozen=True)
class RegisteredVersion:
    schema_name: str
    version: int
    path: Path
    schema: Any


def registered_versions(schema_name: str, root: Path = REGISTRY_ROOT) -> list[RegisteredVersion]:
    """The checked-in versions of one schema, oldest first (``<root>/<name>/v<N>.avsc``)."""
    versions = []
    for path in (root / schema_name).glob("v*.avsc"):
        match = _VERSION_FILE.fullmatch(path.name)
        if match:
            schema = json.loads(path.read_text(encoding="utf-8"))
            versions.append(RegisteredVersion(schema_name, int(match.group(1)), path, schema))
    return sorted(versions, key=lambda v: v.version)


def registered_schema_names(root: Path = REGISTRY_ROOT) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("v*.avsc")))
