"""The function's settings, parsed once from its environment variables."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast, get_args

from platform_core.config import IpProtection
from platform_core.names import CLICKSTREAM_REJECTS_PREFIX

_MODES: tuple[str, ...] = get_args(IpProtection)


class SettingsError(ValueError):
    """The function is misconfigured: fail the invocation loudly rather than guess."""


@dataclass(frozen=True)
class Settings:
    ip_protection: IpProtection
    # ARN of the Secrets Manager secret holding the HMAC key; required when ip_protection is hash.
    ip_hash_secret_arn: str | None
    # Where the per-invocation rejects file goes (the bucket that also holds Firehose's errors).
    rejects_bucket: str
    rejects_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        mode = env.get("IP_PROTECTION", "truncate").strip().lower()
        if mode not in _MODES:
            raise SettingsError(f"IP_PROTECTION must be one of {', '.join(_MODES)}, got {mode!r}")
        secret_arn = env.get("IP_HASH_SECRET_ARN", "").strip() or None
        if mode == "hash" and secret_arn is None:
            raise SettingsError("IP_PROTECTION=hash needs IP_HASH_SECRET_ARN (the HMAC key's secret)")
        bucket = env.get("REJECTS_BUCKET", "").strip()
        if not bucket:
            raise SettingsError("REJECTS_BUCKET is required: rejected records and their reasons go there")
        prefix = env.get("REJECTS_PREFIX", "").strip() or CLICKSTREAM_REJECTS_PREFIX
        return cls(
            ip_protection=cast(IpProtection, mode),  # checked against the Literal above
            ip_hash_secret_arn=secret_arn,
            rejects_bucket=bucket,
            rejects_prefix=prefix.strip("/") + "/",
        )


@functools.cache
def settings() -> Settings:
    """Read on first use (not at import), so tests can set the environment first."""
    return Settings.from_env(os.environ)
