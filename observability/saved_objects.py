"""The Dashboards saved objects (``saved_objects.ndjson``) and the checks they must pass.

The NDJSON file is the maintained source: an export from Dashboards can be pasted back into it.
Before the stack hands it to the provisioning custom resource it is parsed and checked here, so a
broken object (bad JSON, dangling reference, a field the clickstream schema does not have) fails
``cdk synth`` instead of a deployment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from observability.index_template import field_paths
from platform_core.names import SEARCH_INDEX_PATTERN
from platform_core.schema import FieldType, MapOf, Primitive
from platform_core.schemas.clickstream import CLICKSTREAM_RAW

SAVED_OBJECTS_FILE = Path(__file__).with_name("saved_objects.ndjson")
# The index pattern Dashboards opens by default (Discover, new visualisations).
DEFAULT_INDEX_PATTERN_ID = "clickstream"

# `field:value`, `field >= 500`, `field:*` in KQL / Lucene query strings.
_QUERY_FIELD = re.compile(r"(?<![\w.\"'])([A-Za-z_][\w.]*)\s*(?::|>=|<=|>|<)")
# Aggregations whose "field" must be a number or a date.
_NUMERIC_AGGS = frozenset({"avg", "sum", "min", "max", "percentiles", "median", "std_dev", "histogram"})
_NUMERIC = frozenset({Primitive.INT, Primitive.LONG, Primitive.DOUBLE})
_TEMPORAL = frozenset({Primitive.TIMESTAMP, Primitive.DATE})


class SavedObjectsError(ValueError):
    """The saved objects are malformed or reference something that does not exist."""


@dataclass(frozen=True)
class Reference:
    name: str
    type: str
    id: str


@dataclass(frozen=True)
class SavedObject:
    line: int
    type: str
    id: str
    attributes: Mapping[str, Any]
    references: tuple[Reference, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.id)


def parse_saved_objects(text: str) -> list[SavedObject]:
    """One JSON object per line, each with ``type``, ``id`` and ``attributes``."""
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise SavedObjectsError(f"line {number}: empty line (NDJSON holds one object per line)")
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            raise SavedObjectsError(f"line {number}: not JSON ({error.msg})") from None
        objects.append(_saved_object(number, raw))
    if not objects:
        raise SavedObjectsError("no saved objects")
    return objects


def _saved_object(number: int, raw: Any) -> SavedObject:
    if not isinstance(raw, dict):
        raise SavedObjectsError(f"line {number}: a saved object is a JSON object")
    for key, kind in (("type", str), ("id", str), ("attributes", dict)):
        if not isinstance(raw.get(key), kind):
            raise SavedObjectsError(f"line {number}: {key!r} is missing or not a {kind.__name__}")
    references = raw.get("references", [])
    if not isinstance(references, list) or not all(
        isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("name", "type", "id")) for r in references
    ):
        raise SavedObjectsError(f"line {number}: references must be a list of {{name, type, id}}")
    return SavedObject(
        line=number,
        type=raw["type"],
        id=raw["id"],
        attributes=raw["attributes"],
        references=tuple(Reference(r["name"], r["type"], r["id"]) for r in references),
    )


def problems(
    objects: Sequence[SavedObject],
    *,
    fields: Mapping[str, FieldType],
    index_pattern: str = SEARCH_INDEX_PATTERN,
) -> list[str]:
    """Everything wrong with the objects (empty when they are fine)."""
    found: list[str] = []
    keys = [o.key for o in objects]
    found += [f"duplicate saved object {t}/{i}" for t, i in sorted({k for k in keys if keys.count(k) > 1})]
    known = set(keys)
    for obj in objects:
        where = f"line {obj.line} ({obj.type}/{obj.id})"
        for ref in obj.references:
            if (ref.type, ref.id) not in known:
                found.append(f"{where}: reference {ref.name!r} points to missing {ref.type}/{ref.id}")
        names = {ref.name for ref in obj.references}
        found += [f"{where}: {name!r} is not among its references" for name in sorted(_ref_names_used(obj) - names)]
        try:
            used = referenced_fields(obj)
        except (json.JSONDecodeError, TypeError) as error:
            found.append(f"{where}: embedded JSON is malformed ({error})")
            continue
        unknown = sorted(name for name in used if not _is_field(name, fields))
        found += [f"{where}: field {name!r} is not in the clickstream schema" for name in unknown]
        found += [f"{where}: {message}" for message in _type_problems(obj, fields)]
        found += [f"{where}: {message}" for message in _pattern_problems(obj, index_pattern)]
    return found


def load_saved_objects(path: Path = SAVED_OBJECTS_FILE) -> str:
    """The NDJSON text, after checking it against the clickstream schema (raises if anything is wrong)."""
    text = path.read_text(encoding="utf-8")
    found = problems(parse_saved_objects(text), fields=field_paths(CLICKSTREAM_RAW))
    if found:
        raise SavedObjectsError(f"{path.name}: " + "; ".join(found))
    return text


# ---------------------------------------------------------------------------------------------
# What an object refers to
# ---------------------------------------------------------------------------------------------


def _json_attribute(obj: SavedObject, *path: str) -> Any:
    """An attribute that Dashboards stores as a JSON string (visState, panelsJSON, ...)."""
    value: Any = obj.attributes
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return json.loads(value) if isinstance(value, str) else None


def _ref_names_used(obj: SavedObject) -> set[str]:
    """Reference names the object's embedded JSON relies on (indexRefName, panelRefName)."""
    names = set()
    source = _safe(lambda: _json_attribute(obj, "kibanaSavedObjectMeta", "searchSourceJSON"))
    if isinstance(source, dict) and isinstance(source.get("indexRefName"), str):
        names.add(source["indexRefName"])
    panels = _safe(lambda: _json_attribute(obj, "panelsJSON"))
    if isinstance(panels, list):
        names |= {p["panelRefName"] for p in panels if isinstance(p, dict) and "panelRefName" in p}
    return names


