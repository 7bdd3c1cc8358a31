"""A tiny schema language from which every representation of a dataset is derived.

A dataset is defined once as a :class:`Schema`; the Glue column types (used by Firehose's
Parquet conversion and by Athena), the Arrow schema (used to write and read Parquet locally),
the Avro schema (used by the change log) and the structural part of runtime validation all
come from it, so they cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Primitive(enum.Enum):
    STRING = "string"
    INT = "int"  # 32-bit
    LONG = "long"  # 64-bit
    DOUBLE = "double"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"  # UTC instant, millisecond precision
    DATE = "date"


@dataclass(frozen=True)
class MapOf:
    """A map from string keys to values of one primitive type."""

    values: Primitive


@dataclass(frozen=True)
class StructOf:
    """A nested record."""

    name: str
    fields: tuple[Field, ...]


FieldType = Primitive | MapOf | StructOf


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = False
    doc: str = ""
    # Avro default for fields added after the first version (schema evolution).
    default: Any = None


@dataclass(frozen=True)
class Schema:
    """A named, versioned list of fields."""

    name: str
    namespace: str
    fields: tuple[Field, ...]
    doc: str = ""
    partition_keys: tuple[Field, ...] = field(default=())

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)


# ---------------------------------------------------------------------------------------------
# Glue / Hive types
# ---------------------------------------------------------------------------------------------

_GLUE_PRIMITIVES = {
    Primitive.STRING: "string",
    Primitive.INT: "int",
    Primitive.LONG: "bigint",
    Primitive.DOUBLE: "double",
    Primitive.BOOLEAN: "boolean",
    Primitive.TIMESTAMP: "timestamp",
    Primitive.DATE: "date",
}


def glue_type(t: FieldType) -> str:
    """The Hive type string Glue, Athena and Firehose's Parquet conversion understand."""
    if isinstance(t, Primitive):
        return _GLUE_PRIMITIVES[t]
    if isinstance(t, MapOf):
        return f"map<string,{_GLUE_PRIMITIVES[t.values]}>"
    inner = ",".join(f"{f.name}:{glue_type(f.type)}" for f in t.fields)
    return f"struct<{inner}>"


def glue_columns(schema: Schema) -> list[dict[str, str]]:
    """Columns as the Glue API (and CfnTable) takes them: name, type, comment."""
    return [{"name": f.name, "type": glue_type(f.type), "comment": f.doc[:255]} for f in schema.fields]


