"""A live HLS camera on loopback: real H.264/AAC MPEG-TS segments behind a sliding-window playlist.

The segments are encoded once, up front, with PyAV's HLS muxer (a moving test pattern and a
tone), then served by a small HTTP server on ``127.0.0.1`` as a *live* media playlist: the window
shows ``window`` segments and moves one segment on each tick of a clock that the caller drives
(``camera.advance()``), so tests decide exactly what a poller can see. Optionally a master
playlist offers two renditions. Fault knobs make the camera misbehave the way real ones do.

Bounded by construction: it binds loopback only, and shuts itself down after ``lifetime_seconds``.

    with HlsCamera(segments=8, window=3) as camera:
        camera.url            # http://127.0.0.1:<port>/live/index.m3u8
        camera.advance(2)     # two more segments published, two oldest slid out
"""

from __future__ import annotations

import fractions
import random
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from platform_core.schemas.video import iso_utc

_AUDIO_RATE = 22_050
_MASTER_PATH = "/master.m3u8"


@dataclass(frozen=True)
class Rendition:
    """One encoding of the camera's picture."""

    name: str
    width: int
    height: int
    bitrate: int  # bits per second, advertised as BANDWIDTH in the master playlist


DEFAULT_RENDITION = Rendition("live", 320, 240, 400_000)
TWO_RENDITIONS = (Rendition("hi", 320, 240, 400_000), Rendition("lo", 160, 120, 150_000))


