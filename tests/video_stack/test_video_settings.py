"""What the video stack derives without synthesising: config checks, the metadata table schema,
per-camera retention rules, the cameras' environment variable and the layer's build check."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_kms as kms

from lambdas.video_ingest.settings import parse_cameras
from platform_core.config import FunctionConfig, VideoConfig, load_config
from platform_core.schema import Field, Primitive, Schema
from platform_core.schemas.video import GAP_EVENT, QUARANTINE_EVENT, SEGMENT_EVENT, CameraConfig, iso_utc
from stacks.constructs import video_ingest
from stacks.constructs.camera_streams import CameraStreams
from stacks.constructs.lambda_packaging import MissingLambdaDependenciesError
from stacks.constructs.video_lake import VIDEO_METADATA_TABLE, union_schema, video_lifecycle_rules
from stacks.policies import data_removal_policy

HLS = CameraConfig("cam-1", "https://cams.example.com/one/master.m3u8", retention_days=30)
KVS = CameraConfig("cam-10", "kvs:lobby", retention_days=7)

# ---------------------------------------------------------------------------------------------
# VideoConfig
# ---------------------------------------------------------------------------------------------


def test_every_environment_sizes_the_ingest_for_one_vcpu_and_no_cameras():
    for env_name in ("dev", "prod"):
        video = load_config(env_name).video
        assert video.cameras == ()
        assert (video.ingest.memory_mb, video.ingest.timeout_seconds) == (1769, 90)
        assert video.ingest.reserved_concurrency is None


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"cameras": (HLS, dataclasses.replace(KVS, camera_id="cam-1"))}, "distinct camera_id"),
        ({"cameras": (KVS, dataclasses.replace(KVS, camera_id="cam-2"))}, "same Kinesis Video stream"),
        ({"schedule_rate_minutes": 0}, "at least 1"),
        ({"poll_interval_seconds": 5.0, "ingest": FunctionConfig(memory_mb=1769, timeout_seconds=50)}, "cover"),
        ({"async_retry_attempts": 3}, "0..2"),
        ({"max_event_age_seconds": 30}, "60..21600"),
        ({"schedule_rate_minutes": 10, "unreachable_alarm_minutes": 5}, "sees no run"),
        ({"ingest": FunctionConfig(memory_mb=1769, timeout_seconds=901)}, "Lambda limits"),
    ],
)
def test_video_config_refuses_settings_that_cannot_work(changes, complaint):
    with pytest.raises(ValueError, match=complaint):
        VideoConfig(**changes)


def test_polling_is_accepted_when_the_timeout_covers_the_schedule_period():
    video = VideoConfig(poll_interval_seconds=3.0, ingest=FunctionConfig(memory_mb=1769, timeout_seconds=70))
    assert video.poll_interval_seconds == 3.0


# ---------------------------------------------------------------------------------------------
# The metadata table: one table, the union of the three event schemas
# ---------------------------------------------------------------------------------------------


def test_every_field_of_every_video_event_is_a_column_of_the_same_type():
    for schema in (SEGMENT_EVENT, GAP_EVENT, QUARANTINE_EVENT):
        for f in schema.fields:
            assert VIDEO_METADATA_TABLE.field(f.name).type == f.type, f"{schema.name}.{f.name}"
    names = VIDEO_METADATA_TABLE.field_names
    assert len(names) == len(set(names))
    assert names[:3] == ("event_id", "event_type", "camera_id")


def test_only_the_fields_every_event_requires_are_required_in_the_table():
    assert set(VIDEO_METADATA_TABLE.required_names) == {"event_id", "event_type", "camera_id"}
    assert [p.name for p in VIDEO_METADATA_TABLE.partition_keys] == ["year", "month", "day", "hour"]


def test_a_field_with_two_types_cannot_be_merged_into_one_column():
    a = Schema("A", "t", (Field("size", Primitive.LONG, required=True),))
    b = Schema("B", "t", (Field("size", Primitive.STRING, required=True),))
    with pytest.raises(ValueError, match="size"):
        union_schema("AB", "both", (a, b))


def test_video_timestamps_have_the_shape_the_parquet_conversion_is_told_to_parse():
    # VIDEO_TIMESTAMP_FORMATS is yyyy-MM-dd'T'HH:mm:ss.SSSZZ: milliseconds and a literal Z offset.
    at = datetime(2024, 2, 29, 23, 5, 7, 123_000, tzinfo=UTC)
    text = iso_utc(at)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", text)
    assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z") == at


# ---------------------------------------------------------------------------------------------
# Retention rules the data lake stack adds to the raw bucket
# ---------------------------------------------------------------------------------------------


def test_each_camera_keeps_segments_frames_and_quarantine_for_its_retention():
    rules = video_lifecycle_rules([HLS, KVS])
    by_prefix = {str(rule.prefix): rule for rule in rules}
    assert set(by_prefix) == {
        f"{kind}/camera_id={camera}/"
        for kind in ("video", "video-frames", "video-quarantine")
        for camera in ("cam-1", "cam-10")
    }
    assert _days(by_prefix["video/camera_id=cam-1/"].expiration) == 30
    assert _days(by_prefix["video-frames/camera_id=cam-10/"].expiration) == 7
    assert all(_days(rule.noncurrent_version_expiration) == 1 for rule in rules)
    assert len({rule.id for rule in rules}) == len(rules)


def test_a_camera_rule_never_reaches_another_camera_whose_id_it_prefixes():
    prefixes = [str(rule.prefix) for rule in video_lifecycle_rules([HLS])]
    key_of_cam_10 = "video/camera_id=cam-10/date=2024-01-01/hour=00/5.ts"
    assert not any(key_of_cam_10.startswith(prefix) for prefix in prefixes)


def _days(duration: Duration | None) -> float:
    assert duration is not None
    return duration.to_days()


# ---------------------------------------------------------------------------------------------
# What the function is given
# ---------------------------------------------------------------------------------------------


def test_the_function_reads_back_exactly_the_configured_cameras():
    config = dataclasses.replace(load_config("dev"), video=VideoConfig(cameras=(HLS, KVS)))
    assert parse_cameras(video_ingest.cameras_environment(config)) == (HLS, KVS)


def test_a_camera_list_too_large_for_lambdas_environment_fails_the_synth():
    cameras = tuple(
        CameraConfig(f"camera-{i:03d}", f"https://cams.example.com/site/{i:03d}/master.m3u8") for i in range(40)
    )
    config = dataclasses.replace(load_config("dev"), video=VideoConfig(cameras=cameras))
    with pytest.raises(ValueError, match="SSM Parameter Store"):
        video_ingest.cameras_environment(config)


def test_a_missing_pyav_layer_says_how_to_build_it(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(video_ingest, "VIDEO_LAYER_DIR", tmp_path / "video-deps")
    with pytest.raises(MissingLambdaDependenciesError, match="make setup"):
        video_ingest.video_layer_dir()


def test_the_built_pyav_layer_is_found():
    assert (video_ingest.video_layer_dir() / "python" / "av").is_dir()


# ---------------------------------------------------------------------------------------------
# Kinesis Video streams (construct checks, no synthesis)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("camera", "complaint"),
    [
        (CameraConfig("cam-x", "kvs:lobby camera"), "not a valid Kinesis Video stream name"),
        (CameraConfig("cam-y", "kvs:lobby", retention_days=3651), "at most 87600 hours"),
    ],
)
def test_a_kinesis_video_stream_kvs_would_refuse_fails_the_synth(camera, complaint):
    stack = Stack(App(), "Probe")
    key = kms.Key(stack, "Key")
    with pytest.raises(ValueError, match=complaint):
        CameraStreams(
            stack, "Streams", cameras=[camera], key=key, removal_policy=data_removal_policy(load_config("dev"))
        )
