"""Parsing HLS playlists and choosing a rendition."""

from __future__ import annotations

import pytest

from lambdas.video_ingest.playlist import (
    MasterPlaylist,
    MediaPlaylist,
    PlaylistError,
    choose_variant,
    parse_playlist,
)
from tests.video.conftest import utc

LIVE = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:1041
#EXT-X-PROGRAM-DATE-TIME:2025-06-01T10:00:00.000Z
#EXTINF:2.000,
seg1041.ts
#EXTINF:1.960,title
/other/seg1042.ts?token=abc
#EXT-X-DISCONTINUITY
#EXTINF:2.000,
https://cdn.example.com/cam/seg1043.ts
"""

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2"
../hd/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=640000
low/index.m3u8
"""


def test_a_live_media_playlist_numbers_segments_and_resolves_their_uris():
    # Given a live playlist read from a camera URL
    # When parsed
    playlist = parse_playlist(LIVE, "http://camera.local/cam/live/index.m3u8")

    # Then segments are numbered from the media sequence, with absolute URIs
    assert isinstance(playlist, MediaPlaylist)
    assert (playlist.media_sequence, playlist.target_duration, playlist.ended) == (1041, 2.0, False)
    assert [s.sequence for s in playlist.segments] == [1041, 1042, 1043]
    assert playlist.last_sequence == 1043
    assert [s.uri for s in playlist.segments] == [
        "http://camera.local/cam/live/seg1041.ts",
        "http://camera.local/other/seg1042.ts?token=abc",
        "https://cdn.example.com/cam/seg1043.ts",
    ]
    assert [s.duration for s in playlist.segments] == [2.0, 1.96, 2.0]
    assert [s.discontinuity for s in playlist.segments] == [False, False, True]


def test_program_date_time_carries_on_until_a_discontinuity():
    # Given a date-time tag on the first segment only
    playlist = parse_playlist(LIVE, "http://camera.local/index.m3u8")

    # Then the next segment follows on by the first one's duration; after a discontinuity it is unknown
    assert isinstance(playlist, MediaPlaylist)
    assert [s.program_date_time for s in playlist.segments] == [
        utc("2025-06-01T10:00:00"),
        utc("2025-06-01T10:00:02"),
        None,
    ]


def test_endlist_marks_the_playlist_ended():
    text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.ts\n#EXT-X-ENDLIST\n"
    playlist = parse_playlist(text, "http://h/x.m3u8")
    assert isinstance(playlist, MediaPlaylist)
    assert (playlist.ended, playlist.media_sequence, playlist.last_sequence) == (True, 0, 0)


def test_an_empty_live_playlist_has_no_last_sequence():
    playlist = parse_playlist("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n", "http://h/x.m3u8")
    assert isinstance(playlist, MediaPlaylist)
    assert (playlist.segments, playlist.last_sequence) == ((), None)


def test_a_master_playlist_lists_its_variants_with_absolute_uris():
    # Given a master playlist with quoted, comma-holding attributes and a parent-relative URI
    master = parse_playlist(MASTER, "http://camera.local/streams/cam/master.m3u8")

    # Then every variant is kept with its bandwidth and resolution
    assert isinstance(master, MasterPlaylist)
    assert [(v.uri, v.bandwidth, v.resolution) for v in master.variants] == [
        ("http://camera.local/streams/cam/mid/index.m3u8", 1280000, (640, 360)),
        ("http://camera.local/streams/hd/index.m3u8", 2560000, (1280, 720)),
        ("http://camera.local/streams/cam/low/index.m3u8", 640000, None),
    ]


@pytest.mark.parametrize(
    ("preference", "bandwidth"),
    [("highest", 2560000), ("lowest", 640000), (2_000_000, 1280000), (1_280_000, 1280000), (100, 640000)],
)
def test_the_variant_preference_picks_a_rendition(preference, bandwidth):
    master = parse_playlist(MASTER, "http://h/master.m3u8")
    assert isinstance(master, MasterPlaylist)
    assert choose_variant(master, preference).bandwidth == bandwidth


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("<html>not found</html>", "#EXTM3U"),
        ("", "#EXTM3U"),
        ("#EXTM3U\nseg.ts\n", "no #EXTINF"),
        ("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:abc\n", "not an integer"),
        ("#EXTM3U\n#EXTINF:x,\na.ts\n", "not a non-negative decimal"),
        ('#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1,\na.m4s\n', "EXT-X-MAP"),
        ('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="k"\n#EXTINF:1,\na.ts\n', "EXT-X-KEY"),
        ("#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2025-06-01T10:00:00\n#EXTINF:1,\na.ts\n", "time zone"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\n", "no variant"),
    ],
)
def test_what_cannot_be_followed_is_refused_with_a_reason(text, complaint):
    with pytest.raises(PlaylistError, match=complaint):
        parse_playlist(text, "http://h/x.m3u8")


def test_an_unencrypted_key_tag_is_accepted():
    text = "#EXTM3U\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:1,\na.ts\n"
    playlist = parse_playlist(text, "http://h/x.m3u8")
    assert isinstance(playlist, MediaPlaylist)
    assert len(playlist.segments) == 1