@dataclass
class _Fault:
    """A misbehaviour of one segment; ``remaining`` counts the requests it still affects (None: all)."""

    remaining: int | None

    def fires(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass(frozen=True)
class _Segment:
    data: dict[str, bytes]  # rendition name -> MPEG-TS bytes
    duration: float


@dataclass
class _State:
    """Everything the HTTP handler reads; guarded by ``HlsCamera._lock``."""

    tick: int = 0
    ended: bool = False
    withheld: dict[int, _Fault] = field(default_factory=dict)
    delayed: dict[int, tuple[float, _Fault]] = field(default_factory=dict)
    corrupt: set[int] = field(default_factory=set)
    truncated: dict[int, float] = field(default_factory=dict)
    discontinuities: set[int] = field(default_factory=set)
    requests: list[tuple[str, int]] = field(default_factory=list)


class HlsCamera:
    """A live HLS camera served on loopback. Use as a context manager (or ``start``/``stop``)."""

    def __init__(
        self,
        *,
        segments: int = 8,
        window: int = 3,
        segment_seconds: float = 1.0,
        fps: int = 10,
        renditions: tuple[Rendition, ...] = (DEFAULT_RENDITION,),
        master: bool = False,
        start_sequence: int = 0,
        program_date_time: datetime | None = None,
        audio: bool = True,
        lifetime_seconds: float = 120.0,
        seed: int = 0,
    ) -> None:
        if segments < 1 or window < 1:
            raise ValueError("a camera needs at least one segment and a window of at least one")
        if not master and len(renditions) != 1:
            raise ValueError("several renditions need a master playlist (master=True)")
        self.segment_seconds = segment_seconds
        self.fps = fps
        self.window = window
        self.renditions = renditions
        self.master = master
        self.start_sequence = start_sequence
        self.program_date_time = program_date_time
        self.lifetime_seconds = lifetime_seconds
        self._random = random.Random(seed)  # noqa: S311 - test bytes, not secrets
        self._segments = _encode(renditions, segments, segment_seconds, fps, audio)
        self._state = _State()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._port = 0
        self._watchdog: threading.Timer | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> HlsCamera:
        self._serve(port=0)
        self._watchdog = threading.Timer(self.lifetime_seconds, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        """Stop serving for good (idempotent); delayed responses are released at once."""
        self._stopping.set()
        self._close_server()
        if self._watchdog is not None:
            self._watchdog.cancel()

    def __enter__(self) -> HlsCamera:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve(self, *, port: int) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self))
        server.daemon_threads = True
        self._server, self._port = server, server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _close_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # -- addresses --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """What a client is given: the master playlist if there is one, else the media playlist."""
        return self.base_url + _MASTER_PATH if self.master else self.media_url()

    def media_url(self, rendition: str | None = None) -> str:
        return f"{self.base_url}/{rendition or self.renditions[0].name}/index.m3u8"

    # -- the clock --------------------------------------------------------------------------

    @property
    def total_segments(self) -> int:
        return len(self._segments)

    def advance(self, ticks: int = 1) -> None:
        """Publish ``ticks`` more segments; the window slides by as many."""
        with self._lock:
            if self.window + self._state.tick + ticks > self.total_segments:
                raise ValueError(f"the camera has only {self.total_segments} segments encoded")
            self._state.tick += ticks

    def _published(self, tick: int) -> int:
        return min(self.total_segments, self.window + tick)

    @property
    def published_sequences(self) -> list[int]:
        """Every media sequence that has appeared in the playlist so far."""
        with self._lock:
            count = self._published(self._state.tick)
        return [self.start_sequence + i for i in range(count)]

    @property
    def window_sequences(self) -> list[int]:
        with self._lock:
            return self._window()

    def _window(self) -> list[int]:
        published = self._published(self._state.tick)
        return [self.start_sequence + i for i in range(max(0, published - self.window), published)]

    def segment_duration(self, sequence: int) -> float:
        return self._segments[sequence - self.start_sequence].duration

    def segment_bytes(self, sequence: int, rendition: str | None = None) -> bytes:
        return self._segments[sequence - self.start_sequence].data[rendition or self.renditions[0].name]

    # -- fault knobs ------------------------------------------------------------------------

    def withhold(self, sequence: int, times: int | None = None) -> None:
        """Answer 404 for the segment (the first ``times`` requests; None: always)."""
        with self._lock:
            self._state.withheld[sequence] = _Fault(times)

    def delay(self, sequence: int, seconds: float, times: int | None = None) -> None:
        """Hold the response for the segment ``seconds`` (longer than a client's timeout = a timeout)."""
        with self._lock:
            self._state.delayed[sequence] = (seconds, _Fault(times))

    def corrupt(self, sequence: int) -> None:
        """Serve random bytes of the segment's length instead of the segment."""
        with self._lock:
            self._state.corrupt.add(sequence)

    def truncate(self, sequence: int, keep: float = 0.25) -> None:
        """Serve only the first ``keep`` share of the segment's bytes (an upload cut short)."""
        with self._lock:
            self._state.truncated[sequence] = keep

    def discontinuity(self, sequence: int) -> None:
        """Put ``#EXT-X-DISCONTINUITY`` before the segment in the playlist."""
        with self._lock:
            self._state.discontinuities.add(sequence)

    def end(self) -> None:
        """End the stream: the playlist gets ``#EXT-X-ENDLIST``."""
        with self._lock:
            self._state.ended = True

    def go_offline(self) -> None:
        """Stop listening: connections are refused until ``go_online``."""
        self._close_server()

    def go_online(self) -> None:
        """Listen again on the same port."""
        if self._server is None and not self._stopping.is_set():
            self._serve(port=self._port)

    # -- what clients did -------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, int]]:
        """(path, HTTP status) of every request answered so far."""
        with self._lock:
            return list(self._state.requests)

    def segment_downloads(self) -> Counter[int]:
        """How often each media sequence was served successfully (any rendition)."""
        counts: Counter[int] = Counter()
        for path, status in self.requests:
            if status == 200 and path.endswith(".ts"):
                counts[int(path.rsplit("_", 1)[1].removesuffix(".ts"))] += 1
        return counts

    # -- rendering (called by the HTTP handler) ---------------------------------------------

    def _master_playlist(self) -> str:
        lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
        for r in self.renditions:
            lines.append(
                f'#EXT-X-STREAM-INF:BANDWIDTH={r.bitrate},RESOLUTION={r.width}x{r.height},CODECS="avc1.42c00d,mp4a.40.2"'
            )
            lines.append(f"{r.name}/index.m3u8")  # relative to the master, as cameras publish it
        return "\n".join(lines) + "\n"

    def _media_playlist(self) -> str:
        with self._lock:
            window, state = self._window(), self._state
            target = max(round(s.duration + 0.499) for s in self._segments)
            lines = [
                "#EXTM3U",
                "#EXT-X-VERSION:3",
                f"#EXT-X-TARGETDURATION:{target}",
                f"#EXT-X-MEDIA-SEQUENCE:{window[0]}",
            ]
            for sequence in window:
                if sequence in state.discontinuities:
                    lines.append("#EXT-X-DISCONTINUITY")
                if self.program_date_time is not None:
                    at = self.program_date_time + timedelta(
                        seconds=(sequence - self.start_sequence) * self.segment_seconds
                    )
                    lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_utc(at)}")
                lines.append(f"#EXTINF:{self.segment_duration(sequence):.6f},")
                lines.append(f"seg_{sequence}.ts")
            if state.ended:
                lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"

    def _segment_response(self, rendition: str, sequence: int) -> tuple[int, bytes, float]:
        """(status, body, seconds to hold the response) for one segment request."""
        with self._lock:
            state = self._state
            published = self.start_sequence <= sequence < self.start_sequence + self._published(state.tick)
            if not published or rendition not in {r.name for r in self.renditions}:
                return 404, b"", 0.0
            withheld = state.withheld.get(sequence)
            if withheld is not None and withheld.fires():
                return 404, b"", 0.0
            hold = 0.0
            delayed = state.delayed.get(sequence)
            if delayed is not None and delayed[1].fires():
                hold = delayed[0]
            body = self.segment_bytes(sequence, rendition)
            if sequence in state.corrupt:
                body = self._random.randbytes(len(body))
            if sequence in state.truncated:
                body = body[: int(len(body) * state.truncated[sequence])]
        return 200, body, hold

    def _record(self, path: str, status: int) -> None:
        with self._lock:
            self._state.requests.append((path, status))


