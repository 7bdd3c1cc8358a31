"""The inference API's settings, read once from its environment variables."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from platform_core.config import FeaturesConfig, PlatformConfig
from platform_core.names import Names
from platform_core.schemas.features import USER_CLICKSTREAM, USER_SUBSCRIPTION

_MAX_FEATURE_AGE_DAYS = FeaturesConfig().max_feature_age_days

# Environment variable holding each feature group's physical name.
FEATURE_GROUP_VARIABLES = {
    USER_SUBSCRIPTION.name: "SUBSCRIPTION_FEATURE_GROUP",
    USER_CLICKSTREAM.name: "CLICKSTREAM_FEATURE_GROUP",
}
_REQUIRED = ("ENDPOINT_NAME", "MANIFEST_PARAMETER", *FEATURE_GROUP_VARIABLES.values())


@dataclass(frozen=True)
class Settings:
    endpoint_name: str  # ENDPOINT_NAME
    manifest_parameter: str  # MANIFEST_PARAMETER: SSM parameter the deployer writes
    feature_groups: Mapping[str, str]  # logical group name -> physical name
    variant_name: str = "AllTraffic"  # VARIANT_NAME: only used in capture keys
    inference_timeout_ms: int = 1500  # INFERENCE_TIMEOUT_MS: read timeout of one endpoint call
    manifest_cache_seconds: int = 60  # MANIFEST_CACHE_SECONDS
    max_feature_age_days: int = _MAX_FEATURE_AGE_DAYS  # MAX_FEATURE_AGE_DAYS: older online records count as missing
    # CAPTURE_BUCKET: set when the endpoint cannot capture (serverless); the API then writes the
    # capture records itself, in SageMaker's format, under the same prefix.
    capture_bucket: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        missing = [name for name in _REQUIRED if not env.get(name)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        timeout_ms = int(env.get("INFERENCE_TIMEOUT_MS", "1500"))
        cache_seconds = int(env.get("MANIFEST_CACHE_SECONDS", "60"))
        max_age_days = int(env.get("MAX_FEATURE_AGE_DAYS", str(_MAX_FEATURE_AGE_DAYS)))
        if timeout_ms < 100 or cache_seconds < 0 or max_age_days < 1:
            raise ValueError(
                "INFERENCE_TIMEOUT_MS must be >= 100, MANIFEST_CACHE_SECONDS >= 0 and MAX_FEATURE_AGE_DAYS >= 1"
            )
        return cls(
            endpoint_name=env["ENDPOINT_NAME"],
            manifest_parameter=env["MANIFEST_PARAMETER"],
            feature_groups={group: env[variable] for group, variable in FEATURE_GROUP_VARIABLES.items()},
            variant_name=env.get("VARIANT_NAME") or "AllTraffic",
            inference_timeout_ms=timeout_ms,
            manifest_cache_seconds=cache_seconds,
            max_feature_age_days=max_age_days,
            capture_bucket=env.get("CAPTURE_BUCKET") or None,
        )


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env(os.environ)


def environment(config: PlatformConfig, *, feature_groups: Mapping[str, str], capture_bucket: str) -> dict[str, str]:
    """The function's environment for one platform configuration (the stack sets exactly this).

    ``capture_bucket`` is used only when the endpoint is serverless (it cannot capture itself).
    """
    names = Names(config)
    env = {
        "ENDPOINT_NAME": names.inference_endpoint,
        "VARIANT_NAME": names.inference_variant,
        "MANIFEST_PARAMETER": names.serving_manifest_parameter,
        "INFERENCE_TIMEOUT_MS": str(config.serving.inference_timeout_ms),
        "MANIFEST_CACHE_SECONDS": str(config.serving.manifest_cache_seconds),
        "MAX_FEATURE_AGE_DAYS": str(config.features.max_feature_age_days),
        **{variable: feature_groups[group] for group, variable in FEATURE_GROUP_VARIABLES.items()},
    }
    if config.serving.serverless:
        env["CAPTURE_BUCKET"] = capture_bucket
    return env