def glue_partition_keys(schema: Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": glue_type(f.type), "comment": f.doc[:255]} for f in schema.partition_keys]


# ---------------------------------------------------------------------------------------------
# Avro
# ---------------------------------------------------------------------------------------------

_AVRO_PRIMITIVES: dict[Primitive, Any] = {
    Primitive.STRING: "string",
    Primitive.INT: "int",
    Primitive.LONG: "long",
    Primitive.DOUBLE: "double",
    Primitive.BOOLEAN: "boolean",
    Primitive.TIMESTAMP: {"type": "long", "logicalType": "timestamp-millis"},
    Primitive.DATE: {"type": "int", "logicalType": "date"},
}


def avro_type(t: FieldType, namespace: str) -> Any:
    if isinstance(t, Primitive):
        return _AVRO_PRIMITIVES[t]
    if isinstance(t, MapOf):
        return {"type": "map", "values": _AVRO_PRIMITIVES[t.values]}
    return {
        "type": "record",
        "name": t.name,
        "namespace": namespace,
        "fields": [_avro_field(f, namespace) for f in t.fields],
    }


def _avro_field(f: Field, namespace: str) -> dict[str, Any]:
    t = avro_type(f.type, namespace)
    out: dict[str, Any] = {"name": f.name}
    if f.doc:
        out["doc"] = f.doc
    if f.required:
        out["type"] = t
        if f.default is not None:
            out["default"] = f.default
    else:
        # Optional fields are a union with null first, so that null is a valid default and a
        # reader with this schema can read data written before the field existed.
        out["type"] = ["null", t]
        out["default"] = None
    return out


def avro_schema(schema: Schema) -> dict[str, Any]:
    return {
        "type": "record",
        "name": schema.name,
        "namespace": schema.namespace,
        "doc": schema.doc,
        "fields": [_avro_field(f, schema.namespace) for f in schema.fields],
    }


# ---------------------------------------------------------------------------------------------
# Structural validation of decoded JSON
# ---------------------------------------------------------------------------------------------

_JSON_CHECKS: Mapping[Primitive, tuple[type, ...]] = {
    Primitive.STRING: (str,),
    Primitive.INT: (int,),
    Primitive.LONG: (int,),
    Primitive.DOUBLE: (int, float),
    Primitive.BOOLEAN: (bool,),
    # Timestamps and dates arrive as text or numbers; their meaning is checked by the dataset's
    # own validator, which also normalises them.
    Primitive.TIMESTAMP: (str, int, float),
    Primitive.DATE: (str,),
}

_INT64 = 2**63


def type_errors(value: Any, t: FieldType, path: str) -> list[str]:
    """Reasons why a JSON value does not fit a field type (empty when it fits)."""
    if isinstance(t, Primitive):
        allowed = _JSON_CHECKS[t]
        # bool is a subclass of int in Python; JSON true is never a number.
        if isinstance(value, bool) and t is not Primitive.BOOLEAN:
            return [f"{path}: expected {t.value}, got boolean"]
        if not isinstance(value, allowed):
            return [f"{path}: expected {t.value}, got {_json_kind(value)}"]
        number: int = value if isinstance(value, int) else 0
        if t in (Primitive.INT, Primitive.LONG) and not -_INT64 <= number < _INT64:
            return [f"{path}: integer out of range"]
        if t is Primitive.INT and not -(2**31) <= number < 2**31:
            return [f"{path}: integer out of 32-bit range"]
        return []
    if isinstance(t, MapOf):
        if not isinstance(value, dict):
            return [f"{path}: expected object of {t.values.value}, got {_json_kind(value)}"]
        errors: list[str] = []
        for k, v in value.items():
            if v is not None:
                errors += type_errors(v, t.values, f"{path}.{k}")
        return errors
    if not isinstance(value, dict):
        return [f"{path}: expected object, got {_json_kind(value)}"]
    errors = []
    for f in t.fields:
        v = value.get(f.name)
        if v is None:
            if f.required:
                errors.append(f"{path}.{f.name}: required field missing")
            continue
        errors += type_errors(v, f.type, f"{path}.{f.name}")
    return errors


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# JSON Schema (draft-04, the dialect API Gateway request models use)
# ---------------------------------------------------------------------------------------------

_JSON_SCHEMA_PRIMITIVES: dict[Primitive, dict[str, Any]] = {
    Primitive.STRING: {"type": "string"},
    Primitive.INT: {"type": "integer"},
    Primitive.LONG: {"type": "integer"},
    Primitive.DOUBLE: {"type": "number"},
    Primitive.BOOLEAN: {"type": "boolean"},
    # ISO-8601 text or epoch milliseconds; the dataset validator checks the meaning.
    Primitive.TIMESTAMP: {"type": ["string", "integer"]},
    Primitive.DATE: {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
}


def _json_schema_type(t: FieldType, required: bool) -> dict[str, Any]:
    if isinstance(t, Primitive):
        out = dict(_JSON_SCHEMA_PRIMITIVES[t])
    elif isinstance(t, MapOf):
        out = {"type": "object", "additionalProperties": _json_schema_type(t.values, required=False)}
    else:
        out = {
            "type": "object",
            "properties": {f.name: _json_schema_type(f.type, f.required) for f in t.fields},
            "required": [f.name for f in t.fields if f.required],
        }
        if not out["required"]:
            del out["required"]
    if not required:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out


def json_schema(schema: Schema, *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A draft-04 JSON Schema of one object of ``schema``; ``extra`` overrides per-field keywords."""
    properties = {f.name: _json_schema_type(f.type, f.required) for f in schema.fields}
    for name, keywords in (extra or {}).items():
        properties[name] = {**properties[name], **keywords}
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": schema.name,
        "type": "object",
        "properties": properties,
        "required": list(schema.required_names),
    }
