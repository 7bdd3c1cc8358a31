"""The metadata rows the lake gets from the video-metadata stream match the stored segments.

In AWS, Firehose converts each stream record into one Parquet row of a Glue table whose columns are
the union of the three event schemas (stacks/constructs/video_lake.py; tests/video_stack checks the
delivery stream and the table). Here the same conversion is done with pyarrow from the same
schemas, so every value the ingest emits has to fit its column, and the rows read back are compared
with the objects in S3, after a worker was killed between announcing a segment and moving the
watermark (the one step that may announce twice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdas.video_ingest.sinks import Sinks
from platform_core.arrow_schema import arrow_type
from platform_core.schema import Primitive
from platform_core.schemas.video import GAP_EVENT, QUARANTINE_EVENT, SEGMENT_EVENT, event_id
from tests.video.conftest import BUCKET, STREAM, config_for, make_worker, run, utc


def lake_schema() -> pa.Schema:
    """The metadata table's columns: every event field once, in first-seen order."""
    fields: dict[str, pa.Field] = {}
    for schema in (SEGMENT_EVENT, GAP_EVENT, QUARANTINE_EVENT):
        for f in schema.fields:
            assert isinstance(f.type, Primitive), f"{schema.name}.{f.name}: events are flat"
            fields.setdefault(f.name, pa.field(f.name, arrow_type(f.type)))
    return pa.schema(list(fields.values()))


def land(events: list[dict[str, Any]], path: Path) -> None:
    """As the delivery stream does: one row per record, timestamps parsed, absent columns null."""
    schema = lake_schema()
    rows = []
    for event in events:
        assert set(event) <= set(schema.names), f"no column for {set(event) - set(schema.names)}"
        row = dict.fromkeys(schema.names)
        for name, value in event.items():
            timestamp = value is not None and pa.types.is_timestamp(schema.field(name).type)
            # yyyy-MM-dd'T'HH:mm:ss.SSSZZ, the format the table's SerDe is given
            row[name] = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z") if timestamp else value
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


class _Killed(BaseException):
    """The worker dies (Lambda timeout): nothing after it runs, its lease stays."""


@dataclass(frozen=True)
class _DiesAfterAnnouncing(Sinks):
    sequence: int = 0

    def announce(self, event: Any) -> None:
        super().announce(event)
        if event.get("event_type") == "segment" and event.get("media_sequence") == self.sequence:
            raise _Killed


def test_lake_rows_match_the_stored_segments_after_a_restart(aws, camera_factory, tmp_path):
    # Given a camera that withholds segment 1 and serves garbage for segment 3
    camera = camera_factory(segments=6, window=6)
    camera.withhold(1)
    camera.corrupt(3)
    config = config_for(camera)
    # ... and a worker killed right after announcing segment 2, taken over once its lease expired
    dying = _DiesAfterAnnouncing(aws.s3, aws.kinesis, BUCKET, STREAM, sequence=2)
    with pytest.raises(_Killed):
        run(make_worker(aws, sinks=dying), config)
    later = utc("2100-01-01T00:00:00")
    assert run(make_worker(aws, clock=lambda: later), config).stored == [2, 4, 5]

    # When the stream's records land in the lake as Parquet rows
    records = [{k: v for k, v in e.items() if k != "_partition_key"} for e in aws.events()]
    land(records, tmp_path / "part-0.parquet")
    rows = pq.read_table(tmp_path / "part-0.parquet").to_pylist()

    # Then, one row per event_id (the key readers dedupe on), the segment rows are the stored objects
    assert len(rows) == len(records)
    unique = {r["event_id"]: r for r in rows}
    segments = [r for r in unique.values() if r["event_type"] == "segment"]
    assert sorted(r["s3_key"] for r in segments) == aws.keys("video/")
    assert sorted(r["media_sequence"] for r in segments) == [0, 2, 4, 5]
    assert {r["event_id"] for r in segments} == {event_id("segment", "cam-1", s) for s in (0, 2, 4, 5)}
    for r in segments:
        head = aws.s3.head_object(Bucket=BUCKET, Key=r["s3_key"])
        assert r["bytes"] == head["ContentLength"]
        assert (r["video_codec"], r["audio_codec"], r["width"], r["height"]) == ("h264", "aac", 320, 240)
        assert r["ingested_at"] is not None and r["from_sequence"] is None
    # ... the killed step was announced twice: the identical row, and still one object
    repeated = [r for r in rows if r["event_type"] == "segment" and r["media_sequence"] == 2]
    assert len(repeated) == 2 and repeated[0] == repeated[1]
    # ... and the gap and the quarantine are rows too, with their reasons
    others = sorted(
        (r["event_type"], r["from_sequence"] if r["event_type"] == "gap" else r["media_sequence"], r["reason"])
        for r in unique.values()
        if r["event_type"] != "segment"
    )
    assert others == [("gap", 1, "not_found"), ("quarantine", 3, "unreadable_container")]
    assert [r["s3_key"] for r in unique.values() if r["event_type"] == "quarantine"] == aws.keys("video-quarantine/")
