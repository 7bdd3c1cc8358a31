"""The OpenSearch mapping of the ``clickstream-*`` indices, derived from ``CLICKSTREAM_RAW``.

Firehose writes what the clickstream transform emits (the lake row: timestamps as epoch
milliseconds), so the mapping reads ``event_time`` as a date in epoch milliseconds; without the
template OpenSearch's dynamic mapping would index it as a plain ``long`` and Dashboards could not
use it as the time field.
"""

from __future__ import annotations

from typing import Any

from platform_core.config import PlatformConfig
from platform_core.names import SEARCH_INDEX_PATTERN
from platform_core.schema import FieldType, MapOf, Primitive, Schema, StructOf
from platform_core.schemas.clickstream import CLICKSTREAM_RAW

TIME_FIELD = "event_time"
TEMPLATE_NAME = "clickstream"

# Keywords longer than this are kept in _source but not indexed (user agents, query strings).
_KEYWORD_IGNORE_ABOVE = 1024

_PRIMITIVES: dict[Primitive, dict[str, Any]] = {
    Primitive.STRING: {"type": "keyword", "ignore_above": _KEYWORD_IGNORE_ABOVE},
    Primitive.INT: {"type": "integer"},
    Primitive.LONG: {"type": "long"},
    Primitive.DOUBLE: {"type": "double"},
    Primitive.BOOLEAN: {"type": "boolean"},
    Primitive.TIMESTAMP: {"type": "date", "format": "epoch_millis||strict_date_optional_time"},
    Primitive.DATE: {"type": "date", "format": "strict_date||epoch_millis"},
}


def field_mapping(t: FieldType) -> dict[str, Any]:
    """The OpenSearch mapping of one schema type."""
    if isinstance(t, Primitive):
        return dict(_PRIMITIVES[t])
    if isinstance(t, MapOf):
        # Free-form keys: one flat field instead of a mapping that grows with every new key.
        return {"type": "flat_object"}
    return {"properties": {f.name: field_mapping(f.type) for f in t.fields}}


def schema_mapping(schema: Schema) -> dict[str, Any]:
    """Mappings for documents of ``schema``; fields outside it are kept in _source, not indexed."""
    return {
        "dynamic": False,
        "properties": {f.name: field_mapping(f.type) for f in schema.fields},
    }


def field_paths(schema: Schema) -> dict[str, FieldType]:
    """Every addressable field, nested ones dotted (``request.status``), with its type."""
    paths: dict[str, FieldType] = {}

    def walk(prefix: str, t: FieldType, name: str) -> None:
        path = f"{prefix}{name}"
        paths[path] = t
        if isinstance(t, StructOf):
            for inner in t.fields:
                walk(f"{path}.", inner.type, inner.name)

    for f in schema.fields:
        walk("", f.type, f.name)
    return paths


def clickstream_index_template(config: PlatformConfig) -> dict[str, Any]:
    """Body of ``PUT _index_template/clickstream``: shards and replicas follow the domain's shape."""
    settings = config.observability
    # One replica per extra zone: Multi-AZ with standby keeps a copy in each of the three zones.
    replicas = 2 if settings.opensearch_multi_az else (1 if settings.opensearch_data_nodes > 1 else 0)
    return {
        "index_patterns": [SEARCH_INDEX_PATTERN],
        "priority": 100,
        "template": {
            "settings": {
                "number_of_shards": settings.opensearch_data_nodes,
                "number_of_replicas": replicas,
            },
            "mappings": schema_mapping(CLICKSTREAM_RAW),
        },
        "_meta": {"source": f"{CLICKSTREAM_RAW.namespace}.{CLICKSTREAM_RAW.name}", "managed_by": "cloudformation"},
    }
