"""The function's settings, parsed once from its environment variables."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """The function is misconfigured."""


@dataclass(frozen=True)
class Settings:
    region: str  # the domain's region, for SigV4
    http_timeout_seconds: float
    max_attempts: int  # per request, for throttling and 5xx answers while the domain warms up
    # Stop this long before the Lambda timeout so that CloudFormation always gets an answer.
    safety_margin_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        region = env.get("AWS_REGION", "").strip()
        if not region:
            raise SettingsError("AWS_REGION is not set (the Lambda runtime always sets it)")
        try:
            timeout = float(env.get("HTTP_TIMEOUT_SECONDS", "30"))
            attempts = int(env.get("MAX_ATTEMPTS", "6"))
            margin = float(env.get("SAFETY_MARGIN_SECONDS", "15"))
        except ValueError as error:
            raise SettingsError(f"a numeric setting is not a number: {error}") from None
        if timeout <= 0 or attempts < 1 or margin < 0:
            raise SettingsError("HTTP_TIMEOUT_SECONDS > 0, MAX_ATTEMPTS >= 1 and SAFETY_MARGIN_SECONDS >= 0")
        return cls(region=region, http_timeout_seconds=timeout, max_attempts=attempts, safety_margin_seconds=margin)


@functools.cache
def settings() -> Settings:
    """Read on first use (not at import), so tests can set the environment first."""
    return Settings.from_env(os.environ)
