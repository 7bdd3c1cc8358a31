"""Ingest one camera: read its live playlist, handle every segment not handled before, and return.

A *step* handles one thing that moves the watermark: a run of sequences the window slid past
(a gap), one segment that could not be fetched (a gap), one undecodable segment (quarantine) or one
good segment (stored and announced). Each step runs its side effects in this order:

1. ``begin_step``: record in DynamoDB which sequence is in flight and when it began (fenced by the
   lease). Everything the step writes is derived from that sequence and that time.
2. write the S3 object(s) with conditional writes at deterministic keys (never a second object);
3. put the event, whose ``event_id`` and payload are deterministic, on the Kinesis stream;
4. ``advance``: move the watermark, conditional on its previous value and on the lease.

A crash between any two of these leaves the watermark behind, so the next worker repeats the step:
(2) finds the objects already there (and reads the segment back from S3 instead of the camera),
(3) repeats the same event with the same ``event_id``, (4) succeeds once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from lambdas.video_ingest.fetch import FetchFailure, HttpFetcher
from lambdas.video_ingest.playlist import (
    MasterPlaylist,
    MediaPlaylist,
    MediaSegment,
    PlaylistError,
    choose_variant,
    parse_playlist,
)
from lambdas.video_ingest.probe import Probe, Undecodable, probe_segment
from lambdas.video_ingest.sinks import Sinks
from lambdas.video_ingest.watermark import CameraState, LeaseLostError, WatermarkStore
from platform_core.schemas.video import (
    GAP_EVENT,
    QUARANTINE_EVENT,
    SEGMENT_EVENT,
    CameraConfig,
    GapReason,
    checked_event,
    event_id,
    frame_key,
    iso_utc,
    quarantine_key,
    segment_key,
)

logger = logging.getLogger(__name__)

Status = Literal[
    "ok",  # everything the playlist offered was handled
    "ended",  # ... and the playlist has EXT-X-ENDLIST: the stream is over
    "deadline",  # stopped early to finish within the invocation; the rest waits for the next run
    "busy",  # another worker holds the camera's lease; nothing was done
    "unreachable",  # the camera (playlist or source) could not be reached
    "bad_playlist",  # the playlist cannot be followed (see detail)
    "sequence_reset",  # the camera's media sequence went backwards (it restarted); needs a person
    "lease_lost",  # the lease was taken over mid-run; the new owner carries on
    "error",  # an unexpected failure; the watermark stays put and the next run repeats the step
]


@dataclass
class CameraResult:
    """What one run did for one camera; ``to_dict`` is the handler's answer and the metric source."""

    camera_id: str
    status: Status = "ok"
    detail: str = ""
    stored: list[int] = field(default_factory=list)
    quarantined: list[int] = field(default_factory=list)
    gaps: list[tuple[int, int, str]] = field(default_factory=list)
    frames_sampled: int = 0
    video_seconds: float = 0.0
    bytes: int = 0
    watermark: int | None = None
    recovered_step: int | None = None  # a step a crashed worker left in flight, repeated here

    def absorb(self, later: CameraResult) -> None:
        """Add a later pass's result for the same camera to this one."""
        self.status, self.detail = later.status, later.detail
        self.stored += later.stored
        self.quarantined += later.quarantined
        self.gaps += later.gaps
        self.frames_sampled += later.frames_sampled
        self.video_seconds += later.video_seconds
        self.bytes += later.bytes
        self.watermark = later.watermark if later.watermark is not None else self.watermark
        self.recovered_step = self.recovered_step if self.recovered_step is not None else later.recovered_step

    @property
    def missing_segments(self) -> int:
        return sum(last - first + 1 for first, last, _ in self.gaps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "camera_id": self.camera_id,
            "status": self.status,
            "detail": self.detail,
            "stored": list(self.stored),
            "quarantined": list(self.quarantined),
            "gaps": [{"from_sequence": a, "to_sequence": b, "reason": r} for a, b, r in self.gaps],
            "frames_sampled": self.frames_sampled,
            "video_seconds": round(self.video_seconds, 3),
            "bytes": self.bytes,
            "watermark": self.watermark,
            "recovered_step": self.recovered_step,
        }


