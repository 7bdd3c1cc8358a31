"""Kinesis Video streams of the cameras that publish into AWS (source ``kvs:<stream name>``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aws_cdk import CfnTag, RemovalPolicy
from aws_cdk import aws_kinesisvideo as kinesisvideo
from aws_cdk import aws_kms as kms
from constructs import Construct

from platform_core.schemas.video import CameraConfig

# Kinesis Video limits: stream names and the longest retention (10 years).
_STREAM_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,256}")
MAX_RETENTION_HOURS = 87_600


class CameraStreams(Construct):
    """One stream per ``kvs:`` camera, encrypted with ``key``, keeping ``retention_days`` of video.

    The streams hold footage, so they follow the data removal policy. Retention must be at least an
    hour anyway: a stream without retention cannot be played as HLS, which is how the ingest reads it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cameras: Iterable[CameraConfig],
        key: kms.IKey,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.streams: dict[str, kinesisvideo.CfnStream] = {}
        for camera in cameras:
            if camera.source_kind != "kvs":
                continue
            name = camera.kvs_stream_name
            if not _STREAM_NAME.fullmatch(name):
                raise ValueError(f"camera {camera.camera_id}: {name!r} is not a valid Kinesis Video stream name")
            hours = camera.retention_days * 24
            if hours > MAX_RETENTION_HOURS:
                raise ValueError(f"camera {camera.camera_id}: Kinesis Video keeps at most {MAX_RETENTION_HOURS} hours")
            stream = kinesisvideo.CfnStream(
                self,
                camera.camera_id,
                name=name,
                data_retention_in_hours=hours,
                kms_key_id=key.key_arn,
                tags=[CfnTag(key="camera_id", value=camera.camera_id)],
            )
            stream.apply_removal_policy(removal_policy)
            self.streams[camera.camera_id] = stream

    @property
    def stream_arns(self) -> list[str]:
        """The ARNs (they carry a creation time, so only the created resources know them)."""
        return [stream.attr_arn for stream in self.streams.values()]
