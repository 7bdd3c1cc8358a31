"""The consumer's settings, read once from its environment variables."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from platform_core.schemas.features import DEFAULT_SESSION_GAP_MINUTES


@dataclass(frozen=True)
class Settings:
    state_table: str  # STATE_TABLE_NAME: DynamoDB table keyed by user_id (string)
    feature_group_name: str  # FEATURE_GROUP_NAME: the physical user-clickstream group
    rejects_queue_url: str | None = None  # REJECTS_QUEUE_URL: SQS queue for unusable events
    session_gap_minutes: int = DEFAULT_SESSION_GAP_MINUTES  # SESSION_GAP_MINUTES (GlueConfig's value)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        missing = [name for name in ("STATE_TABLE_NAME", "FEATURE_GROUP_NAME") if not env.get(name)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        gap = int(env.get("SESSION_GAP_MINUTES", str(DEFAULT_SESSION_GAP_MINUTES)))
        if gap <= 0:
            raise ValueError("SESSION_GAP_MINUTES must be positive")
        return cls(
            state_table=env["STATE_TABLE_NAME"],
            feature_group_name=env["FEATURE_GROUP_NAME"],
            rejects_queue_url=env.get("REJECTS_QUEUE_URL") or None,
            session_gap_minutes=gap,
        )


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env(os.environ)
