"""Video from cameras: the camera configuration, the S3 layout and the three events on the
``video-metadata`` stream (a stored segment, a gap in the timeline, a quarantined segment).

The events are plain JSON objects whose fields are the schemas below; the builders at the end
check every event they make against its schema, so the code that emits events cannot drift from
the contract that consumers (and the Glue table, when the stream lands in the lake) read.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from platform_core.schema import Field, Primitive, Schema, StructOf, type_errors

NAMESPACE = "platform.video"

# ---------------------------------------------------------------------------------------------
# Camera configuration
# ---------------------------------------------------------------------------------------------

# A camera id becomes part of S3 keys and Hive partition values, so it may not contain "/" or "=".
_CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KVS_PREFIX = "kvs:"

SourceKind = Literal["hls", "kvs"]
VariantPreference = Literal["highest", "lowest"] | int
"""Which rendition of a master playlist to ingest: the highest or lowest bandwidth, or the
highest one whose bandwidth does not exceed the given bits per second (the lowest if none fits)."""


@dataclass(frozen=True)
class CameraConfig:
    """One camera the video ingest polls.

    ``source`` is either the URL of an HLS playlist (media or master, ``http://`` or ``https://``)
    or ``kvs:<stream name>`` for a Kinesis Video stream, whose HLS session URL is resolved at run time.
    """

    camera_id: str
    source: str
    variant: VariantPreference = "highest"
    retention_days: int = 30
    # One JPEG every this many seconds of video to ``video-frames/``; None samples nothing.
    frame_sample_seconds: float | None = None

    def __post_init__(self) -> None:
        if not _CAMERA_ID.fullmatch(self.camera_id):
            raise ValueError(
                f"camera_id {self.camera_id!r} must be 1-64 letters, digits, '_', '.' or '-' "
                "(it is part of S3 keys and partition values)"
            )
        if not (self.source.startswith(("http://", "https://")) or self._kvs_name()):
            raise ValueError(f"camera {self.camera_id}: source must be an http(s) URL or 'kvs:<stream name>'")
        if isinstance(self.variant, bool) or not (
            self.variant in ("highest", "lowest") or (isinstance(self.variant, int) and self.variant > 0)
        ):
            raise ValueError(f"camera {self.camera_id}: variant must be 'highest', 'lowest' or a bandwidth > 0")
        if self.retention_days < 1:
            raise ValueError(f"camera {self.camera_id}: retention_days must be at least 1")
        if self.frame_sample_seconds is not None and self.frame_sample_seconds <= 0:
            raise ValueError(f"camera {self.camera_id}: frame_sample_seconds must be positive")

    def _kvs_name(self) -> str:
        return self.source[len(_KVS_PREFIX) :] if self.source.startswith(_KVS_PREFIX) else ""

    @property
    def source_kind(self) -> SourceKind:
        return "kvs" if self._kvs_name() else "hls"

    @property
    def kvs_stream_name(self) -> str:
        """The Kinesis Video stream name (only for ``kvs:`` sources)."""
        name = self._kvs_name()
        if not name:
            raise ValueError(f"camera {self.camera_id} reads HLS, not a Kinesis Video stream")
        return name

    def to_dict(self) -> dict[str, Any]:
        return {
            "camera_id": self.camera_id,
            "source": self.source,
            "variant": self.variant,
            "retention_days": self.retention_days,
            "frame_sample_seconds": self.frame_sample_seconds,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CameraConfig:
        """Parse one camera from JSON (e.g. the Lambda's environment); unknown keys are an error
        so that a typo in the configuration is found at deploy time, not as a silent default."""
        unknown = set(raw) - {"camera_id", "source", "variant", "retention_days", "frame_sample_seconds"}
        if unknown:
            raise ValueError(f"unknown camera settings: {', '.join(sorted(unknown))}")
        try:
            camera_id, source = raw["camera_id"], raw["source"]
        except KeyError as missing:
            raise ValueError(f"camera setting {missing} is required") from None
        sample = raw.get("frame_sample_seconds")
        return cls(
            camera_id=str(camera_id),
            source=str(source),
            variant=raw.get("variant", "highest"),
            retention_days=int(raw.get("retention_days", 30)),
            frame_sample_seconds=None if sample is None else float(sample),
        )


# ---------------------------------------------------------------------------------------------
# S3 layout
# ---------------------------------------------------------------------------------------------

VIDEO_SEGMENT_PREFIX = "video/"
VIDEO_FRAMES_PREFIX = "video-frames/"
VIDEO_QUARANTINE_PREFIX = "video-quarantine/"


def _partition(camera_id: str, at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"camera_id={camera_id}/date={at:%Y-%m-%d}/hour={at:%H}"


def segment_key(camera_id: str, media_sequence: int, at: datetime) -> str:
    """``video/camera_id=<id>/date=YYYY-MM-DD/hour=HH/<media sequence>.ts`` (``at`` in UTC)."""
    return f"{VIDEO_SEGMENT_PREFIX}{_partition(camera_id, at)}/{media_sequence}.ts"


def frame_key(camera_id: str, media_sequence: int, offset_ms: int, at: datetime) -> str:
    """One sampled frame: ``video-frames/camera_id=.../date=.../hour=../<seq>-<offset ms>.jpg``."""
    return f"{VIDEO_FRAMES_PREFIX}{_partition(camera_id, at)}/{media_sequence}-{offset_ms}.jpg"


def quarantine_key(camera_id: str, media_sequence: int) -> str:
    """Where an undecodable segment is kept for a person: ``video-quarantine/camera_id=<id>/<seq>.ts``."""
    return f"{VIDEO_QUARANTINE_PREFIX}camera_id={camera_id}/{media_sequence}.ts"


# ---------------------------------------------------------------------------------------------
# Events on the video-metadata stream
# ---------------------------------------------------------------------------------------------

EventType = Literal["segment", "gap", "quarantine"]

GapReason = Literal["window_slid", "not_found", "timeout", "http_error"]
GAP_REASONS: frozenset[str] = frozenset({"window_slid", "not_found", "timeout", "http_error"})

QuarantineReason = Literal[
    "unreadable_container", "no_video_stream", "no_decodable_frames", "decode_error", "truncated"
]
QUARANTINE_REASONS: frozenset[str] = frozenset(
    {"unreadable_container", "no_video_stream", "no_decodable_frames", "decode_error", "truncated"}
)

_EVENT_ID = Field("event_id", Primitive.STRING, required=True, doc="deterministic idempotency key")
_CAMERA = Field("camera_id", Primitive.STRING, required=True, doc="camera id; also the partition key")


def _event_type(kind: str) -> Field:
    return Field("event_type", Primitive.STRING, required=True, doc=f"always '{kind}' for this event")


SEGMENT_EVENT = Schema(
    name="VideoSegment",
    namespace=NAMESPACE,
    doc="A media segment of a camera, stored in the raw bucket and decodable.",
    fields=(
        _EVENT_ID,
        _event_type("segment"),
        _CAMERA,
        Field("media_sequence", Primitive.LONG, required=True, doc="EXT-X-MEDIA-SEQUENCE number of the segment"),
        Field("segment_uri", Primitive.STRING, required=True, doc="absolute URL the segment was read from"),
        Field("s3_bucket", Primitive.STRING, required=True, doc="bucket holding the segment"),
        Field("s3_key", Primitive.STRING, required=True, doc="key of the segment (see segment_key)"),
        Field("bytes", Primitive.LONG, required=True, doc="size of the segment"),
        Field("container", Primitive.STRING, required=True, doc="container format as FFmpeg names it"),
        Field("video_codec", Primitive.STRING, required=True, doc="e.g. h264"),
        Field("audio_codec", Primitive.STRING, doc="e.g. aac; null without audio"),
        Field("width", Primitive.INT, required=True, doc="pixels"),
        Field("height", Primitive.INT, required=True, doc="pixels"),
        Field("frame_rate", Primitive.DOUBLE, required=True, doc="frames per second"),
        Field("duration_s", Primitive.DOUBLE, required=True, doc="duration of the decoded video"),
        Field("frames", Primitive.INT, required=True, doc="video frames decoded"),
        Field("keyframes", Primitive.INT, required=True, doc="video keyframes in the segment"),
        Field("discontinuity", Primitive.BOOLEAN, required=True, doc="an EXT-X-DISCONTINUITY preceded it"),
        Field("program_date_time", Primitive.TIMESTAMP, doc="EXT-X-PROGRAM-DATE-TIME of its first sample"),
        Field("frames_sampled", Primitive.INT, required=True, doc="JPEG frames written to video-frames/"),
        Field("ingested_at", Primitive.TIMESTAMP, required=True, doc="when ingestion of the segment began"),
    ),
)

GAP_EVENT = Schema(
    name="VideoGap",
    namespace=NAMESPACE,
    doc="Media sequences of a camera that will never be stored, with the reason.",
    fields=(
        _EVENT_ID,
        _event_type("gap"),
        _CAMERA,
        Field("from_sequence", Primitive.LONG, required=True, doc="first missing media sequence"),
        Field("to_sequence", Primitive.LONG, required=True, doc="last missing media sequence (inclusive)"),
        Field("reason", Primitive.STRING, required=True, doc="one of GAP_REASONS"),
        Field("detail", Primitive.STRING, doc="what was observed, for a person"),
        Field("detected_at", Primitive.TIMESTAMP, required=True, doc="when the gap was found"),
    ),
)

QUARANTINE_EVENT = Schema(
    name="VideoQuarantine",
    namespace=NAMESPACE,
    doc="A segment that was downloaded but cannot be decoded, kept under video-quarantine/.",
    fields=(
        _EVENT_ID,
        _event_type("quarantine"),
        _CAMERA,
        Field("media_sequence", Primitive.LONG, required=True, doc="EXT-X-MEDIA-SEQUENCE number"),
        Field("segment_uri", Primitive.STRING, required=True, doc="absolute URL the segment was read from"),
        Field("reason", Primitive.STRING, required=True, doc="one of QUARANTINE_REASONS"),
        Field("detail", Primitive.STRING, doc="the decoder's complaint, for a person"),
        Field("s3_bucket", Primitive.STRING, required=True, doc="bucket holding the quarantined bytes"),
        Field("s3_key", Primitive.STRING, required=True, doc="key of the quarantined bytes (see quarantine_key)"),
        Field("bytes", Primitive.LONG, required=True, doc="size of the segment"),
        Field("detected_at", Primitive.TIMESTAMP, required=True, doc="when the segment was examined"),
    ),
)

SCHEMAS: Mapping[str, Schema] = {"segment": SEGMENT_EVENT, "gap": GAP_EVENT, "quarantine": QUARANTINE_EVENT}

# uuid5 namespace of every video event id; fixed forever, or replays would get new ids.
_ID_NAMESPACE = uuid.UUID("3f7c1e52-5d0a-4c39-9a53-0c1b3e8f6a21")


def event_id(kind: EventType, camera_id: str, first: int, last: int | None = None) -> str:
    """The deterministic id of an event: the same camera and sequence(s) always give the same id,
    so a replayed announcement is recognisably the same event."""
    span = str(first) if last is None else f"{first}-{last}"
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}/{camera_id}/{span}"))


def iso_utc(at: datetime) -> str:
    """The wire form of timestamps in video events: ISO-8601 UTC with milliseconds and ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def checked_event(schema: Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as an event of ``schema``; raises ValueError when a field is missing, unknown or
    of the wrong type (a programming error in the emitter, never bad input)."""
    extra = set(values) - set(schema.field_names)
    missing = set(schema.field_names) - set(values)
    errors = [f"unknown field {n}" for n in sorted(extra)] + [f"missing field {n}" for n in sorted(missing)]
    errors += type_errors(dict(values), StructOf(schema.name, schema.fields), schema.name)
    if errors:
        raise ValueError(f"not a valid {schema.name}: {'; '.join(errors)}")
    return dict(values)
