"""Measure the planner's Parquet size assumption on the platform's own lake rows.

Runs the real clickstream transform over synthetic ~600-byte events (the generator of
``bench/bench_transform.py``), writes its lake rows as Snappy Parquet with the lake's Arrow
schema, in files of about one Firehose buffer, and prints Parquet bytes per byte of the JSON the
producers sent. Real traffic compresses differently (fewer distinct user agents and paths
compress better; high-cardinality properties worse), so measure your own data when you have it.

    .venv/bin/python -m planner.calibrate
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from platform_core.arrow_schema import arrow_schema
from platform_core.schemas.clickstream import CLICKSTREAM_RAW

BATCHES = 40  # x 500 records = 20,000 events


def _lake_rows(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    os.environ.setdefault("REJECTS_BUCKET", "calibration")
    os.environ.setdefault("IP_PROTECTION", "truncate")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from lambdas.clickstream_transform.handler import handler

    rows: list[dict[str, Any]] = []
    sent = 0
    for event in events:
        sent += sum(len(base64.b64decode(r["data"])) for r in event["records"])
        for record in handler(event, None)["records"]:
            if record["result"] == "Ok":
                rows.append(json.loads(base64.b64decode(record["data"])))
    return rows, sent


def _to_table(rows: list[dict[str, Any]]) -> pa.Table:
    schema = arrow_schema(CLICKSTREAM_RAW)
    for row in rows:
        for name in ("event_time", "ingested_at"):
            if isinstance(row.get(name), int):
                row[name] = datetime.fromtimestamp(row[name] / 1000)
    return pa.Table.from_pylist([{f.name: row.get(f.name) for f in schema} for row in rows], schema=schema)


def parquet_bytes_per_json_byte(batches: int = BATCHES, seed: int = 1) -> dict[str, float]:
    from bench.bench_transform import firehose_events

    rows, sent = _lake_rows(firehose_events(batches, random.Random(seed)))  # noqa: S311 - synthetic data, not secrets
    buffer = io.BytesIO()
    pq.write_table(_to_table(rows), buffer, compression="snappy")
    return {
        "events": float(len(rows)),
        "json_bytes_sent": float(sent),
        "parquet_bytes": float(len(buffer.getvalue())),
        "parquet_bytes_per_json_byte": round(len(buffer.getvalue()) / sent, 3),
    }


if __name__ == "__main__":
    print(json.dumps(parquet_bytes_per_json_byte(), indent=2))
