"""Dirty streams: the number of duplicates and of each kind of bad record is known exactly."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from datagen.dirty import dirty_cdc, dirty_clickstream
from platform_core.schemas.clickstream import EVENT_TYPES, MIN_EVENT_TIME_MS


def _parse(lines: tuple[str, ...]) -> tuple[list[dict[str, Any]], int]:
    parsed, unparsable = [], 0
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            unparsable += 1
    return parsed, unparsable


def test_clickstream_duplicates_and_bad_lines_are_counted(events: list[dict[str, Any]]) -> None:
    # Given a dirty stream derived from the good events
    stream = dirty_clickstream(events, duplicates=37, bad=20, seed=1)
    # Then it holds every good event, the resends and the bad lines, and says so
    assert len(stream.lines) == len(events) + 37 + 20
    assert stream.manifest() == {
        "lines": len(events) + 57,
        "good": len(events),
        "duplicates": 37,
        "bad": 20,
        "bad_by_kind": {"not_json": 5, "missing_field": 5, "absurd_time": 5, "unknown_event_type": 5},
    }
    parsed, unparsable = _parse(stream.lines)
    assert unparsable == 5
    good_ids = {e["event_id"] for e in events}
    ids = Counter(e.get("event_id") for e in parsed)
    assert sum(ids[i] - 1 for i in good_ids) == 37  # extra copies of good events, nothing else
    bad = [e for e in parsed if e.get("event_id") not in good_ids]
    assert len(bad) == 15
    missing = [e for e in bad if not {"event_id", "event_time", "event_type", "session_id"} <= set(e)]
    unknown = [e for e in bad if e.get("event_type") not in EVENT_TYPES and "event_type" in e]
    absurd = [
        e
        for e in bad
        if (isinstance(e.get("event_time"), int) and e["event_time"] < MIN_EVENT_TIME_MS)
        or (isinstance(e.get("event_time"), str) and e["event_time"][:4] in ("1999", "2999"))
    ]
    assert (len(missing), len(unknown), len(absurd)) == (5, 5, 5)


def test_a_resend_arrives_after_its_original(events: list[dict[str, Any]]) -> None:
    # Given a stream with resends only
    stream = dirty_clickstream(events[:300], duplicates=30, bad=0, seed=2)
    ids = [json.loads(line)["event_id"] for line in stream.lines]
    # Then the first copies keep the original order (no resend overtakes its original)
    first_copies = list(dict.fromkeys(ids))
    assert first_copies == [e["event_id"] for e in events[:300]]
    assert len(ids) - len(first_copies) == 30


def test_dirty_streams_are_reproducible(events: list[dict[str, Any]]) -> None:
    a = dirty_clickstream(events[:500], duplicates=10, bad=10, seed=3)
    b = dirty_clickstream(events[:500], duplicates=10, bad=10, seed=3)
    assert a == b
    assert a.lines != dirty_clickstream(events[:500], duplicates=10, bad=10, seed=4).lines


def test_cdc_duplicates_and_bad_lines_are_counted(cdc: list[dict[str, Any]]) -> None:
    stream = dirty_cdc(cdc, duplicates=9, bad=6, seed=1)
    assert stream.bad_counts == {"not_json": 2, "missing_data": 2, "missing_operation": 2}
    parsed, unparsable = _parse(stream.lines)
    assert unparsable == 2
    assert sum("data" not in r for r in parsed) == 2
    assert sum("operation" not in r["metadata"] for r in parsed) == 2
    good = Counter(json.dumps(r, sort_keys=True) for r in cdc)
    resent = Counter(json.dumps(r, sort_keys=True) for r in parsed)
    assert sum(resent[k] - good[k] for k in good) == 9


def test_unknown_kinds_and_negative_counts_are_refused(events: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        dirty_clickstream(events, duplicates=0, bad=1, kinds=("gremlins",))
    with pytest.raises(ValueError, match="negative"):
        dirty_clickstream(events, duplicates=-1, bad=0)
