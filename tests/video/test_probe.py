"""Probing segments with PyAV: description, decodability, frame sampling."""

from __future__ import annotations

import random

import pytest

from lambdas.video_ingest.probe import Probe, Undecodable, probe_segment
from simulators.hls_camera import HlsCamera


@pytest.fixture(scope="module")
def camera() -> HlsCamera:
    return HlsCamera(segments=3, window=3)  # encoded, never started: only its bytes are used


def test_a_segment_is_described_from_its_decoded_frames(camera):
    probe = probe_segment(camera.segment_bytes(1))
    assert isinstance(probe, Probe)
    assert (probe.container, probe.video_codec, probe.audio_codec) == ("mpegts", "h264", "aac")
    assert (probe.width, probe.height, probe.frame_rate) == (320, 240, 10.0)
    assert (probe.frames, probe.keyframes, probe.duration_s) == (10, 1, 1.0)
    assert probe.sampled == ()


def test_a_segment_without_audio_has_no_audio_codec():
    probe = probe_segment(HlsCamera(segments=1, window=1, audio=False).segment_bytes(0))
    assert isinstance(probe, Probe)
    assert (probe.audio_codec, probe.video_codec) == (None, "h264")


@pytest.mark.parametrize(("every", "offsets"), [(0.5, [0, 500]), (0.25, [0, 300, 500, 800]), (3.0, [])])
def test_frames_are_sampled_on_the_streams_own_timeline(camera, every, offsets):
    # Segment 1 covers stream time [t0 + 1 s, t0 + 2 s) at 10 frames per second; with 3-s slots the
    # slot boundary does not fall inside it.
    probe = probe_segment(camera.segment_bytes(1), sample_every_seconds=every)
    assert isinstance(probe, Probe)
    sampled = [f.offset_ms for f in probe.sampled]
    assert sampled == offsets
    assert all(f.jpeg.startswith(b"\xff\xd8") and f.jpeg.endswith(b"\xff\xd9") for f in probe.sampled)


def test_random_bytes_are_an_unreadable_container():
    # Seeded: an unlucky draw of random bytes can look like an audio-only format to FFmpeg's
    # detection, which the ingest quarantines too, as no_video_stream.
    probe = probe_segment(random.Random(7).randbytes(30_000))
    assert probe == Undecodable("unreadable_container", "FFmpeg cannot open it (InvalidDataError)")


def test_empty_bytes_are_an_unreadable_container():
    probe = probe_segment(b"")
    assert isinstance(probe, Undecodable)
    assert probe.reason == "unreadable_container"


def test_a_truncated_segment_decodes_to_less_video_or_not_at_all(camera):
    # The ingest compares the decoded duration with the playlist's EXTINF and quarantines it as truncated.
    data = camera.segment_bytes(0)
    quarter = probe_segment(data[: len(data) // 4])
    scrap = probe_segment(data[: len(data) // 50])
    assert isinstance(quarter, Probe)
    assert (quarter.frames, quarter.duration_s) == (3, 0.3)
    assert isinstance(scrap, Undecodable)
    assert scrap.reason == "unreadable_container"
