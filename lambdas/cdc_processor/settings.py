"""The processor's settings, read once from the environment the stack gives the function."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from platform_core.schemas.cdc import CDC_ERROR_PREFIX, DEFAULT_BEFORE_IMAGE_FIELD, SOURCE_SCHEMA_NAME


class SettingsError(ValueError):
    """The function's environment is incomplete or malformed (a deployment error)."""


@dataclass(frozen=True)
class Settings:
    """Environment variables:

    - ``STATE_TABLE`` (required): DynamoDB table of states and dedup markers (pk ``user_id``,
      TTL attribute ``expires_at``);
    - ``LAKE_BUCKET`` (required): bucket of the change log (``cdc/transitions/``, ``cdc/snapshots/``);
    - ``ERRORS_BUCKET`` (default: ``LAKE_BUCKET``) and ``ERRORS_PREFIX`` (default ``errors/cdc/``):
      where rejected records go, one JSON object each;
    - ``BEFORE_IMAGE_FIELD`` (default ``before-image``): the DMS task's BeforeImageSettings.FieldName;
    - ``SOURCE_SCHEMA`` (default ``public``): the PostgreSQL schema of the subscriptions table;
    - ``DEDUP_TTL_DAYS`` (default 30): how long dedup markers are kept.
    """

    state_table: str
    lake_bucket: str
    errors_bucket: str
    errors_prefix: str = CDC_ERROR_PREFIX
    before_image_field: str = DEFAULT_BEFORE_IMAGE_FIELD
    source_schema: str = SOURCE_SCHEMA_NAME
    dedup_ttl_days: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        missing = [name for name in ("STATE_TABLE", "LAKE_BUCKET") if not env.get(name)]
        if missing:
            raise SettingsError(f"missing environment variables: {', '.join(missing)}")
        ttl_text = env.get("DEDUP_TTL_DAYS", "30")
        if not ttl_text.isdigit() or int(ttl_text) < 1:
            raise SettingsError(f"DEDUP_TTL_DAYS must be a positive integer, got {ttl_text!r}")
        prefix = env.get("ERRORS_PREFIX") or CDC_ERROR_PREFIX
        return cls(
            state_table=env["STATE_TABLE"],
            lake_bucket=env["LAKE_BUCKET"],
            errors_bucket=env.get("ERRORS_BUCKET") or env["LAKE_BUCKET"],
            errors_prefix=prefix if prefix.endswith("/") else f"{prefix}/",
            before_image_field=env.get("BEFORE_IMAGE_FIELD") or DEFAULT_BEFORE_IMAGE_FIELD,
            source_schema=env.get("SOURCE_SCHEMA") or SOURCE_SCHEMA_NAME,
            dedup_ttl_days=int(ttl_text),
        )