@dataclass(frozen=True)
class IngestOptions:
    # The lease outlives the invocation by this much, covering clock skew between workers.
    lease_margin_seconds: float = 30.0
    # A step is not started with less time than this left (a download with retries plus a probe).
    step_budget_seconds: float = 10.0
    # A segment whose decoded video is shorter than this share of its EXTINF is quarantined.
    min_duration_ratio: float = 0.5


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Stop(Exception):
    """End this camera's run with the given status (raised inside a run, caught by it)."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class VideoIngestor:
    """One worker. Each instance has its own lease identity (``owner``)."""

    sinks: Sinks
    watermarks: WatermarkStore
    fetcher: HttpFetcher
    resolve_kvs: Callable[[str], str] | None = None  # Kinesis Video stream name -> HLS session URL
    options: IngestOptions = field(default_factory=IngestOptions)
    clock: Callable[[], datetime] = _utc_now
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def ingest(self, camera: CameraConfig, *, deadline: float) -> CameraResult:
        """Handle what the camera offers now; stop before ``deadline`` (a ``time.monotonic`` value)."""
        try:
            return self._ingest(camera, deadline)
        except Exception as error:
            # One camera's failure must not take the others down; the watermark did not move, so
            # the next run repeats the unfinished step (or takes the lease over once it expires).
            logger.exception("camera %s: ingest failed", camera.camera_id)
            return CameraResult(camera.camera_id, "error", type(error).__name__)

    def _ingest(self, camera: CameraConfig, deadline: float) -> CameraResult:
        now = self.clock()
        lease_until = now + timedelta(seconds=max(0.0, deadline - time.monotonic()) + self.options.lease_margin_seconds)
        state = self.watermarks.acquire(camera.camera_id, self.owner, now_ms=_ms(now), until_ms=_ms(lease_until))
        if state is None:
            return CameraResult(camera.camera_id, "busy", "another worker holds the camera's lease")
        run = _CameraRun(self, camera, state, deadline)
        try:
            run.execute()
        except LeaseLostError as lost:
            run.result.status, run.result.detail = "lease_lost", str(lost)
            return run.result  # the lease is somebody else's now: nothing to release
        except Exception as error:
            logger.exception("camera %s: ingest failed", camera.camera_id)
            run.result.status, run.result.detail = "error", type(error).__name__
        self.watermarks.release(camera.camera_id, self.owner)
        return run.result


# Statuses after which another poll in the same invocation is worth it: the camera may have more
# (ok) or be back (unreachable). The others will not change within seconds.
_POLL_AGAIN: frozenset[Status] = frozenset({"ok", "unreachable"})


def ingest_cameras(
    worker: VideoIngestor,
    cameras: Sequence[CameraConfig],
    *,
    deadline: float,
    poll_interval_seconds: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CameraResult]:
    """One pass over ``cameras`` or, with a poll interval, passes until the deadline.

    A single pass handles what each playlist offers at that moment. Polling within the invocation
    is for cameras whose live window is shorter than the schedule's period: between two scheduled
    runs the window would slide past segments nobody fetched. Results of the passes add up per
    camera; the status is the last pass's."""
    totals = {camera.camera_id: CameraResult(camera.camera_id) for camera in cameras}
    active = list(cameras)
    while active:
        for camera in active:
            totals[camera.camera_id].absorb(worker.ingest(camera, deadline=deadline))
        active = [c for c in active if totals[c.camera_id].status in _POLL_AGAIN]
        left = deadline - time.monotonic()
        if (
            not active
            or poll_interval_seconds <= 0
            or left < poll_interval_seconds + worker.options.step_budget_seconds
        ):
            break
        sleep(poll_interval_seconds)
    return list(totals.values())


