"""The video contract: camera configuration, S3 layout, event ids and event schemas."""

from __future__ import annotations

import pytest

from platform_core.schema import avro_schema, glue_columns
from platform_core.schemas.video import (
    GAP_EVENT,
    GAP_REASONS,
    QUARANTINE_REASONS,
    SCHEMAS,
    SEGMENT_EVENT,
    CameraConfig,
    checked_event,
    event_id,
    frame_key,
    iso_utc,
    quarantine_key,
    segment_key,
)
from tests.video.conftest import utc


def test_a_camera_reads_hls_or_a_kinesis_video_stream():
    hls = CameraConfig("cam-1", "https://cams.example.com/1/master.m3u8")
    kvs = CameraConfig("cam-2", "kvs:front-door", variant=500_000, frame_sample_seconds=5)
    assert (hls.source_kind, hls.variant, hls.retention_days, hls.frame_sample_seconds) == (
        "hls",
        "highest",
        30,
        None,
    )
    assert (kvs.source_kind, kvs.kvs_stream_name) == ("kvs", "front-door")
    with pytest.raises(ValueError, match="HLS"):
        _ = hls.kvs_stream_name


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"camera_id": "a/b"}, "camera_id"),
        ({"camera_id": "x=1"}, "camera_id"),
        ({"camera_id": ""}, "camera_id"),
        ({"source": "rtsp://cam/1"}, "source"),
        ({"source": "kvs:"}, "source"),
        ({"variant": "best"}, "variant"),
        ({"variant": 0}, "variant"),
        ({"variant": True}, "variant"),
        ({"retention_days": 0}, "retention_days"),
        ({"frame_sample_seconds": 0}, "frame_sample_seconds"),
    ],
)
def test_a_bad_camera_setting_is_refused_with_a_reason(kwargs, complaint):
    settings = {"camera_id": "cam-1", "source": "http://cam/index.m3u8"} | kwargs
    with pytest.raises(ValueError, match=complaint):
        CameraConfig(**settings)


def test_a_camera_round_trips_through_json_and_rejects_unknown_keys():
    camera = CameraConfig("cam-1", "kvs:door", variant="lowest", retention_days=7, frame_sample_seconds=2.5)
    assert CameraConfig.from_dict(camera.to_dict()) == camera
    with pytest.raises(ValueError, match="unknown camera settings: varient"):
        CameraConfig.from_dict({"camera_id": "c", "source": "kvs:d", "varient": "lowest"})
    with pytest.raises(ValueError, match="'source' is required"):
        CameraConfig.from_dict({"camera_id": "c"})


def test_keys_follow_the_documented_layout_in_utc():
    at = utc("2025-01-02T03:04:05")
    assert segment_key("cam-1", 42, at) == "video/camera_id=cam-1/date=2025-01-02/hour=03/42.ts"
    assert frame_key("cam-1", 42, 1500, at) == "video-frames/camera_id=cam-1/date=2025-01-02/hour=03/42-1500.jpg"
    assert quarantine_key("cam-1", 42) == "video-quarantine/camera_id=cam-1/42.ts"
    assert iso_utc(at) == "2025-01-02T03:04:05.000Z"


def test_event_ids_are_deterministic_and_distinct_per_kind_camera_and_sequence():
    assert event_id("segment", "cam-1", 7) == event_id("segment", "cam-1", 7)
    ids = {
        event_id("segment", "cam-1", 7),
        event_id("segment", "cam-2", 7),
        event_id("segment", "cam-1", 8),
        event_id("quarantine", "cam-1", 7),
        event_id("gap", "cam-1", 7, 7),
        event_id("gap", "cam-1", 7, 9),
    }
    assert len(ids) == 6
    # Pinned: a change of the id scheme would make every replay after a deploy look like a new event.
    assert event_id("segment", "cam-1", 7) == "169d9575-fc54-5232-9308-da7c4fb5efbc"


def test_checked_event_refuses_missing_unknown_and_mistyped_fields():
    good = {
        "event_id": "e",
        "event_type": "gap",
        "camera_id": "cam-1",
        "from_sequence": 3,
        "to_sequence": 4,
        "reason": "window_slid",
        "detail": None,
        "detected_at": "2025-01-01T00:00:00.000Z",
    }
    assert checked_event(GAP_EVENT, good) == good
    with pytest.raises(ValueError, match="missing field reason"):
        checked_event(GAP_EVENT, {k: v for k, v in good.items() if k != "reason"})
    with pytest.raises(ValueError, match="unknown field colour"):
        checked_event(GAP_EVENT, good | {"colour": "red"})
    with pytest.raises(ValueError, match="from_sequence: expected long"):
        checked_event(GAP_EVENT, good | {"from_sequence": "3"})


def test_the_schemas_derive_glue_and_avro_representations():
    columns = {c["name"]: c["type"] for c in glue_columns(SEGMENT_EVENT)}
    assert columns["media_sequence"] == "bigint"
    assert columns["discontinuity"] == "boolean"
    assert columns["ingested_at"] == "timestamp"
    avro = avro_schema(SEGMENT_EVENT)
    assert avro["name"] == "VideoSegment"
    assert {f["name"] for f in avro["fields"]} == set(SEGMENT_EVENT.field_names)
    assert set(SCHEMAS) == {"segment", "gap", "quarantine"}
    assert "window_slid" in GAP_REASONS and "unreadable_container" in QUARANTINE_REASONS
