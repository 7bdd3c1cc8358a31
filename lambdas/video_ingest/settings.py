"""The function's settings, parsed once from its environment variables."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from platform_core.schemas.video import CameraConfig

_T = TypeVar("_T", int, float)


class SettingsError(ValueError):
    """The function is misconfigured: fail the invocation loudly rather than guess."""


@dataclass(frozen=True)
class Settings:
    raw_bucket: str
    metadata_stream: str  # name or ARN of the video-metadata Kinesis stream
    watermark_table: str  # DynamoDB table, partition key camera_id (string)
    cameras: tuple[CameraConfig, ...]
    http_timeout_seconds: float = 5.0
    fetch_attempts: int = 3
    backoff_seconds: float = 0.5
    lease_margin_seconds: float = 30.0
    step_budget_seconds: float = 10.0
    # Kept back from the invocation's remaining time for reporting and releasing the leases.
    safety_margin_seconds: float = 5.0
    metrics_namespace: str = "MLPlatform/Video"
    # 0: one pass per invocation. Otherwise poll the cameras again every this many seconds until the
    # invocation's time is up (for live windows shorter than the schedule's period).
    poll_interval_seconds: float = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            raw_bucket=_required(env, "VIDEO_RAW_BUCKET"),
            metadata_stream=_required(env, "VIDEO_METADATA_STREAM"),
            watermark_table=_required(env, "VIDEO_WATERMARK_TABLE"),
            cameras=parse_cameras(env.get("VIDEO_CAMERAS", "[]")),
            http_timeout_seconds=_number(env, "VIDEO_HTTP_TIMEOUT_SECONDS", 5.0, float),
            fetch_attempts=_number(env, "VIDEO_FETCH_ATTEMPTS", 3, int),
            backoff_seconds=_number(env, "VIDEO_BACKOFF_SECONDS", 0.5, float),
            lease_margin_seconds=_number(env, "VIDEO_LEASE_MARGIN_SECONDS", 30.0, float),
            step_budget_seconds=_number(env, "VIDEO_STEP_BUDGET_SECONDS", 10.0, float),
            safety_margin_seconds=_number(env, "VIDEO_SAFETY_MARGIN_SECONDS", 5.0, float),
            metrics_namespace=env.get("VIDEO_METRICS_NAMESPACE", "").strip() or "MLPlatform/Video",
            poll_interval_seconds=_number(env, "VIDEO_POLL_INTERVAL_SECONDS", 0.0, float, allow_zero=True),
        )


def parse_cameras(text: str) -> tuple[CameraConfig, ...]:
    """``VIDEO_CAMERAS``: a JSON array of camera objects (see CameraConfig.from_dict)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"VIDEO_CAMERAS is not JSON: {error.msg} at position {error.pos}") from None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SettingsError("VIDEO_CAMERAS must be a JSON array of objects")
    try:
        cameras = tuple(CameraConfig.from_dict(item) for item in raw)
    except (ValueError, TypeError) as error:
        raise SettingsError(f"VIDEO_CAMERAS: {error}") from None
    ids = [c.camera_id for c in cameras]
    if len(set(ids)) != len(ids):
        raise SettingsError("VIDEO_CAMERAS lists a camera_id twice")
    return cameras


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is required")
    return value


def _number(
    env: Mapping[str, str], name: str, default: _T, kind: Callable[[str], _T], *, allow_zero: bool = False
) -> _T:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {text!r}") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"{name} must be {'at least 0' if allow_zero else 'positive'}, got {text!r}")
    return value


@functools.cache
def settings() -> Settings:
    """Read on first use (not at import), so tests can set the environment first."""
    return Settings.from_env(os.environ)
