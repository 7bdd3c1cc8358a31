"""HLS playlists (RFC 8216): parse media and master playlists, choose a rendition.

Only what ingestion needs is kept: sequence numbers, absolute segment URLs, durations,
discontinuities, program date-times and the end marker. URIs are resolved against the URL the
playlist was read from, so relative (``seg_1.ts``, ``../hi/index.m3u8``), root-relative
(``/live/seg_1.ts``) and absolute URIs all work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin

from platform_core.schemas.video import VariantPreference

_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?", re.ASCII)
# Segments are seconds long (Apple recommends 6 s); an hour is far beyond any real one.
MAX_DURATION_SECONDS = 3600.0


class PlaylistError(ValueError):
    """The text is not a playlist this ingest can follow; ``reason`` says why."""


@dataclass(frozen=True)
class MediaSegment:
    sequence: int
    uri: str  # absolute
    duration: float  # EXTINF seconds
    discontinuity: bool
    program_date_time: datetime | None


@dataclass(frozen=True)
class MediaPlaylist:
    media_sequence: int
    target_duration: float
    segments: tuple[MediaSegment, ...]
    ended: bool  # EXT-X-ENDLIST: no segment will ever be added

    @property
    def last_sequence(self) -> int | None:
        return self.segments[-1].sequence if self.segments else None


@dataclass(frozen=True)
class Variant:
    uri: str  # absolute
    bandwidth: int
    resolution: tuple[int, int] | None


@dataclass(frozen=True)
class MasterPlaylist:
    variants: tuple[Variant, ...]


def parse_playlist(text: str, base_url: str) -> MediaPlaylist | MasterPlaylist:
    """Parse a playlist read from ``base_url``; raises PlaylistError when it is not one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an HLS playlist: the first line is not #EXTM3U")
    if any(line.startswith("#EXT-X-STREAM-INF:") for line in lines):
        return _parse_master(lines, base_url)
    return _parse_media(lines, base_url)


def _parse_media(lines: list[str], base_url: str) -> MediaPlaylist:
    media_sequence = 0
    target = 0.0
    ended = False
    segments: list[MediaSegment] = []
    # Tags that apply to the next URI line.
    duration: float | None = None
    discontinuity = False
    pdt: datetime | None = None
    previous_end: datetime | None = None  # the previous segment's PDT + its duration
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            media_sequence = _int(value, tag)
        elif tag == "#EXT-X-TARGETDURATION":
            target = _float(value, tag)
        elif tag == "#EXTINF":
            duration = _float(value.split(",", 1)[0], tag)
        elif tag == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            pdt = _datetime(value)
        elif tag == "#EXT-X-ENDLIST":
            ended = True
        elif tag in ("#EXT-X-MAP", "#EXT-X-BYTERANGE") or (tag == "#EXT-X-KEY" and "METHOD=NONE" not in value):
            # fMP4 init sections, byte ranges and encryption change what a segment's bytes mean;
            # refusing them is better than storing segments nobody can decode.
            raise PlaylistError(f"unsupported playlist feature {tag}")
        elif not line.startswith("#"):
            if duration is None:
                raise PlaylistError(f"segment {line!r} has no #EXTINF")
            if pdt is None and previous_end is not None and not discontinuity:
                pdt = previous_end  # the date-time of a segment without its own tag follows on
            segments.append(
                MediaSegment(
                    sequence=media_sequence + len(segments),
                    uri=urljoin(base_url, line),
                    duration=duration,
                    discontinuity=discontinuity,
                    program_date_time=pdt,
                )
            )
            previous_end = pdt + timedelta(seconds=duration) if pdt is not None else None
            duration, discontinuity, pdt = None, False, None
    return MediaPlaylist(media_sequence, target, tuple(segments), ended)


def _parse_master(lines: list[str], base_url: str) -> MasterPlaylist:
    variants: list[Variant] = []
    attributes: dict[str, str] | None = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = _attributes(line.partition(":")[2])
        elif not line.startswith("#") and attributes is not None:
            bandwidth = _int(attributes.get("BANDWIDTH", ""), "BANDWIDTH")
            variants.append(Variant(urljoin(base_url, line), bandwidth, _resolution(attributes.get("RESOLUTION"))))
            attributes = None
    if not variants:
        raise PlaylistError("master playlist lists no variant")
    return MasterPlaylist(tuple(variants))


def choose_variant(master: MasterPlaylist, preference: VariantPreference) -> Variant:
    """The rendition a camera's ``variant`` setting asks for (see VariantPreference)."""
    by_bandwidth = sorted(master.variants, key=lambda v: v.bandwidth)
    if preference == "lowest":
        return by_bandwidth[0]
    if preference == "highest":
        return by_bandwidth[-1]
    fitting = [v for v in by_bandwidth if v.bandwidth <= int(preference)]
    return fitting[-1] if fitting else by_bandwidth[0]


def _attributes(text: str) -> dict[str, str]:
    """``A=1,B="x,y",C=z`` -> {"A": "1", "B": "x,y", "C": "z"} (commas may sit inside quotes)."""
    out: dict[str, str] = {}
    key, value, quoted, in_value = "", "", False, False
    for char in text + ",":
        if in_value:
            if char == '"':
                quoted = not quoted
            elif char == "," and not quoted:
                out[key.strip()] = value
                key, value, in_value = "", "", False
            else:
                value += char
        elif char == "=":
            in_value = True
        else:
            key += char
    return out


def _resolution(value: str | None) -> tuple[int, int] | None:
    if not value or "x" not in value:
        return None
    width, _, height = value.partition("x")
    return (_int(width, "RESOLUTION"), _int(height, "RESOLUTION"))


def _int(value: str, tag: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise PlaylistError(f"{tag} is not an integer: {value!r}") from None


def _float(value: str, tag: str) -> float:
    """A duration: RFC 8216 4.2 decimal-floating-point (ASCII digits and one point, non-negative).

    ``float()`` alone would take ``nan``, ``inf``, ``-5`` and ``1_000``; and a duration longer than
    any real segment would overflow the date-time arithmetic of the segments that follow it.
    """
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        raise PlaylistError(f"{tag} is not a non-negative decimal number: {value!r}")
    seconds = float(text)
    if seconds > MAX_DURATION_SECONDS:
        raise PlaylistError(f"{tag} of {text} s is longer than any segment could be ({MAX_DURATION_SECONDS} s)")
    return seconds


def _datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PlaylistError(f"EXT-X-PROGRAM-DATE-TIME is not ISO-8601: {value!r}") from None
    if parsed.tzinfo is None:
        raise PlaylistError(f"EXT-X-PROGRAM-DATE-TIME has no time zone: {value!r}")
    return parsed
