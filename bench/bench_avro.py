"""Avro (fastavro) against JSON for the records the platform writes to its change log.

The schema is the CDC transition schema (``platform_core.schemas.cdc.TRANSITION``) when that
module exists, else the clickstream raw-lake schema; either way it is derived with
:func:`platform_core.schema.avro_schema`, never written by hand. Records are generated from the
schema's own fields, so a schema change changes the benchmark with it.

Measured, in records per CPU-second (best of interleaved rounds) and bytes per record:

- Avro schemaless (one record per buffer, what a Kinesis record or a registry-framed message holds);
- Avro object container file, uncompressed and deflate (what lands in S3);
- JSON lines of the same records (the peer): compact ``json.dumps``, and gzip of the whole file.

Run: ``.venv/bin/python -m bench.bench_avro`` (prints JSON).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fastavro

from platform_core.schema import Field, MapOf, Primitive, Schema, StructOf, avro_schema

RECORDS = 10_000
ROUNDS = 3
SEED = 7

_PLANS = ("basic", "standard", "premium", "family")
_START = datetime(2026, 1, 1, tzinfo=UTC)


def benchmark_schema() -> Schema:
    """The CDC transition schema if the CDC package is there, else the clickstream raw schema."""
    if importlib.util.find_spec("platform_core.schemas.cdc") is not None:
        from platform_core.schemas.cdc import TRANSITION

        return TRANSITION
    from platform_core.schemas.clickstream import CLICKSTREAM_RAW

    return CLICKSTREAM_RAW


def _string(name: str, rng: random.Random) -> str:
    """A plausible value for a string field, chosen by what its name says it holds."""
    if name.endswith("event_id") or name == "session_id":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if name.endswith("user_id"):
        return f"u-{rng.randint(1, 2_000_000):07d}"
    if name.endswith("plan"):
        return rng.choice(_PLANS)
    if name == "transition":
        return rng.choice(("subscribed", "cancelled", "renewed", "plan_changed", "reactivated"))
    if name == "operation":
        return rng.choice(("insert", "update", "update", "delete"))
    if name == "before_origin":
        return rng.choice(("image", "state", "absent"))
    if name == "source_position":
        return f"{rng.randint(10**15, 10**16)}-{rng.randint(1, 10**6):010d}-{rng.getrandbits(48):012x}"
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(6, 24)))


def _value(field: Field, rng: random.Random) -> Any:
    """A value of the field's type; optional fields are null one time in ten."""
    if not field.required and rng.random() < 0.1:
        return None
    return _typed(field.name, field.type, rng)


def _typed(name: str, kind: Primitive | MapOf | StructOf, rng: random.Random) -> Any:
    if isinstance(kind, MapOf):
        return {f"k{i}": _typed(name, kind.values, rng) for i in range(rng.randint(0, 4))}
    if isinstance(kind, StructOf):
        return {f.name: _value(f, rng) for f in kind.fields}
    if kind is Primitive.STRING:
        return _string(name, rng)
    if kind is Primitive.BOOLEAN:
        return rng.random() < 0.5
    if kind is Primitive.INT:
        return rng.randint(0, 2**31 - 1)
    if kind is Primitive.LONG:
        return rng.randint(0, 2**62)
    if kind is Primitive.DOUBLE:
        return round(rng.uniform(1, 40), 2)
    if kind is Primitive.TIMESTAMP:
        return _START + timedelta(milliseconds=rng.randint(0, 300 * 86_400_000))
    return (_START + timedelta(days=rng.randint(0, 400))).date()


def make_records(schema: Schema, count: int, seed: int = SEED) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{f.name: _value(f, rng) for f in schema.fields} for _ in range(count)]


def _json_ready(value: Any) -> Any:
    """What the same value looks like in the platform's JSON: epoch milliseconds and ISO dates."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def _cpu_seconds(action: Callable[[], object]) -> float:
    start = time.process_time()
    action()
    return time.process_time() - start


def run() -> dict[str, Any]:
    schema = benchmark_schema()
    parsed = fastavro.parse_schema(avro_schema(schema))
    records = make_records(schema, RECORDS)
    json_records = [_json_ready(r) for r in records]

    def schemaless() -> list[bytes]:
        out = []
        for record in records:
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, parsed, record)
            out.append(buffer.getvalue())
        return out

    def container(codec: str) -> bytes:
        buffer = io.BytesIO()
        fastavro.writer(buffer, parsed, records, codec=codec)
        return buffer.getvalue()

    def json_lines() -> list[bytes]:
        return [json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() for r in json_records]

    actions: dict[str, Callable[[], object]] = {
        "avro_schemaless": schemaless,
        "avro_container_null": lambda: container("null"),
        "avro_container_deflate": lambda: container("deflate"),
        "json": json_lines,
        "json_gzip": lambda: gzip.compress(b"\n".join(json_lines()), compresslevel=6),
    }
    timings: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(ROUNDS):  # interleaved, so every format sees the same machine load
        for name, action in actions.items():
            timings[name].append(_cpu_seconds(action))
    rates = {name: RECORDS / max(min(seconds), 1e-9) for name, seconds in timings.items()}

    single = schemaless()
    if fastavro.schemaless_reader(io.BytesIO(single[0]), parsed, parsed) != records[0]:
        raise RuntimeError("an Avro record does not read back as written; the figures would be meaningless")
    json_bytes = sum(len(line) + 1 for line in json_lines())  # + newline
    sizes = {
        "avro_schemaless": sum(len(b) for b in single),
        "avro_container_null": len(container("null")),
        "avro_container_deflate": len(container("deflate")),
        "json": json_bytes,
        "json_gzip": len(gzip.compress(b"\n".join(json_lines()), compresslevel=6)),
    }
    figures: dict[str, Any] = {
        "schema": f"{schema.namespace}.{schema.name}",
        "fields": len(schema.fields),
        "records": RECORDS,
        "rounds": ROUNDS,
    }
    for name in actions:
        figures[f"{name}_records_per_cpu_second"] = round(rates[name])
        figures[f"{name}_bytes_per_record"] = round(sizes[name] / RECORDS, 1)
    figures["avro_schemaless_over_json_speed"] = round(rates["avro_schemaless"] / rates["json"], 2)
    figures["avro_container_null_over_json_speed"] = round(rates["avro_container_null"] / rates["json"], 2)
    figures["avro_schemaless_over_json_size"] = round(sizes["avro_schemaless"] / sizes["json"], 3)
    figures["avro_container_deflate_over_json_gzip_size"] = round(
        sizes["avro_container_deflate"] / sizes["json_gzip"], 3
    )
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
