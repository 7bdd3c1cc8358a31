"""The Lambda entry point: EventBridge events in, results and EMF metric lines out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.video_ingest import handler
from lambdas.video_ingest.settings import Settings, SettingsError, parse_cameras, settings
from tests.video.conftest import BUCKET, STREAM, TABLE

SCHEDULED_EVENT = json.loads((Path(__file__).parent / "events" / "scheduled_event.json").read_text())


class LambdaContext:
    """The attributes of the Python runtime's context object that the handler reads."""

    function_name = "mlp-dev-video-ingest"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def configured(aws, camera_factory, monkeypatch):
    """Two cameras in the function's environment: cam-1 online, cam-2 offline."""
    online = camera_factory(segments=2, window=2)
    offline = camera_factory(segments=2, window=2)
    offline.go_offline()
    cameras = [
        {"camera_id": "cam-1", "source": online.url},
        {"camera_id": "cam-2", "source": offline.url, "variant": "lowest"},
    ]
    env = {
        "VIDEO_RAW_BUCKET": BUCKET,
        "VIDEO_METADATA_STREAM": STREAM,
        "VIDEO_WATERMARK_TABLE": TABLE,
        "VIDEO_CAMERAS": json.dumps(cameras),
        "VIDEO_HTTP_TIMEOUT_SECONDS": "2",
        "VIDEO_BACKOFF_SECONDS": "0.01",
        "VIDEO_STEP_BUDGET_SECONDS": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Clients stay cached across tests, as in a warm function: moto intercepts them all the same.
    settings.cache_clear()
    yield aws
    settings.cache_clear()


def _metric_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_a_scheduled_event_ingests_every_camera_and_reports_each(configured, capsys):
    # When EventBridge's scheduled event arrives
    answer = handler.handler(SCHEDULED_EVENT, LambdaContext())

    # Then both cameras have a result: one ingested, one unreachable (not a crash)
    by_camera = {r["camera_id"]: r for r in answer["results"]}
    assert by_camera["cam-1"]["status"] == "ok"
    assert by_camera["cam-1"]["stored"] == [0, 1]
    assert by_camera["cam-2"]["status"] == "unreachable"
    assert len(configured.events_of("segment")) == 2

    # ... and one EMF line per camera, with the unreachable flag the stack alarms on
    lines = {m["camera_id"]: m for m in _metric_lines(capsys.readouterr().out)}
    assert (lines["cam-1"]["CameraUnreachable"], lines["cam-2"]["CameraUnreachable"]) == (0, 1)
    assert (lines["cam-1"]["SegmentsStored"], lines["cam-1"]["VideoSecondsIngested"]) == (2, 2.0)
    directive = lines["cam-2"]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "MLPlatform/Video"
    assert directive["Dimensions"] == [["camera_id"]]
    assert all(m["Name"] in lines["cam-2"] for m in directive["Metrics"])


def test_a_per_camera_schedule_ingests_only_that_camera(configured, capsys):
    answer = handler.handler({"camera_id": "cam-1"}, LambdaContext())
    assert [(r["camera_id"], r["status"]) for r in answer["results"]] == [("cam-1", "ok")]
    assert [m["camera_id"] for m in _metric_lines(capsys.readouterr().out)] == ["cam-1"]


def test_the_request_id_is_the_lease_owner(configured):
    handler.handler({"camera_id": "cam-1"}, LambdaContext())
    item = configured.dynamodb.get_item(TableName=TABLE, Key={"camera_id": {"S": "cam-1"}})["Item"]
    assert item["lease_owner"]["S"] == LambdaContext.aws_request_id


def test_an_unknown_camera_is_reported_and_the_others_still_run(configured):
    answer = handler.handler({"camera_ids": ["cam-9", "cam-1"]}, LambdaContext())
    assert [(r["camera_id"], r["status"]) for r in answer["results"]] == [
        ("cam-1", "ok"),
        ("cam-9", "unknown_camera"),
    ]


@pytest.mark.parametrize(
    "event",
    [{"camera_id": 7}, {"camera_ids": "cam-1"}, {"Records": []}, {"detail-type": "Object Created"}],
)
def test_an_event_of_another_shape_is_refused_with_a_reason(configured, event):
    with pytest.raises(ValueError, match=r"camera_id|Scheduled Event"):
        handler.handler(event, LambdaContext())


def test_settings_come_from_the_environment_with_defaults():
    parsed = Settings.from_env(
        {
            "VIDEO_RAW_BUCKET": "raw",
            "VIDEO_METADATA_STREAM": "arn:aws:kinesis:us-east-1:123456789012:stream/mlp-dev-video-metadata",
            "VIDEO_WATERMARK_TABLE": "wm",
            "VIDEO_CAMERAS": '[{"camera_id": "c1", "source": "kvs:door", "frame_sample_seconds": 10}]',
            "VIDEO_POLL_INTERVAL_SECONDS": "0",
        }
    )
    assert parsed.poll_interval_seconds == 0.0
    assert (parsed.fetch_attempts, parsed.http_timeout_seconds, parsed.step_budget_seconds) == (3, 5.0, 10.0)
    assert parsed.cameras[0].kvs_stream_name == "door"
    assert parsed.cameras[0].frame_sample_seconds == 10.0


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({}, "VIDEO_RAW_BUCKET is required"),
        ({"VIDEO_RAW_BUCKET": "r", "VIDEO_METADATA_STREAM": "s"}, "VIDEO_WATERMARK_TABLE is required"),
        (
            {
                "VIDEO_RAW_BUCKET": "r",
                "VIDEO_METADATA_STREAM": "s",
                "VIDEO_WATERMARK_TABLE": "t",
                "VIDEO_FETCH_ATTEMPTS": "x",
            },
            "VIDEO_FETCH_ATTEMPTS must be a number",
        ),
    ],
)
def test_missing_or_bad_settings_fail_loudly(env, complaint):
    with pytest.raises(SettingsError, match=complaint):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[{", "not JSON"),
        ('{"camera_id": "c"}', "JSON array of objects"),
        ('[{"camera_id": "c", "source": "ftp://x"}]', "source"),
        ('[{"camera_id": "c", "source": "kvs:a"}, {"camera_id": "c", "source": "kvs:b"}]', "twice"),
    ],
)
def test_a_bad_camera_list_fails_loudly(text, complaint):
    with pytest.raises(SettingsError, match=complaint):
        parse_cameras(text)