class _CameraRun:
    """The state of one run for one camera."""

    def __init__(self, worker: VideoIngestor, camera: CameraConfig, state: CameraState, deadline: float) -> None:
        self.worker, self.camera, self.state, self.deadline = worker, camera, state, deadline
        self.watermark = state.watermark
        self.result = CameraResult(camera.camera_id, watermark=state.watermark)

    # -- the run ----------------------------------------------------------------------------

    def execute(self) -> None:
        try:
            playlist = self._media_playlist()
            self._check_continuity(playlist)
            self._catch_up(playlist)
            for segment in playlist.segments:
                if self.watermark is None or segment.sequence > self.watermark:
                    self._step(segment)
        except _Stop as stop:
            self.result.status, self.result.detail = stop.status, stop.detail
            return
        if playlist.ended and self.watermark == playlist.last_sequence:
            self.result.status, self.result.detail = "ended", "the playlist has EXT-X-ENDLIST"

    def _media_playlist(self) -> MediaPlaylist:
        url = self._source_url()
        for _ in range(2):  # a master playlist, then the media playlist it points to
            text = self._fetch_playlist(url)
            try:
                playlist = parse_playlist(text, url)
            except PlaylistError as error:
                raise _Stop("bad_playlist", str(error)) from None
            if isinstance(playlist, MediaPlaylist):
                return playlist
            url = self._variant_url(playlist)
        raise _Stop("bad_playlist", "a master playlist points to another master playlist")

    def _source_url(self) -> str:
        if self.camera.source_kind == "hls":
            return self.camera.source
        if self.worker.resolve_kvs is None:
            raise _Stop("bad_playlist", "Kinesis Video sources need a resolver")
        try:
            return self.worker.resolve_kvs(self.camera.kvs_stream_name)
        except LookupError as missing:
            raise _Stop("unreachable", f"Kinesis Video stream not available: {missing}") from None

    def _variant_url(self, master: MasterPlaylist) -> str:
        return choose_variant(master, self.camera.variant).uri

    def _fetch_playlist(self, url: str) -> str:
        outcome = self.worker.fetcher.get(url, deadline=self.deadline)
        if isinstance(outcome, FetchFailure):
            raise _Stop("unreachable", f"playlist {_public(url)}: {outcome.kind}, {outcome.detail}")
        try:
            return outcome.body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _Stop("bad_playlist", "the playlist is not UTF-8 text") from None

    def _check_continuity(self, playlist: MediaPlaylist) -> None:
        last = playlist.last_sequence
        if self.watermark is not None and last is not None and last < self.watermark:
            raise _Stop(
                "sequence_reset",
                f"playlist ends at media sequence {last}, below the watermark {self.watermark}: "
                "the camera restarted its numbering",
            )

    def _catch_up(self, playlist: MediaPlaylist) -> None:
        """Declare what the window slid past before anyone fetched it."""
        if self.watermark is None or playlist.media_sequence <= self.watermark + 1:
            return
        first, last = self.watermark + 1, playlist.media_sequence - 1
        self._ensure_time()
        at = self._begin(first)
        self._gap(first, last, "window_slid", f"the live window starts at {playlist.media_sequence}", at)

    # -- one segment ------------------------------------------------------------------------

    def _step(self, segment: MediaSegment) -> None:
        self._ensure_time()
        recovering = self.state.pending_seq == segment.sequence and self.state.pending_at is not None
        at = self._begin(segment.sequence)
        body = self._recover(segment, at) if recovering else None
        if body is None:
            outcome = self.worker.fetcher.get(segment.uri, deadline=self.deadline)
            if isinstance(outcome, FetchFailure):
                self._fetch_failed(segment, outcome, at)
                return
            body = outcome.body
        probe = probe_segment(body, sample_every_seconds=self.camera.frame_sample_seconds)
        if isinstance(probe, Probe) and probe.duration_s < self.worker.options.min_duration_ratio * segment.duration:
            probe = Undecodable(
                "truncated", f"{probe.duration_s:.3f} s of video, the playlist says {segment.duration:.3f} s"
            )
        if isinstance(probe, Undecodable):
            self._quarantine(segment, body, probe, at)
        else:
            self._store(segment, body, probe, at)

    def _fetch_failed(self, segment: MediaSegment, failure: FetchFailure, at: datetime) -> None:
        if failure.cut_short:
            raise _Stop("deadline", f"no time left to fetch segment {segment.sequence}")
        if failure.kind == "unreachable":
            # Not a gap: the segment may well be fetched once the camera is back.
            raise _Stop("unreachable", f"segment {segment.sequence}: {failure.detail}")
        reason: GapReason = failure.kind
        self._gap(segment.sequence, segment.sequence, reason, failure.detail, at)

    def _store(self, segment: MediaSegment, body: bytes, probe: Probe, at: datetime) -> None:
        camera_id, sequence = self.camera.camera_id, segment.sequence
        # Segments are partitioned by their own date-time when the camera says it, else by when
        # ingestion began; both are fixed for the step, so a repeat finds the same key.
        partition_at = segment.program_date_time or at
        key = segment_key(camera_id, sequence, partition_at)
        sinks = self.worker.sinks
        sinks.put_once(key, body, content_type="video/mp2t", metadata={"media-sequence": str(sequence)})
        for frame in probe.sampled:
            sinks.put_once(
                frame_key(camera_id, sequence, frame.offset_ms, partition_at),
                frame.jpeg,
                content_type="image/jpeg",
            )
        sinks.announce(
            checked_event(
                SEGMENT_EVENT,
                {
                    "event_id": event_id("segment", camera_id, sequence),
                    "event_type": "segment",
                    "camera_id": camera_id,
                    "media_sequence": sequence,
                    "segment_uri": _public(segment.uri),
                    "s3_bucket": sinks.bucket,
                    "s3_key": key,
                    "bytes": len(body),
                    "container": probe.container,
                    "video_codec": probe.video_codec,
                    "audio_codec": probe.audio_codec,
                    "width": probe.width,
                    "height": probe.height,
                    "frame_rate": probe.frame_rate,
                    "duration_s": probe.duration_s,
                    "frames": probe.frames,
                    "keyframes": probe.keyframes,
                    "discontinuity": segment.discontinuity,
                    "program_date_time": iso_utc(segment.program_date_time) if segment.program_date_time else None,
                    "frames_sampled": len(probe.sampled),
                    "ingested_at": iso_utc(at),
                },
            )
        )
        self._advance(sequence)
        self.result.stored.append(sequence)
        self.result.frames_sampled += len(probe.sampled)
        self.result.video_seconds += probe.duration_s
        self.result.bytes += len(body)

    def _quarantine(self, segment: MediaSegment, body: bytes, why: Undecodable, at: datetime) -> None:
        camera_id, sequence = self.camera.camera_id, segment.sequence
        key = quarantine_key(camera_id, sequence)
        # The reason travels with the bytes, so a person who finds the object knows why it is there.
        self.worker.sinks.put_once(
            key,
            body,
            content_type="video/mp2t",
            metadata={"reason": why.reason, "media-sequence": str(sequence)},
        )
        self.worker.sinks.announce(
            checked_event(
                QUARANTINE_EVENT,
                {
                    "event_id": event_id("quarantine", camera_id, sequence),
                    "event_type": "quarantine",
                    "camera_id": camera_id,
                    "media_sequence": sequence,
                    "segment_uri": _public(segment.uri),
                    "reason": why.reason,
                    "detail": why.detail,
                    "s3_bucket": self.worker.sinks.bucket,
                    "s3_key": key,
                    "bytes": len(body),
                    "detected_at": iso_utc(at),
                },
            )
        )
        self._advance(sequence)
        self.result.quarantined.append(sequence)

    def _gap(self, first: int, last: int, reason: GapReason, detail: str, at: datetime) -> None:
        camera_id = self.camera.camera_id
        self.worker.sinks.announce(
            checked_event(
                GAP_EVENT,
                {
                    "event_id": event_id("gap", camera_id, first, last),
                    "event_type": "gap",
                    "camera_id": camera_id,
                    "from_sequence": first,
                    "to_sequence": last,
                    "reason": reason,
                    "detail": detail,
                    "detected_at": iso_utc(at),
                },
            )
        )
        self._advance(last)
        self.result.gaps.append((first, last, reason))

    # -- bookkeeping ------------------------------------------------------------------------

    def _begin(self, sequence: int) -> datetime:
        """Record the step (or find the one a crashed worker left) and return its fixed time."""
        state = self.state
        if state.pending_seq == sequence and state.pending_at is not None:
            self.result.recovered_step = sequence
            return state.pending_at
        at = self.worker.clock()
        self.worker.watermarks.begin_step(
            self.camera.camera_id, self.worker.owner, sequence=sequence, at=at, now_ms=_ms(at)
        )
        return at

    def _recover(self, segment: MediaSegment, at: datetime) -> bytes | None:
        """The bytes an interrupted step already stored, so the camera is not asked twice."""
        partition_at = segment.program_date_time or at
        for key in (
            segment_key(self.camera.camera_id, segment.sequence, partition_at),
            quarantine_key(self.camera.camera_id, segment.sequence),
        ):
            body = self.worker.sinks.read(key)
            if body is not None:
                return body
        return None

    def _advance(self, to: int) -> None:
        self.worker.watermarks.advance(
            self.camera.camera_id,
            self.worker.owner,
            previous=self.watermark,
            to=to,
            now_ms=_ms(self.worker.clock()),
        )
        self.watermark = self.result.watermark = to

    def _ensure_time(self) -> None:
        if self.deadline - time.monotonic() < self.worker.options.step_budget_seconds:
            raise _Stop("deadline", "stopped to finish within the invocation; the next run continues")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _public(url: str) -> str:
    """The URL without credentials or query string (a Kinesis Video session token lives there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
