"""Video: an HLS camera on loopback (or the user's playlists) -> the real video ingest handler ->
segments in the raw bucket + metadata events on the video-metadata stream -> Parquet in the lake.

The handler is invoked the way the EventBridge schedule invokes it (one event per camera and
tick) until the playlist ends. The metadata Firehose has no transform in AWS; here the events are
written as Parquet under the hour they arrived, as that delivery stream partitions them.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from local_runtime.context import RunContext
from local_runtime.kinesis_reader import read_stream
from platform_core.schemas.video import CameraConfig

MAX_TICKS = 200


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda context object the handlers read."""

    timeout_seconds: float = 90.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return int(self.timeout_seconds * 1000)


@dataclass
class VideoLanding:
    cameras: int = 0
    invocations: int = 0
    statuses: dict[str, str] = field(default_factory=dict)
    segments_stored: int = 0
    segments_quarantined: int = 0
    gaps: int = 0
    metadata_rows: int = 0
    withheld: int = 0


def provision(ctx: RunContext) -> str:
    table = ctx.names.video_watermark_table
    ctx.aws.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "camera_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "camera_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return table


def run(ctx: RunContext, camera_urls: tuple[str, ...]) -> VideoLanding:
    table = provision(ctx)
    if camera_urls:
        cameras = [CameraConfig(camera_id=f"camera-{i + 1}", source=url) for i, url in enumerate(camera_urls)]
        return _ingest(ctx, table, cameras, advance=None)
    from simulators.hls_camera import HlsCamera

    # A generated traffic camera with the faults the worker must survive: a segment that never
    # arrives (a gap), a corrupt one (quarantined) and a discontinuity.
    with HlsCamera(segments=8, window=3, segment_seconds=1.0, fps=10, lifetime_seconds=300) as camera:
        camera.withhold(3)
        camera.corrupt(5)
        camera.discontinuity(6)
        landing = _ingest(ctx, table, [CameraConfig(camera_id="traffic-cam-1", source=camera.url)], advance=camera)
        landing.withheld = 1
    return landing


def _ingest(ctx: RunContext, table: str, cameras: list[CameraConfig], *, advance: Any) -> VideoLanding:
    os.environ.update(
        {
            "VIDEO_RAW_BUCKET": ctx.bucket("raw"),
            "VIDEO_METADATA_STREAM": ctx.names.video_metadata_stream,
            "VIDEO_WATERMARK_TABLE": table,
            "VIDEO_CAMERAS": json.dumps([c.to_dict() for c in cameras]),
            "VIDEO_FETCH_ATTEMPTS": "2",
            "VIDEO_BACKOFF_SECONDS": "0.05",
        }
    )
    from lambdas.video_ingest import handler as video

    if hasattr(video.settings, "cache_clear"):  # settings are parsed once per container
        video.settings.cache_clear()
    landing = VideoLanding(cameras=len(cameras))
    active = {c.camera_id for c in cameras}
    for _ in range(MAX_TICKS):
        for camera_id in sorted(active):
            answer = video.handler({"camera_id": camera_id}, LambdaContext())
            landing.invocations += 1
            for result in answer["results"]:
                landing.statuses[result["camera_id"]] = result["status"]
                if result["status"] in (
                    "ended",
                    "unreachable",
                    "error",
                    "unknown_camera",
                    "bad_playlist",
                    "sequence_reset",
                ):
                    active.discard(result["camera_id"])
        if not active:
            break
        if advance is not None:
            try:
                advance.advance()
            except ValueError:  # every segment published: the stream ends
                advance.end()
    _count_landing(ctx, landing)
    ctx.progress.say(
        "video",
        f"{landing.segments_stored} segments stored, {landing.segments_quarantined} quarantined, "
        f"{landing.gaps} gaps, {landing.metadata_rows} metadata rows ({landing.invocations} invocations)",
    )
    return landing


def _count_landing(ctx: RunContext, landing: VideoLanding) -> None:
    s3 = ctx.aws.client("s3")
    bucket = ctx.bucket("raw")
    for prefix, attribute in (("video/", "segments_stored"), ("video-quarantine/", "segments_quarantined")):
        count = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            count += sum(1 for item in page.get("Contents", []) if item["Key"].endswith(".ts"))
        setattr(landing, attribute, count)
    events = [json.loads(r.data) for r in read_stream(ctx.aws.client("kinesis"), ctx.names.video_metadata_stream)]
    # Delivery is at least once: the lake keeps one row per event_id (a replayed announcement repeats it).
    unique = {e["event_id"]: e for e in events}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in unique.values():
        by_type.setdefault(str(event.get("event_type")), []).append(event)
    landing.gaps = len(by_type.get("gap", []))
    now = datetime.now(UTC)
    for event_type, dataset in (
        ("segment", "video_segments"),
        ("gap", "video_gaps"),
        ("quarantine", "video_quarantine"),
    ):
        rows = by_type.get(event_type, [])
        if not rows:
            continue
        directory = ctx.lake / dataset / f"year={now:%Y}" / f"month={now:%m}" / f"day={now:%d}" / f"hour={now:%H}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), directory / "part-0.parquet")
        if event_type == "segment":
            landing.metadata_rows = len(rows)
