"""Where video lives in the raw lake: the metadata table and the per-camera retention rules.

**One table, not three.** The ``video-metadata`` stream carries three kinds of events (``segment``,
``gap``, ``quarantine``) told apart by ``event_type``. Firehose converts a stream to Parquet against
exactly one Glue table and cannot route records without a transform function, so the natural shape
is one table whose columns are the union of the three schemas: each row fills the columns of its
kind and leaves the others null, and ``WHERE event_type = 'gap'`` reads one kind. The union is
derived from ``SEGMENT_EVENT``, ``GAP_EVENT`` and ``QUARANTINE_EVENT`` (a field the schemas share
must have one type, or synthesis fails), so it cannot drift from the events the ingest emits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3

from platform_core.schema import Field, Primitive, Schema
from platform_core.schemas.video import (
    GAP_EVENT,
    NAMESPACE,
    QUARANTINE_EVENT,
    SEGMENT_EVENT,
    VIDEO_FRAMES_PREFIX,
    VIDEO_QUARANTINE_PREFIX,
    VIDEO_SEGMENT_PREFIX,
    CameraConfig,
)

# Video events write timestamps with ``iso_utc``: ISO-8601, milliseconds, "Z" (Joda's ZZ parses it).
VIDEO_TIMESTAMP_FORMATS = ("yyyy-MM-dd'T'HH:mm:ss.SSSZZ",)

# Firehose partitions by the hour the records arrived on the stream (no transform to compute any other).
ARRIVAL_HOUR_PARTITIONS = (
    Field("year", Primitive.STRING, doc="arrival year on video-metadata, UTC"),
    Field("month", Primitive.STRING, doc="arrival month, UTC, two digits"),
    Field("day", Primitive.STRING, doc="arrival day, UTC, two digits"),
    Field("hour", Primitive.STRING, doc="arrival hour, UTC, two digits"),
)


def union_schema(name: str, doc: str, schemas: Sequence[Schema]) -> Schema:
    """One table holding rows of several event schemas: every field once, in first-seen order.

    A field is required only if every schema requires it (a gap has no ``media_sequence``)."""
    merged: dict[str, Field] = {}
    for schema in schemas:
        for f in schema.fields:
            seen = merged.get(f.name)
            if seen is not None and seen.type != f.type:
                raise ValueError(f"{f.name} is {seen.type} in one video event and {f.type} in {schema.name}")
            if seen is None:
                merged[f.name] = f
    required = {n for n in merged if all(n in s.field_names and s.field(n).required for s in schemas)}
    fields = tuple(
        Field(f.name, f.type, required=f.name in required, doc=f.doc if f.name != "event_type" else _KINDS_DOC)
        for f in merged.values()
    )
    return Schema(name=name, namespace=NAMESPACE, doc=doc, fields=fields, partition_keys=ARRIVAL_HOUR_PARTITIONS)


_KINDS_DOC = "segment | gap | quarantine: which columns of the row are filled"

VIDEO_METADATA_TABLE = union_schema(
    "VideoMetadata",
    "Events of the video ingest (segment, gap, quarantine; see event_type), one row per event.",
    (SEGMENT_EVENT, GAP_EVENT, QUARANTINE_EVENT),
)


def video_lifecycle_rules(cameras: Iterable[CameraConfig]) -> list[s3.LifecycleRule]:
    """Raw-bucket rules that delete each camera's video after its ``retention_days``.

    Segments, sampled frames and quarantined bytes of a camera share its retention. The bucket is
    versioned: the expiration leaves a delete marker, and the old version is removed a day later, so
    footage really is gone soon after its retention (not after the bucket's general noncurrent
    expiry)."""
    rules = []
    for camera in cameras:
        for label, prefix in (
            ("Segments", VIDEO_SEGMENT_PREFIX),
            ("Frames", VIDEO_FRAMES_PREFIX),
            ("Quarantine", VIDEO_QUARANTINE_PREFIX),
        ):
            rules.append(
                s3.LifecycleRule(
                    id=f"Video{label}-{camera.camera_id}",
                    prefix=f"{prefix}camera_id={camera.camera_id}/",
                    expiration=Duration.days(camera.retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            )
    return rules
