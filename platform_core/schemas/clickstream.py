"""The clickstream event: the contract of the collector API and the producer library, and the
row the transformation writes into the raw lake.

Everything else (Glue table, Parquet conversion, API Gateway request model, validators,
OpenSearch mapping) is derived from the two schemas here.
"""

from __future__ import annotations

from platform_core.schema import Field, MapOf, Primitive, Schema, StructOf

NAMESPACE = "platform.clickstream"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "page_view",
        "click",
        "search",
        "add_to_cart",
        "remove_from_cart",
        "purchase",
        "sign_in",
        "sign_out",
        "api_request",
        "voice_command",
    }
)

# Events before this instant or after now + MAX_FUTURE_SKEW are rejected as absurd.
MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_FUTURE_SKEW_MS = 24 * 3600 * 1000

# Kinesis refuses records over 1 MiB (data plus partition key); the producer and the collector
# reject anything larger with a clear error instead of letting the service do it.
MAX_RECORD_BYTES = 1024 * 1024

REQUEST = StructOf(
    name="Request",
    fields=(
        Field("method", Primitive.STRING, doc="HTTP method"),
        Field("path", Primitive.STRING, doc="URL path"),
        Field("query", Primitive.STRING, doc="raw query string"),
        Field("status", Primitive.INT, doc="HTTP status code"),
        Field("latency_ms", Primitive.DOUBLE, doc="server latency in milliseconds"),
    ),
)

_COMMON = (
    Field("event_id", Primitive.STRING, required=True, doc="idempotency key, unique per event"),
    Field(
        "event_time",
        Primitive.TIMESTAMP,
        required=True,
        doc="when the event happened (ISO-8601 with zone or epoch ms on input; UTC in the lake)",
    ),
    Field("event_type", Primitive.STRING, required=True, doc="one of EVENT_TYPES"),
    Field("session_id", Primitive.STRING, required=True, doc="session cookie; also the partition key"),
    Field("user_id", Primitive.STRING, doc="null for anonymous users"),
    Field("user_agent", Primitive.STRING, doc="raw User-Agent header"),
    Field("ip", Primitive.STRING, doc="client IPv4 or IPv6 address (protected in the lake)"),
    Field("referrer", Primitive.STRING, doc="how the user arrived"),
    Field("request", REQUEST, doc="request details"),
    Field("properties", MapOf(Primitive.STRING), doc="free-form string properties"),
)

CLICKSTREAM_EVENT = Schema(
    name="ClickstreamEvent",
    namespace=NAMESPACE,
    doc="A user interaction as producers send it.",
    fields=_COMMON,
)

CLICKSTREAM_RAW = Schema(
    name="ClickstreamRaw",
    namespace=NAMESPACE,
    doc="A validated clickstream event as it lands in the raw lake.",
    fields=(
        *_COMMON,
        Field("referrer_host", Primitive.STRING, doc="host part of the referrer"),
        Field("ua_browser", Primitive.STRING, doc="browser family parsed from user_agent"),
        Field("ua_browser_version", Primitive.STRING, doc="browser major version"),
        Field("ua_os", Primitive.STRING, doc="operating system family"),
        Field("ua_device", Primitive.STRING, doc="device family"),
        Field("ua_is_bot", Primitive.BOOLEAN, doc="the user agent is a known crawler"),
        Field("ingested_at", Primitive.TIMESTAMP, doc="when the stream accepted the record"),
    ),
    partition_keys=(
        Field("year", Primitive.STRING, doc="event_time year, UTC"),
        Field("month", Primitive.STRING, doc="event_time month, UTC, two digits"),
        Field("day", Primitive.STRING, doc="event_time day, UTC, two digits"),
        Field("hour", Primitive.STRING, doc="event_time hour, UTC, two digits"),
    ),
)


def collector_request_schema(max_records: int) -> dict[str, object]:
    """The collector API's request body: ``{"records": [event, ...]}``, derived from the schema."""
    from platform_core.schema import json_schema

    event = json_schema(
        CLICKSTREAM_EVENT,
        extra={
            "event_id": {"minLength": 1, "maxLength": 128},
            "session_id": {"minLength": 1, "maxLength": 256},
            "event_type": {"enum": sorted(EVENT_TYPES)},
        },
    )
    del event["$schema"]
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "CollectorRequest",
        "type": "object",
        "properties": {"records": {"type": "array", "minItems": 1, "maxItems": max_records, "items": event}},
        "required": ["records"],
    }
