"""Look inside a media segment with PyAV (FFmpeg): what it holds, whether it decodes, and
optionally a JPEG every N seconds of video.

Every video frame is decoded, not just the headers read: a segment is announced as good only if
a model could actually use it. Failures are recognised by PyAV's exception types.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error

from platform_core.schemas.video import QuarantineReason


@dataclass(frozen=True)
class SampledFrame:
    offset_ms: int  # from the segment's first video frame
    jpeg: bytes


@dataclass(frozen=True)
class Probe:
    container: str
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    frame_rate: float
    duration_s: float
    frames: int
    keyframes: int
    sampled: tuple[SampledFrame, ...] = ()


@dataclass(frozen=True)
class Undecodable:
    reason: QuarantineReason
    detail: str


def probe_segment(data: bytes, *, sample_every_seconds: float | None = None) -> Probe | Undecodable:
    """Describe ``data`` (one segment) or say why it cannot be used.

    With ``sample_every_seconds`` the first frame of every N-second slot of the stream's own
    timeline is kept as a JPEG; the timeline runs on across segments of a live stream, so the
    samples are evenly spaced however the segments are cut.
    """
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except av.error.FFmpegError as error:
        return Undecodable("unreadable_container", f"FFmpeg cannot open it ({type(error).__name__})")
    with container:
        if not container.streams.video:
            return Undecodable("no_video_stream", f"{container.format.name} container without a video stream")
        try:
            return _decode(container, sample_every_seconds)
        except av.error.FFmpegError as error:
            return Undecodable("decode_error", f"decoding failed ({type(error).__name__})")


def _decode(container: Any, sample_every_seconds: float | None) -> Probe | Undecodable:
    video = container.streams.video[0]
    rate = Fraction(video.average_rate or video.guessed_rate or 0)
    slot = Fraction(str(sample_every_seconds)) if sample_every_seconds else None
    frames = keyframes = 0
    first: Fraction | None = None
    last: Fraction | None = None
    sampled: list[SampledFrame] = []
    for packet in container.demux(video):
        if packet.size and packet.is_keyframe:
            keyframes += 1
        for frame in packet.decode():  # the final empty packet flushes the decoder
            frames += 1
            at = _time(frame)
            if at is None:
                continue
            if slot is not None and _starts_slot(at, last, rate, slot):
                sampled.append(SampledFrame(round((at - (first if first is not None else at)) * 1000), _jpeg(frame)))
            first = at if first is None else first
            last = at
    if frames == 0:
        return Undecodable("no_decodable_frames", "the video stream yielded no frame")
    if not rate:
        rate = (
            Fraction(frames) / (last - first)
            if first is not None and last is not None and last > first
            else Fraction(0)
        )
    duration = (last - first + 1 / rate) if first is not None and last is not None and rate else Fraction(0)
    return Probe(
        container=container.format.name,
        video_codec=video.codec_context.name,
        audio_codec=container.streams.audio[0].codec_context.name if container.streams.audio else None,
        width=video.codec_context.width,
        height=video.codec_context.height,
        frame_rate=round(float(rate), 3),
        duration_s=round(float(duration), 3),
        frames=frames,
        keyframes=keyframes,
        sampled=tuple(sampled),
    )


def _time(frame: Any) -> Fraction | None:
    """The frame's presentation time in seconds, exactly (no float drift across slot boundaries)."""
    if frame.pts is None or frame.time_base is None:
        return None
    return Fraction(frame.pts) * Fraction(frame.time_base)


def _starts_slot(at: Fraction, previous: Fraction | None, rate: Fraction, slot: Fraction) -> bool:
    """Whether the frame at ``at`` is the first of its slot: the frame before it (in this segment,
    or one frame interval earlier at a segment's start) lies in an earlier slot."""
    if previous is None:
        previous = at - 1 / rate if rate else at - slot
    return math.floor(at / slot) != math.floor(previous / slot)


def _jpeg(frame: Any) -> bytes:
    encoder: Any = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    return b"".join(bytes(p) for p in [*encoder.encode(picture), *encoder.encode(None)])
