"""Physical names and S3 prefixes shared by the stacks, the handlers and the local runtime."""

from __future__ import annotations

from dataclasses import dataclass

from platform_core.config import PlatformConfig


@dataclass(frozen=True)
class Names:
    """Every name derives from the configuration's resource prefix (e.g. ``mlp-dev``)."""

    config: PlatformConfig

    @property
    def _p(self) -> str:
        return self.config.resource_prefix

    # Streams
    @property
    def clickstream_stream(self) -> str:
        return f"{self._p}-clickstream"

    @property
    def cdc_stream(self) -> str:
        return f"{self._p}-cdc"

    @property
    def video_metadata_stream(self) -> str:
        return f"{self._p}-video-metadata"

    @property
    def clickstream_firehose(self) -> str:
        return f"{self._p}-clickstream-to-lake"

    # Catalog
    @property
    def glue_database(self) -> str:
        return f"{self._p}_lake".replace("-", "_")

    @property
    def athena_workgroup(self) -> str:
        return f"{self._p}-analytics"

    @property
    def lake_key_alias(self) -> str:
        return f"alias/{self._p}/lake"

    @property
    def lake_key_arn_parameter(self) -> str:
        """SSM parameter through which stateless stacks find the lake key (no stack exports)."""
        return f"/{self._p}/lake/key-arn"

    def bucket(self, purpose: str, *, account: str, region: str) -> str:
        """Globally unique bucket name, e.g. ``mlp-dev-raw-123456789012-eu-west-1``."""
        if purpose not in BUCKET_PURPOSES:
            raise ValueError(f"unknown bucket purpose {purpose!r}; expected one of {sorted(BUCKET_PURPOSES)}")
        return f"{self._p}-{purpose}-{account}-{region}"


BUCKET_PURPOSES = frozenset({"raw", "curated", "artifacts", "access-logs"})


# Key prefixes inside the buckets, shared by Firehose, Glue tables, the jobs and the local runtime.
CLICKSTREAM_RAW_PREFIX = "clickstream/"
CLICKSTREAM_ERROR_PREFIX = "errors/clickstream/"
CLICKSTREAM_BACKUP_PREFIX = "source-backup/clickstream/"
ATHENA_RESULTS_PREFIX = "athena-results/"

CLICKSTREAM_RAW_TABLE = "clickstream_raw"
CLICKSTREAM_REJECTS_PREFIX = "errors/clickstream/rejected/"
