"""The HLS camera simulator itself: a live window that the test's clock moves, and its faults."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from lambdas.video_ingest.playlist import MasterPlaylist, MediaPlaylist, parse_playlist
from simulators.hls_camera import TWO_RENDITIONS, HlsCamera


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def _playlist(camera: HlsCamera) -> MediaPlaylist:
    parsed = parse_playlist(_get(camera.media_url()).decode(), camera.media_url())
    assert isinstance(parsed, MediaPlaylist)
    return parsed


def test_the_window_slides_as_the_clock_ticks(camera_factory):
    camera = camera_factory(segments=6, window=3, start_sequence=100)
    assert [s.sequence for s in _playlist(camera).segments] == [100, 101, 102]
    camera.advance(2)
    playlist = _playlist(camera)
    assert (playlist.media_sequence, [s.sequence for s in playlist.segments]) == (102, [102, 103, 104])
    assert camera.published_sequences == [100, 101, 102, 103, 104]
    with pytest.raises(ValueError, match="only 6 segments"):
        camera.advance(2)


def test_segments_are_served_only_once_published(camera_factory):
    camera = camera_factory(segments=4, window=2)
    assert _get(camera.base_url + "/live/seg_1.ts") == camera.segment_bytes(1)
    with pytest.raises(urllib.error.HTTPError) as not_yet:
        _get(camera.base_url + "/live/seg_3.ts")
    assert not_yet.value.code == 404
    assert camera.segment_downloads() == {1: 1}


def test_faults_show_in_the_playlist_and_the_segments(camera_factory):
    camera = camera_factory(segments=3, window=3)
    camera.discontinuity(1)
    camera.corrupt(2)
    camera.withhold(0, times=1)
    camera.end()
    playlist = _playlist(camera)
    assert playlist.ended
    assert [s.discontinuity for s in playlist.segments] == [False, True, False]
    corrupt = _get(camera.base_url + "/live/seg_2.ts")
    assert len(corrupt) == len(camera.segment_bytes(2))
    assert corrupt != camera.segment_bytes(2)
    with pytest.raises(urllib.error.HTTPError):
        _get(camera.base_url + "/live/seg_0.ts")
    assert _get(camera.base_url + "/live/seg_0.ts") == camera.segment_bytes(0)


def test_a_master_playlist_offers_two_renditions_of_the_same_timeline(camera_factory):
    camera = camera_factory(segments=2, window=2, master=True, renditions=TWO_RENDITIONS)
    master = parse_playlist(_get(camera.url).decode(), camera.url)
    assert isinstance(master, MasterPlaylist)
    assert [(v.bandwidth, v.resolution) for v in master.variants] == [
        (400_000, (320, 240)),
        (150_000, (160, 120)),
    ]
    assert _get(camera.base_url + "/lo/seg_1.ts") == camera.segment_bytes(1, "lo")
    assert camera.segment_bytes(1, "lo") != camera.segment_bytes(1, "hi")


def test_it_stops_by_itself_after_its_lifetime(camera_factory):
    camera = camera_factory(segments=1, window=1, lifetime_seconds=0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            _get(camera.url)
        except OSError:  # refused (URLError) or reset mid-shutdown (ConnectionResetError)
            break
        time.sleep(0.05)
    with pytest.raises(OSError):
        _get(camera.url)


def test_it_binds_loopback_only(camera_factory):
    camera = camera_factory(segments=1, window=1)
    assert camera.base_url.startswith("http://127.0.0.1:")
