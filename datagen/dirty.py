"""Dirty streams with a known amount of dirt: resent duplicates and bad records.

For the demo and the reliability tests: a stage downstream must drop every duplicate, route every
bad record to its error output with a reason, and pass every good record; with the counts known
here, a test can check all three exactly.

- A duplicate is a resend of a good record, byte for byte (same ``event_id`` / same CDC record),
  delivered a little after the original, as a producer retry would.
- A bad record gets a fresh identity (never the id of a good record), so it cannot be mistaken for
  a duplicate, and is one of a few kinds, each counted separately.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datagen.config import rng_for
from platform_core.schemas.clickstream import CLICKSTREAM_EVENT

CLICKSTREAM_BAD_KINDS: tuple[str, ...] = ("not_json", "missing_field", "absurd_time", "unknown_event_type")
CDC_BAD_KINDS: tuple[str, ...] = ("not_json", "missing_data", "missing_operation")
_ABSURD_TIMES: tuple[str | int, ...] = ("1999-12-31T23:59:59Z", "2999-01-01T00:00:00Z", 86_400_000)
_MAX_RESEND_DISTANCE = 50


@dataclass(frozen=True)
class DirtyStream:
    """NDJSON lines in delivery order, and how many of each sort they hold."""

    lines: tuple[str, ...]
    good_count: int  # distinct good records
    duplicate_count: int  # extra copies of good records
    bad_counts: dict[str, int]  # kind of bad record -> how many

    @property
    def bad_count(self) -> int:
        return sum(self.bad_counts.values())

    def manifest(self) -> dict[str, Any]:
        return {
            "lines": len(self.lines),
            "good": self.good_count,
            "duplicates": self.duplicate_count,
            "bad": self.bad_count,
            "bad_by_kind": dict(self.bad_counts),
        }


def dirty_clickstream(
    events: Sequence[dict[str, Any]],
    *,
    duplicates: int,
    bad: int,
    seed: int = 0,
    kinds: Sequence[str] = CLICKSTREAM_BAD_KINDS,
) -> DirtyStream:
    """Clickstream events as NDJSON, with ``duplicates`` resends and ``bad`` bad lines mixed in."""
    return _dirty(events, duplicates=duplicates, bad=bad, seed=seed, kinds=kinds, corrupt=_bad_event, name="click")


def dirty_cdc(
    records: Sequence[dict[str, Any]],
    *,
    duplicates: int,
    bad: int,
    seed: int = 0,
    kinds: Sequence[str] = CDC_BAD_KINDS,
) -> DirtyStream:
    """DMS records as JSON lines, with ``duplicates`` resends and ``bad`` bad lines mixed in."""
    return _dirty(records, duplicates=duplicates, bad=bad, seed=seed, kinds=kinds, corrupt=_bad_cdc, name="cdc")


Corruptor = Callable[[dict[str, Any], str, np.random.Generator], str]


def _dirty(
    records: Sequence[dict[str, Any]],
    *,
    duplicates: int,
    bad: int,
    seed: int,
    kinds: Sequence[str],
    corrupt: Corruptor,
    name: str,
) -> DirtyStream:
    if duplicates < 0 or bad < 0:
        raise ValueError("counts must not be negative")
    if (duplicates or bad) and not records:
        raise ValueError("need at least one good record to derive duplicates and bad records from")
    if bad and not kinds:
        raise ValueError("need at least one kind of bad record")
    rng = rng_for(seed, f"dirty-{name}")
    lines = [_dumps(r) for r in records]
    # Resends: each lands a few records after its original (a retry after a timeout).
    originals = rng.integers(0, len(records), duplicates) if duplicates else np.zeros(0, dtype=int)
    inserts: list[tuple[float, str]] = [
        (float(k) + float(rng.integers(1, _MAX_RESEND_DISTANCE + 1)) - 0.5, lines[int(k)]) for k in originals
    ]
    counts: Counter[str] = Counter()
    for j in range(bad):
        kind = kinds[j % len(kinds)]
        template = records[int(rng.integers(0, len(records)))]
        inserts.append((float(rng.uniform(0, len(records))), corrupt(template, kind, rng)))
        counts[kind] += 1
    merged = [(float(i), line) for i, line in enumerate(lines)] + inserts
    merged.sort(key=lambda pair: pair[0])
    return DirtyStream(
        lines=tuple(line for _, line in merged),
        good_count=len(records),
        duplicate_count=duplicates,
        bad_counts=dict(counts),
    )


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _fresh_id(rng: np.random.Generator) -> str:
    return f"bad-{int(rng.integers(0, 2**62)):016x}"


def _bad_event(template: dict[str, Any], kind: str, rng: np.random.Generator) -> str:
    event = {**template, "event_id": _fresh_id(rng)}
    if kind == "not_json":
        text = _dumps(event)
        return text[: max(1, len(text) // 2)]  # a truncated write
    if kind == "missing_field":
        required = [f for f in CLICKSTREAM_EVENT.required_names if f != "event_id"]
        event.pop(required[int(rng.integers(0, len(required)))])
        return _dumps(event)
    if kind == "absurd_time":
        event["event_time"] = _ABSURD_TIMES[int(rng.integers(0, len(_ABSURD_TIMES)))]
        return _dumps(event)
    if kind == "unknown_event_type":
        event["event_type"] = "teleport"
        return _dumps(event)
    raise ValueError(f"unknown kind of bad clickstream record {kind!r}; expected one of {CLICKSTREAM_BAD_KINDS}")


def _bad_cdc(template: dict[str, Any], kind: str, rng: np.random.Generator) -> str:
    record = json.loads(_dumps(template))  # a deep copy
    record["metadata"]["transaction-id"] = int(rng.integers(1, 2**31))
    if kind == "not_json":
        text = _dumps(record)
        return text[: max(1, len(text) // 2)]
    if kind == "missing_data":
        record.pop("data", None)
        return _dumps(record)
    if kind == "missing_operation":
        record["metadata"].pop("operation", None)
        return _dumps(record)
    raise ValueError(f"unknown kind of bad CDC record {kind!r}; expected one of {CDC_BAD_KINDS}")
