"""Counts computed from what landed (files in the lake and in errors/), never from counters in
flight, so that the summary proves the pipeline rather than repeating what it believed."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any, cast

import duckdb
import fastavro


def parquet_rows(directory: Path, *, distinct: str | None = None) -> int:
    if not directory.exists() or not any(directory.rglob("*.parquet")):
        return 0
    expression = f"count(DISTINCT {distinct})" if distinct else "count(*)"
    pattern = str(directory / "**" / "*.parquet")
    result = (
        duckdb.connect()
        .execute(f"SELECT {expression} FROM read_parquet('{pattern}', hive_partitioning = true)")
        .fetchone()
    )
    return int(result[0]) if result else 0


def json_lines(directory: Path, pattern: str = "*.json*") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if not directory.exists():
        return rows
    for path in sorted(directory.rglob(pattern)):
        for line in path.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def avro_rows(directory: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if directory.exists():
        for path in sorted(directory.rglob("*.avro")):
            rows.extend(cast(dict[str, Any], r) for r in fastavro.reader(io.BytesIO(path.read_bytes())))
    return rows


def clickstream_summary(out: Path, input_records: int) -> dict[str, Any]:
    lake, errors = out / "lake", out / "errors" / "clickstream"
    accepted = parquet_rows(lake / "clickstream_raw")
    curated = parquet_rows(lake / "clickstream_curated")
    transform_rejects = json_lines(errors / "rejected")
    producer_rejects = json_lines(errors / "producer", "*.ndjson")
    conversion_failed = json_lines(errors / "format-conversion-failed")
    processing_failed = json_lines(errors / "processing-failed")
    rejected = len(transform_rejects) + len(producer_rejects) + len(conversion_failed)
    reasons = Counter(r.get("reason_code", "unknown") for r in transform_rejects)
    reasons.update(f"producer:{r['reason']['error_code']}" for r in producer_rejects)
    reasons.update("format_conversion_failed" for _ in conversion_failed)
    return {
        "input_records": input_records,
        "accepted": accepted,
        "rejected": rejected,
        "duplicates_dropped": accepted - curated,
        "curated_rows": curated,
        "distinct_event_ids_raw": parquet_rows(lake / "clickstream_raw", distinct="event_id"),
        # Firehose's own copy of every record the transform failed, next to our reasons file.
        "firehose_processing_failed": len(processing_failed),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "lost": input_records - accepted - rejected,
    }


def cdc_summary(out: Path, input_records: int) -> dict[str, Any]:
    transitions = avro_rows(out / "raw" / "cdc" / "transitions")
    snapshots = avro_rows(out / "raw" / "cdc_snapshots")
    errors = json_lines(out / "errors" / "cdc")
    control = 0  # DMS control records are acknowledged and ignored; the generator sends none
    applied = len({s["event_id"] for s in snapshots})
    kinds = Counter(str(t["transition"]) for t in transitions)
    stale = kinds.pop("stale", 0)
    unique_transitions = len({t["event_id"] for t in transitions})
    handled = applied + stale + len(errors) + control
    return {
        "input_records": input_records,
        "rejected": len(errors),
        "rejected_by_reason": dict(Counter(str(e.get("reason", e.get("reason_code", "unknown"))) for e in errors)),
        "applied_changes": applied,
        "duplicates_dropped": input_records - handled,
        "stale_ignored": stale,
        "transitions": dict(sorted(kinds.items())),
        "transition_rows_written": len(transitions),
        "duplicate_transition_rows": len(transitions) - unique_transitions,
        "history_rows": parquet_rows(out / "lake" / "subscription_history"),
        "label_rows": parquet_rows(out / "lake" / "churn_labels"),
    }
