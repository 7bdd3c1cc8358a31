"""Kinesis Video Streams as a camera source."""

from __future__ import annotations

import boto3
import pytest

from lambdas.video_ingest import clients
from lambdas.video_ingest.kvs import KvsResolver
from platform_core.schemas.video import CameraConfig
from tests.video.conftest import make_worker, run


@pytest.fixture
def resolver(aws):
    boto3.client("kinesisvideo").create_stream(StreamName="front-door", DataRetentionInHours=24)
    return KvsResolver(clients.kinesisvideo, clients.kinesis_video_archived_media)


def test_a_stream_resolves_to_its_hls_session_url(resolver):
    url = resolver("front-door")
    assert url.startswith("https://")
    assert "getHLSMasterPlaylist.m3u8" in url


def test_a_missing_stream_is_a_lookup_error_with_the_code(resolver):
    with pytest.raises(LookupError, match="ResourceNotFoundException"):
        resolver("back-door")


def test_a_kvs_camera_is_ingested_through_the_resolved_url(aws, camera_factory):
    # Given a camera whose source is a Kinesis Video stream (its HLS served by the simulator)
    camera = camera_factory(segments=2, window=2)
    config = CameraConfig("cam-kvs", "kvs:front-door")
    asked: list[str] = []

    def resolve(name: str) -> str:
        asked.append(name)
        return camera.url + "?SessionToken=secret"

    # When ingested
    result = run(make_worker(aws, resolve_kvs=resolve), config)

    # Then the stream name was resolved and the segments stored; no session token leaks into events
    assert asked == ["front-door"]
    assert result.stored == [0, 1]
    assert all("secret" not in e["segment_uri"] for e in aws.events_of("segment"))


def test_an_unplayable_stream_is_an_unreachable_camera(aws):
    def resolve(name: str) -> str:
        raise LookupError(f"{name}: ResourceNotFoundException")

    result = run(make_worker(aws, resolve_kvs=resolve), CameraConfig("cam-kvs", "kvs:gone"))
    assert result.status == "unreachable"
    assert "ResourceNotFoundException" in result.detail
