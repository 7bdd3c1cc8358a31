"""Video ingest against a real HLS camera on loopback and moto's S3, Kinesis and DynamoDB."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from lambdas.video_ingest.fetch import HttpFetcher
from lambdas.video_ingest.ingest import ingest_cameras
from lambdas.video_ingest.sinks import Sinks
from lambdas.video_ingest.watermark import WatermarkStore
from platform_core.schemas.video import SCHEMAS, CameraConfig, checked_event, event_id, quarantine_key
from simulators.hls_camera import TWO_RENDITIONS
from tests.video.conftest import BUCKET, STREAM, TABLE, Serialized, config_for, make_worker, run, utc


class SimulatedCrash(BaseException):
    """A worker killed mid-step (a Lambda timeout or OOM): nothing after it runs, the lease stays."""


def test_stores_every_published_segment_except_the_ones_the_camera_withheld(aws, camera_factory):
    # Given a live camera that never serves segment 4, polled after every two new segments
    camera = camera_factory(segments=10, window=3)
    camera.withhold(4)
    config = config_for(camera)

    # When a worker runs after each advance of the window
    results = [run(make_worker(aws), config)]
    while len(camera.published_sequences) < 10:
        camera.advance(min(2, 10 - len(camera.published_sequences)))
        results.append(run(make_worker(aws), config))

    # Then every published segment but 4 is stored, each once, and 4 is a recorded gap
    stored = sorted(s for r in results for s in r.stored)
    assert stored == [s for s in camera.published_sequences if s != 4]
    keys = aws.keys("video/")
    assert sorted(int(k.rsplit("/", 1)[1].removesuffix(".ts")) for k in keys) == stored
    gaps = aws.events_of("gap")
    assert [(g["from_sequence"], g["to_sequence"], g["reason"]) for g in gaps] == [(4, 4, "not_found")]
    assert "404" in gaps[0]["detail"]
    assert aws.watermark("cam-1") == 9
    # ... and the camera was asked for each stored segment exactly once
    downloads = camera.segment_downloads()
    assert all(downloads[s] == 1 for s in stored)
    assert downloads[4] == 0


def test_metadata_events_match_the_stored_segments_one_to_one(aws, camera_factory):
    # Given a camera with five segments, all published
    camera = camera_factory(segments=5, window=5)

    # When a worker ingests them
    result = run(make_worker(aws), config_for(camera))

    # Then each stored object has exactly one segment event describing it, keyed by camera
    events = aws.events_of("segment")
    assert sorted(e["s3_key"] for e in events) == aws.keys("video/")
    assert Counter(e["event_id"] for e in events) == Counter({event_id("segment", "cam-1", s): 1 for s in range(5)})
    for e in events:
        body = aws.s3.get_object(Bucket=BUCKET, Key=e["s3_key"])["Body"].read()
        assert body == camera.segment_bytes(e["media_sequence"])
        assert e["bytes"] == len(body)
        assert e["s3_bucket"] == BUCKET
        assert e["_partition_key"] == "cam-1"
        assert (e["container"], e["video_codec"], e["audio_codec"]) == ("mpegts", "h264", "aac")
        assert (e["width"], e["height"], e["frame_rate"], e["frames"], e["keyframes"]) == (
            320,
            240,
            10.0,
            10,
            1,
        )
        assert e["duration_s"] == pytest.approx(1.0)
        assert e["segment_uri"] == f"{camera.base_url}/live/seg_{e['media_sequence']}.ts"
        assert e["discontinuity"] is False
        assert e["program_date_time"] is None
        checked_event(SCHEMAS["segment"], {k: v for k, v in e.items() if k != "_partition_key"})
    assert result.video_seconds == pytest.approx(5.0)
    assert result.status == "ok"


def test_a_fresh_worker_after_a_restart_continues_without_duplicates(aws, camera_factory):
    # Given a worker that ingested the first window and then went away
    camera = camera_factory(segments=8, window=3)
    config = config_for(camera)
    first = run(make_worker(aws), config)
    camera.advance(2)

    # When a new worker (new process, new lease identity) runs twice
    second = run(make_worker(aws), config)
    third = run(make_worker(aws), config)

    # Then it picks up after the watermark and a repeated run changes nothing
    assert (first.stored, second.stored, third.stored) == ([0, 1, 2], [3, 4], [])
    assert len(aws.keys("video/")) == 5
    assert sorted(e["media_sequence"] for e in aws.events_of("segment")) == [0, 1, 2, 3, 4]
    assert max(camera.segment_downloads().values()) == 1


@dataclass(frozen=True)
class _CrashAfterAnnouncing(Sinks):
    """Dies right after putting the event for ``crash_sequence`` on the stream, before the watermark moves."""

    crash_sequence: int = 0

    def announce(self, event: Any) -> None:
        super().announce(event)
        if event.get("media_sequence") == self.crash_sequence:
            raise SimulatedCrash


@dataclass(frozen=True)
class _CrashAfterStoring(Sinks):
    """Dies right after storing segment ``crash_sequence``, before announcing it."""

    crash_sequence: int = 0

    def put_once(self, key: str, body: bytes, **kwargs: Any) -> bool:
        created = super().put_once(key, body, **kwargs)
        if key.endswith(f"/{self.crash_sequence}.ts"):
            raise SimulatedCrash
        return created


@pytest.mark.parametrize("crashing_sinks", [_CrashAfterStoring, _CrashAfterAnnouncing])
def test_a_worker_killed_mid_segment_is_taken_over_without_a_second_object_or_event_id(
    aws, camera_factory, crashing_sinks
):
    # Given a worker killed in the middle of segment 1 (lease still held, watermark at 0)
    camera = camera_factory(segments=4, window=4)
    config = config_for(camera)
    crashing = crashing_sinks(aws.s3, aws.kinesis, BUCKET, STREAM, crash_sequence=1)
    with pytest.raises(SimulatedCrash):
        run(make_worker(aws, sinks=crashing), config)
    assert aws.watermark("cam-1") == 0

    # When another worker comes while the lease is valid, and again after it expired
    blocked = run(make_worker(aws), config)
    later = utc("2100-01-01T00:00:00")
    takeover = run(make_worker(aws, clock=lambda: later), config)

    # Then the first waits, the second repeats segment 1 from the bytes already in S3 and goes on
    assert blocked.status == "busy"
    assert (takeover.status, takeover.stored, takeover.recovered_step) == ("ok", [1, 2, 3], 1)
    assert len(aws.keys("video/")) == 4
    assert camera.segment_downloads()[1] == 1
    events = aws.events_of("segment")
    one = [e for e in events if e["media_sequence"] == 1]
    # At most the killed step is announced twice, as the very same event: consumers dedupe on event_id
    assert 1 <= len(one) <= 2
    assert all(e == one[0] for e in one)
    assert sorted({e["event_id"] for e in events}) == sorted(event_id("segment", "cam-1", s) for s in range(4))
    # ... and the segment kept the partition of the step that began before the crash
    assert sum(1 for k in aws.keys("video/") if "date=2100-01-01" in k) == 2  # segments 2 and 3 only


def test_polling_within_one_invocation_follows_a_window_shorter_than_the_schedule(aws, camera_factory):
    # Given a camera with a two-segment window that publishes one segment while the worker waits,
    # and ends its stream after the eighth
    camera = camera_factory(segments=8, window=2)
    waits: list[float] = []

    def wait(seconds: float) -> None:  # stands in for time.sleep: the camera's clock moves meanwhile
        waits.append(seconds)
        if len(camera.published_sequences) < camera.total_segments:
            camera.advance(1)
        else:
            camera.end()

    # When one invocation polls every second until its deadline
    (result,) = ingest_cameras(
        make_worker(aws), [config_for(camera)], deadline=time.monotonic() + 60, poll_interval_seconds=1.0, sleep=wait
    )

    # Then it followed the window segment by segment, without a gap, and stopped at the end
    assert (result.status, result.stored, result.gaps) == ("ended", list(range(8)), [])
    assert waits == [1.0] * 7
    assert len(aws.events_of("segment")) == 8


def test_without_polling_one_invocation_is_one_pass(aws, camera_factory):
    # Given the same kind of camera
    camera = camera_factory(segments=8, window=2)
    waits: list[float] = []

    # When the invocation does not poll
    (result,) = ingest_cameras(
        make_worker(aws), [config_for(camera)], deadline=time.monotonic() + 60, sleep=waits.append
    )

    # Then it handled what the playlist offered once, and returned
    assert (result.status, result.stored, waits) == ("ok", [0, 1], [])


def test_a_second_worker_does_nothing_while_the_first_holds_the_lease(aws, camera_factory):
    # Given a camera whose lease is held by a worker still running
    camera = camera_factory(segments=3, window=3)
    store = WatermarkStore(aws.dynamodb, TABLE)
    now = int(time.time() * 1000)
    assert store.acquire("cam-1", "worker-a", now_ms=now, until_ms=now + 60_000) is not None

    # When a second worker runs
    result = run(make_worker(aws), config_for(camera))

    # Then it stores, announces and downloads nothing
    assert result.status == "busy"
    assert aws.keys("video/") == []
    assert aws.events() == []
    assert camera.segment_downloads() == Counter()


def test_two_workers_racing_store_and_announce_each_segment_once(aws, camera_factory):
    # Given two workers started at the same moment on the same camera, again and again
    camera = camera_factory(segments=7, window=3)
    config = config_for(camera)
    lock = threading.Lock()
    sinks = Sinks(Serialized(aws.s3, lock), Serialized(aws.kinesis, lock), BUCKET, STREAM)
    watermarks = WatermarkStore(Serialized(aws.dynamodb, lock), TABLE)
    statuses: list[str] = []

    def race() -> None:
        start = threading.Barrier(2)

        def work() -> None:
            worker = make_worker(aws, sinks=sinks, watermarks=watermarks)
            start.wait()
            statuses.append(run(worker, config).status)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # When they race after each advance of the window
    race()
    for _ in range(2):
        camera.advance(2)
        race()

    # Then every published segment is stored and announced exactly once
    published = camera.published_sequences
    assert Counter(int(k.rsplit("/", 1)[1][:-3]) for k in aws.keys("video/")) == Counter(dict.fromkeys(published, 1))
    announced = Counter(e["media_sequence"] for e in aws.events_of("segment"))
    assert announced == Counter(dict.fromkeys(published, 1))
    assert max(camera.segment_downloads().values()) == 1
    assert set(statuses) <= {"ok", "busy"}


def test_segments_the_window_slid_past_become_one_gap(aws, camera_factory):
    # Given a worker that ingested 0..1 and then did not run while the window moved on by four
    camera = camera_factory(segments=6, window=2)
    config = config_for(camera)
    run(make_worker(aws), config)
    camera.advance(4)  # window is now 4..5

    # When it runs again
    result = run(make_worker(aws), config)

    # Then 2..3 are one gap (reason window_slid) announced before the segments that follow
    assert result.gaps == [(2, 3, "window_slid")]
    assert result.stored == [4, 5]
    kinds = [(e["event_type"], e.get("media_sequence", e.get("from_sequence"))) for e in aws.events()]
    assert kinds[2:] == [("gap", 2), ("segment", 4), ("segment", 5)]
    assert aws.watermark("cam-1") == 5


def test_a_discontinuity_is_recorded_on_the_segment_after_it(aws, camera_factory):
    # Given a playlist with EXT-X-DISCONTINUITY before segment 2
    camera = camera_factory(segments=4, window=4)
    camera.discontinuity(2)

    # When ingested
    run(make_worker(aws), config_for(camera))

    # Then only segment 2 carries the flag
    flags = {e["media_sequence"]: e["discontinuity"] for e in aws.events_of("segment")}
    assert flags == {0: False, 1: False, 2: True, 3: False}


def test_a_slow_segment_is_retried_and_a_hopeless_one_becomes_a_timeout_gap(aws, camera_factory):
    # Given segment 1 slow once (then fine) and segment 2 slow every time, past the client's timeout
    camera = camera_factory(segments=4, window=4)
    camera.delay(1, 5.0, times=1)
    camera.delay(2, 5.0)
    impatient = HttpFetcher(timeout_seconds=0.5, max_attempts=3, backoff_seconds=0.01)

    # When ingested by a worker that waits half a second per attempt
    result = run(make_worker(aws, fetcher=impatient), config_for(camera))

    # Then 1 is stored after a retry, 2 is a gap with reason timeout, 3 is stored
    assert result.stored == [0, 1, 3]
    assert result.gaps == [(2, 2, "timeout")]
    assert [e["reason"] for e in aws.events_of("gap")] == ["timeout"]
    assert Counter(p for p, _ in camera.requests)["/live/seg_2.ts"] == 3  # the three attempts


def test_a_404_that_clears_up_is_retried_not_a_gap(aws, camera_factory):
    # Given a segment the origin answers 404 for twice before serving it (a lagging CDN)
    camera = camera_factory(segments=3, window=3)
    camera.withhold(1, times=2)

    # When ingested
    result = run(make_worker(aws), config_for(camera))

    # Then it is stored after the third attempt
    assert result.stored == [0, 1, 2]
    assert result.gaps == []


def test_a_corrupt_segment_is_quarantined_with_its_reason_not_announced_as_good(aws, camera_factory):
    # Given a camera that serves random bytes for segment 1
    camera = camera_factory(segments=3, window=3)
    camera.corrupt(1)

    # When ingested
    result = run(make_worker(aws), config_for(camera))

    # Then the bytes are kept under video-quarantine/ with the reason, and a quarantine event says so
    assert result.quarantined == [1]
    assert result.stored == [0, 2]
    key = quarantine_key("cam-1", 1)
    assert aws.keys("video-quarantine/") == [key] == ["video-quarantine/camera_id=cam-1/1.ts"]
    head = aws.s3.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["reason"] == "unreadable_container"
    (event,) = aws.events_of("quarantine")
    assert (event["media_sequence"], event["reason"], event["s3_key"]) == (1, "unreadable_container", key)
    assert event["bytes"] == head["ContentLength"]
    assert sorted(e["media_sequence"] for e in aws.events_of("segment")) == [0, 2]
    assert not any(k.endswith("/1.ts") for k in aws.keys("video/"))
    assert aws.watermark("cam-1") == 2


def test_a_truncated_segment_is_quarantined_as_truncated(aws, camera_factory):
    # Given a camera that serves only the first quarter of segment 0
    camera = camera_factory(segments=2, window=2)
    camera.truncate(0, keep=0.25)

    # When ingested
    result = run(make_worker(aws), config_for(camera))

    # Then it is kept in quarantine, with the decoded length against the playlist's in the detail
    assert (result.quarantined, result.stored) == ([0], [1])
    (event,) = aws.events_of("quarantine")
    assert event["reason"] == "truncated"
    assert event["detail"] == "0.300 s of video, the playlist says 1.000 s"


def test_endlist_ends_the_stream(aws, camera_factory):
    # Given a camera that ended its stream
    camera = camera_factory(segments=4, window=3)
    camera.advance(1)
    camera.end()

    # When ingested, and ingested again
    first = run(make_worker(aws), config_for(camera))
    again = run(make_worker(aws), config_for(camera))

    # Then the result says ended, with everything stored, and a rerun adds nothing
    assert (first.status, first.stored) == ("ended", [1, 2, 3])
    assert (again.status, again.stored) == ("ended", [])


def test_an_unreachable_camera_is_a_result_not_a_crash_and_loses_nothing(aws, camera_factory):
    # Given a camera that ingested once and then dropped off the network
    camera = camera_factory(segments=6, window=4)
    config = config_for(camera)
    run(make_worker(aws), config)
    camera.go_offline()
    camera.advance(2)

    # When a worker runs while it is away, and after it is back
    away = run(make_worker(aws), config)
    camera.go_online()
    back = run(make_worker(aws), config)

    # Then the first run says unreachable and moves nothing; the second catches up without gaps
    assert away.status == "unreachable"
    assert "playlist" in away.detail and "unreachable" in away.detail
    assert (away.stored, away.gaps, away.watermark) == ([], [], 3)
    assert (back.status, back.stored, back.gaps) == ("ok", [4, 5], [])
    assert aws.events_of("gap") == []


@pytest.mark.parametrize(
    ("preference", "width", "segment_path"),
    [("highest", 320, "/hi/seg_0.ts"), ("lowest", 160, "/lo/seg_0.ts"), (200_000, 160, "/lo/seg_0.ts")],
)
def test_a_master_playlist_resolves_to_the_configured_variant(aws, camera_factory, preference, width, segment_path):
    # Given a camera behind a master playlist with a 400 kbit/s and a 150 kbit/s rendition
    camera = camera_factory(segments=2, window=2, master=True, renditions=TWO_RENDITIONS)

    # When ingested with a variant preference
    run(make_worker(aws), config_for(camera, variant=preference))

    # Then the segments come from that rendition (read via relative URIs)
    events = aws.events_of("segment")
    assert [e["width"] for e in events] == [width, width]
    assert events[0]["segment_uri"] == camera.base_url + segment_path
    assert camera.requests[0] == ("/master.m3u8", 200)


def test_program_date_time_partitions_the_segment_and_travels_in_the_event(aws, camera_factory):
    # Given a camera stamping its segments just before midnight
    camera = camera_factory(segments=2, window=2, program_date_time=utc("2024-03-05T23:59:59"))

    # When ingested
    run(make_worker(aws), config_for(camera))

    # Then each segment lands in the hour of its own date-time, which the event carries
    assert aws.keys("video/") == [
        "video/camera_id=cam-1/date=2024-03-05/hour=23/0.ts",
        "video/camera_id=cam-1/date=2024-03-06/hour=00/1.ts",
    ]
    assert [e["program_date_time"] for e in aws.events_of("segment")] == [
        "2024-03-05T23:59:59.000Z",
        "2024-03-06T00:00:00.000Z",
    ]


def test_frames_are_sampled_every_n_seconds_of_video(aws, camera_factory):
    # Given one-second segments and a camera configured for a frame every half second
    camera = camera_factory(segments=3, window=3)

    # When ingested
    result = run(make_worker(aws), config_for(camera, frame_sample_seconds=0.5))

    # Then there are two JPEGs per segment, next to the segments' partitions
    frames = aws.keys("video-frames/")
    assert result.frames_sampled == len(frames) == 6
    assert all(k.startswith("video-frames/camera_id=cam-1/date=") and k.endswith(".jpg") for k in frames)
    assert sorted(k.rsplit("/", 1)[1] for k in frames) == sorted(f"{s}-{o}.jpg" for s in range(3) for o in (0, 500))
    jpeg = aws.s3.get_object(Bucket=BUCKET, Key=frames[0])["Body"].read()
    assert jpeg[:2] == b"\xff\xd8"
    assert [e["frames_sampled"] for e in aws.events_of("segment")] == [2, 2, 2]


def test_a_run_without_time_left_stops_and_the_next_one_continues(aws, camera_factory):
    # Given a camera with segments waiting and a worker with less time than one step needs
    camera = camera_factory(segments=3, window=3)
    config = config_for(camera)

    # When it runs with half a second left, then with enough time
    short = run(make_worker(aws), config, seconds=0.5)
    full = run(make_worker(aws), config)

    # Then the first stops before any step, the second does the work
    assert (short.status, short.stored, short.watermark) == ("deadline", [], None)
    assert (full.status, full.stored) == ("ok", [0, 1, 2])
    assert aws.watermark("cam-1") == 2


def test_a_camera_that_restarted_its_numbering_is_reported_not_ingested(aws, camera_factory):
    # Given a watermark far ahead of what the camera now publishes
    camera = camera_factory(segments=3, window=3)
    store = WatermarkStore(aws.dynamodb, TABLE)
    now = int(time.time() * 1000)
    store.acquire("cam-1", "old", now_ms=now, until_ms=now + 1000)
    store.advance("cam-1", "old", previous=None, to=500, now_ms=now)
    store.release("cam-1", "old")

    # When a worker runs
    result = run(make_worker(aws), config_for(camera))

    # Then it says so and stores nothing
    assert result.status == "sequence_reset"
    assert "500" in result.detail
    assert aws.keys("video/") == []


def test_a_playlist_that_is_not_hls_is_a_bad_playlist(aws, camera_factory):
    # Given a URL that answers with something other than a playlist (a segment)
    camera = camera_factory(segments=1, window=1)
    config = CameraConfig(camera_id="cam-1", source=camera.base_url + "/live/seg_0.ts")

    # When ingested
    result = run(make_worker(aws), config)

    # Then the result names the problem
    assert result.status == "bad_playlist"
    assert "#EXTM3U" in result.detail or "UTF-8" in result.detail


def test_a_finished_run_gives_its_lease_back(aws, camera_factory):
    # Given a worker
    camera = camera_factory(segments=1, window=1)
    worker = make_worker(aws)

    # When it runs to the end
    run(worker, config_for(camera))

    # Then the lease was released (expiry 0), so the next scheduled run need not wait
    item = aws.dynamodb.get_item(TableName=TABLE, Key={"camera_id": {"S": "cam-1"}})["Item"]
    assert item["lease_expires_ms"]["N"] == "0"
    assert item["lease_owner"]["S"] == worker.owner
    assert "pending_seq" not in item
