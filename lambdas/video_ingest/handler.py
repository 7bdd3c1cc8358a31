"""Lambda entry point, run on a schedule by EventBridge.

Accepted events:

- ``{"camera_id": "cam-1"}``: the constant input of a per-camera schedule (rule target ``Input``
  or an EventBridge Scheduler schedule); ``{"camera_ids": [...]}`` for several;
- the default EventBridge ``Scheduled Event`` (or ``{}``): every camera in ``VIDEO_CAMERAS``.

Each camera is handled until the invocation's time runs short; what is left waits for the next
run. With ``VIDEO_POLL_INTERVAL_SECONDS`` the cameras are polled again and again until then. Every camera gets one EMF log line (metrics and status) and one entry in the returned
``results``; an unknown camera id is reported, the other cameras still run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from lambdas.video_ingest import clients
from lambdas.video_ingest.fetch import HttpFetcher
from lambdas.video_ingest.ingest import IngestOptions, VideoIngestor, ingest_cameras
from lambdas.video_ingest.kvs import KvsResolver
from lambdas.video_ingest.metrics import metric_line
from lambdas.video_ingest.settings import Settings, settings
from lambdas.video_ingest.sinks import Sinks
from lambdas.video_ingest.watermark import WatermarkStore

logger = logging.getLogger(__name__)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    wanted = requested_cameras(event)
    known = {camera.camera_id: camera for camera in config.cameras}
    cameras = list(config.cameras) if wanted is None else [known[c] for c in wanted if c in known]
    unknown = [] if wanted is None else [c for c in wanted if c not in known]

    remaining = context.get_remaining_time_in_millis() / 1000
    deadline = time.monotonic() + remaining - config.safety_margin_seconds
    worker = build_ingestor(config, owner=str(context.aws_request_id))

    results: list[dict[str, Any]] = []
    for result in ingest_cameras(
        worker, cameras, deadline=deadline, poll_interval_seconds=config.poll_interval_seconds
    ):
        print(json.dumps(metric_line(result, config.metrics_namespace)))  # EMF: stdout is the log
        results.append(result.to_dict())
    for camera_id in unknown:
        logger.error("camera %s is not configured in VIDEO_CAMERAS", camera_id)
        results.append({"camera_id": camera_id, "status": "unknown_camera", "detail": "not in VIDEO_CAMERAS"})
    return {"results": results}


def requested_cameras(event: Mapping[str, Any]) -> Sequence[str] | None:
    """The camera ids an event asks for; None means every configured camera."""
    if not isinstance(event, Mapping):
        raise ValueError(f"expected a JSON object as the event, got {type(event).__name__}")
    if "camera_id" in event:
        camera_id = event["camera_id"]
        if not isinstance(camera_id, str) or not camera_id:
            raise ValueError("camera_id must be a non-empty string")
        return [camera_id]
    if "camera_ids" in event:
        ids = event["camera_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError("camera_ids must be a list of non-empty strings")
        return list(ids)
    if not event or event.get("detail-type") == "Scheduled Event":
        return None
    raise ValueError("expected a Scheduled Event, {} or an object with camera_id / camera_ids")


def build_ingestor(config: Settings, *, owner: str) -> VideoIngestor:
    """The worker of one invocation (the request id is its lease identity, visible in DynamoDB)."""
    return VideoIngestor(
        sinks=Sinks(
            s3=clients.s3(),
            kinesis=clients.kinesis(),
            bucket=config.raw_bucket,
            stream=config.metadata_stream,
        ),
        watermarks=WatermarkStore(clients.dynamodb(), config.watermark_table),
        fetcher=HttpFetcher(
            timeout_seconds=config.http_timeout_seconds,
            max_attempts=config.fetch_attempts,
            backoff_seconds=config.backoff_seconds,
        ),
        resolve_kvs=KvsResolver(clients.kinesisvideo, clients.kinesis_video_archived_media),
        options=IngestOptions(
            lease_margin_seconds=config.lease_margin_seconds, step_budget_seconds=config.step_budget_seconds
        ),
        owner=owner,
    )