def _handler_class(camera: HlsCamera) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            status, body, hold, content_type = self._route(path)
            camera._record(path, status)
            if hold and camera._stopping.wait(hold):
                return  # stopped while holding: drop the connection
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout it asked for)

        def _route(self, path: str) -> tuple[int, bytes, float, str]:
            if camera.master and path == _MASTER_PATH:
                return 200, camera._master_playlist().encode(), 0.0, "application/vnd.apple.mpegurl"
            parts = path.strip("/").split("/")
            if len(parts) == 2 and parts[1] == "index.m3u8" and parts[0] in {r.name for r in camera.renditions}:
                return 200, camera._media_playlist().encode(), 0.0, "application/vnd.apple.mpegurl"
            if len(parts) == 2 and parts[1].startswith("seg_") and parts[1].endswith(".ts"):
                try:
                    sequence = int(parts[1][4:-3])
                except ValueError:
                    return 404, b"", 0.0, "text/plain"
                status, body, hold = camera._segment_response(parts[0], sequence)
                return status, body, hold, "video/mp2t"
            return 404, b"", 0.0, "text/plain"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read ``camera.requests`` instead of stderr."""

    return Handler


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


# Encoded segments by (renditions, segment_seconds, fps, audio): the longest run encoded so far.
_ENCODED: dict[tuple[object, ...], tuple[_Segment, ...]] = {}
_ENCODED_LOCK = threading.Lock()


def _encode(
    renditions: tuple[Rendition, ...], segments: int, segment_seconds: float, fps: int, audio: bool
) -> tuple[_Segment, ...]:
    """The first ``segments`` segments of the camera's picture.

    Cached: cameras built alike share the (immutable) bytes, and a shorter camera reuses the start
    of a longer one, so a test suite encodes each kind of camera about once."""
    key = (renditions, segment_seconds, fps, audio)
    with _ENCODED_LOCK:
        encoded = _ENCODED.get(key, ())
        if len(encoded) < segments:
            encoded = _ENCODED[key] = _encode_all(renditions, segments, segment_seconds, fps, audio)
    return encoded[:segments]


def _encode_all(
    renditions: tuple[Rendition, ...], segments: int, segment_seconds: float, fps: int, audio: bool
) -> tuple[_Segment, ...]:
    """Encode every rendition with the HLS muxer; segments of all renditions align (same GOP)."""
    per_rendition: dict[str, list[bytes]] = {}
    durations: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hls-camera-") as tmp:
        for rendition in renditions:
            folder = Path(tmp, rendition.name)
            folder.mkdir()
            durations = _encode_rendition(
                folder, rendition, segments=segments, segment_seconds=segment_seconds, fps=fps, audio=audio
            )
            per_rendition[rendition.name] = [
                Path(folder, f"seg_{i:05d}.ts").read_bytes() for i in range(len(durations))
            ]
    if len(durations) != segments:
        raise RuntimeError(f"the HLS muxer cut {len(durations)} segments, expected {segments}")
    return tuple(
        _Segment({name: data[i] for name, data in per_rendition.items()}, durations[i]) for i in range(segments)
    )


def _encode_rendition(
    folder: Path, rendition: Rendition, *, segments: int, segment_seconds: float, fps: int, audio: bool
) -> list[float]:
    gop = max(1, round(fps * segment_seconds))
    out = av.open(
        str(folder / "index.m3u8"),
        "w",
        format="hls",
        options={
            "hls_time": str(segment_seconds),
            "hls_list_size": "0",
            "hls_segment_filename": str(folder / "seg_%05d.ts"),
        },
    )
    try:
        video: Any = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = rendition.width, rendition.height, "yuv420p"
        video.bit_rate = rendition.bitrate
        # A keyframe exactly every segment, so the muxer cuts segments of the asked length and each
        # segment decodes on its own.
        video.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
        }
        sound: Any = None
        if audio:
            sound = out.add_stream("aac", rate=_AUDIO_RATE)
            sound.layout = "mono"
        frames = gop * segments
        samples_per_frame = _AUDIO_RATE // fps
        for i in range(frames):
            picture = av.VideoFrame.from_ndarray(_test_pattern(i, rendition.width, rendition.height), format="rgb24")
            picture.pts, picture.time_base = i, fractions.Fraction(1, fps)
            for packet in video.encode(picture):
                out.mux(packet)
            if sound is not None:
                for packet in sound.encode(_tone(i, samples_per_frame)):
                    out.mux(packet)
        for stream in (video, sound):
            if stream is not None:
                for packet in stream.encode(None):
                    out.mux(packet)
    finally:
        out.close()
    return _extinf_durations((folder / "index.m3u8").read_text())


def _test_pattern(i: int, width: int, height: int) -> np.ndarray:
    """Colour bars with a bar and a line moving across them: every frame differs, so a frame
    sampler or a motion model has something to see."""
    bars = np.array([[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0], [192, 0, 192], [192, 0, 0]])
    image = np.repeat(bars, -(-width // len(bars)), axis=0)[:width][np.newaxis, :, :].repeat(height, axis=0)
    image = image.astype(np.uint8)
    x = (i * 7) % width
    image[:, x : x + max(2, width // 20)] = (255, 255, 255)
    image[(i * 3) % height, :] = (0, 0, 0)
    return image


def _tone(i: int, samples: int) -> av.AudioFrame:
    t = (np.arange(samples) + i * samples) / _AUDIO_RATE
    wave = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
    frame.sample_rate = _AUDIO_RATE
    frame.pts, frame.time_base = i * samples, fractions.Fraction(1, _AUDIO_RATE)
    return frame


def _extinf_durations(playlist: str) -> list[float]:
    return [
        float(line[len("#EXTINF:") :].split(",")[0]) for line in playlist.splitlines() if line.startswith("#EXTINF:")
    ]