def _safe(read: Any) -> Any:
    try:
        return read()
    except (json.JSONDecodeError, TypeError):
        return None  # reported by referenced_fields


def referenced_fields(obj: SavedObject) -> set[str]:
    """Index fields the object uses: time field, aggregation fields, TSVB fields, query fields."""
    used: set[str] = set()
    if obj.type == "index-pattern":
        time_field = obj.attributes.get("timeFieldName")
        if isinstance(time_field, str):
            used.add(time_field)
        listed = obj.attributes.get("fields")
        if isinstance(listed, str):
            used |= {f["name"] for f in json.loads(listed)}
    source = _json_attribute(obj, "kibanaSavedObjectMeta", "searchSourceJSON")
    if isinstance(source, dict):
        used |= _query_fields(source.get("query"))
    state = _json_attribute(obj, "visState")
    if isinstance(state, dict):
        for agg in state.get("aggs", []):
            field = agg.get("params", {}).get("field")
            if isinstance(field, str):
                used.add(field)
        used |= _tsvb_fields(state.get("params", {})) if state.get("type") == "metrics" else set()
    return used


def _tsvb_fields(params: Mapping[str, Any]) -> set[str]:
    used = {params[key] for key in ("time_field", "default_timefield") if isinstance(params.get(key), str)}
    used |= _query_fields(params.get("filter"))
    for series in params.get("series", []):
        used |= {series[key] for key in ("terms_field", "series_time_field") if isinstance(series.get(key), str)}
        used |= _query_fields(series.get("filter"))
        for split in series.get("split_filters", []):
            used |= _query_fields(split.get("filter"))
        for metric in series.get("metrics", []):
            if isinstance(metric.get("field"), str):
                used.add(metric["field"])
            used |= _query_fields(metric.get("numerator")) | _query_fields(metric.get("denominator"))
    return used


def _query_fields(query: Any) -> set[str]:
    """Fields named in a ``{"query": ..., "language": "kuery"|"lucene"}`` object or a bare string."""
    text = query.get("query") if isinstance(query, Mapping) else query
    if not isinstance(text, str):
        return set()
    return set(_QUERY_FIELD.findall(text))


def _is_field(name: str, fields: Mapping[str, FieldType]) -> bool:
    """A schema field, or a key inside a map field (``properties.campaign`` of a flat_object)."""
    if name in fields:
        return True
    parent, _, key = name.partition(".")
    return bool(key) and isinstance(fields.get(parent), MapOf)


def _type_problems(obj: SavedObject, fields: Mapping[str, FieldType]) -> Iterable[str]:
    """Aggregations that cannot work on the field's type (a percentile of a keyword, ...)."""
    if obj.type == "index-pattern":
        time_field = obj.attributes.get("timeFieldName")
        if isinstance(time_field, str) and time_field in fields and fields[time_field] not in _TEMPORAL:
            yield f"time field {time_field!r} is not a timestamp"
    state = _json_attribute(obj, "visState")
    if not isinstance(state, dict):
        return
    for agg in state.get("aggs", []):
        field = agg.get("params", {}).get("field")
        if field not in fields:
            continue
        if agg.get("type") in _NUMERIC_AGGS and fields[field] not in _NUMERIC:
            yield f"{agg.get('type')} aggregation on non-numeric field {field!r}"
        if agg.get("type") == "date_histogram" and fields[field] not in _TEMPORAL:
            yield f"date_histogram on non-date field {field!r}"


def _pattern_problems(obj: SavedObject, index_pattern: str) -> Iterable[str]:
    if obj.type == "index-pattern" and obj.attributes.get("title") != index_pattern:
        yield f"index pattern title must be {index_pattern!r}"
    state = _json_attribute(obj, "visState")
    if isinstance(state, dict) and state.get("type") == "metrics":
        for key in ("index_pattern", "default_index_pattern"):
            if state.get("params", {}).get(key) not in (None, "", index_pattern):
                yield f"TSVB {key} must be {index_pattern!r}"
