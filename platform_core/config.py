"""Typed, per-environment configuration of the whole platform.

One frozen dataclass tree per environment (``dev``, ``prod``), chosen in ``app.py`` from the CDK
context ``env``. Stacks, constructs, Lambda packaging, the local runtime and the tests read the
very same objects; nothing here imports the CDK, and nothing reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal

StreamMode = Literal["ON_DEMAND", "PROVISIONED"]
IpProtection = Literal["truncate", "hash", "none"]


@dataclass(frozen=True)
class StreamConfig:
    """A Kinesis data stream."""

    mode: StreamMode = "ON_DEMAND"
    shard_count: int = 2  # only for PROVISIONED
    retention_hours: int = 24 * 7

    def __post_init__(self) -> None:
        if self.mode not in ("ON_DEMAND", "PROVISIONED"):
            raise ValueError(f"stream mode must be ON_DEMAND or PROVISIONED, got {self.mode!r}")
        if self.shard_count < 1:
            raise ValueError("shard_count must be at least 1")
        if not 24 <= self.retention_hours <= 8760:
            raise ValueError("retention_hours must be between 24 and 8760 (Kinesis limits)")


@dataclass(frozen=True)
class ConsumerConfig:
    """Kinesis -> Lambda event source mapping settings shared by every stream consumer."""

    batch_size: int = 500
    max_batching_window_seconds: int = 5
    parallelization_factor: int = 2
    retry_attempts: int = 5
    max_record_age_seconds: int = 6 * 3600
    iterator_age_alarm_seconds: int = 300

    def __post_init__(self) -> None:
        if not 1 <= self.parallelization_factor <= 10:
            raise ValueError("parallelization_factor must be 1..10")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch_size must be 1..10000")
        if not 0 <= self.retry_attempts <= 10_000:
            raise ValueError("retry_attempts must be finite (0..10000)")
        if not 60 <= self.max_record_age_seconds <= 604_800:
            raise ValueError("max_record_age_seconds must be 60..604800")


@dataclass(frozen=True)
class FunctionConfig:
    memory_mb: int = 512
    timeout_seconds: int = 60
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class FirehoseConfig:
    """Delivery from the clickstream stream to the raw lake."""

    buffer_interval_seconds: int = 300
    buffer_size_mb: int = 128  # >= 64 is required with Parquet conversion
    transform_buffer_size_mb: float = 1  # the Lambda gets at most this much per invocation
    transform_buffer_interval_seconds: int = 60

    def __post_init__(self) -> None:
        if self.buffer_size_mb < 64:
            raise ValueError("Firehose needs a buffer of at least 64 MiB with Parquet conversion")
        if not 0 <= self.buffer_interval_seconds <= 900:
            raise ValueError("buffer_interval_seconds must be 0..900")


@dataclass(frozen=True)
class CollectorConfig:
    """The public collector API (API Gateway -> Kinesis PutRecords)."""

    rate_limit_rps: int = 1000
    burst_limit: int = 2000
    daily_quota: int = 50_000_000
    cors_allow_origins: tuple[str, ...] = ("*",)
    max_batch_records: int = 500


@dataclass(frozen=True)
class ClickstreamConfig:
    stream: StreamConfig = field(default_factory=StreamConfig)
    firehose: FirehoseConfig = field(default_factory=FirehoseConfig)
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    transform: FunctionConfig = field(
        default_factory=lambda: FunctionConfig(memory_mb=1024, timeout_seconds=120)
    )
    ip_protection: IpProtection = "truncate"
    iot_rule_enabled: bool = False
    iot_topic: str = "clickstream/events"


@dataclass(frozen=True)
class LakeConfig:
    raw_infrequent_access_after_days: int = 30
    raw_glacier_after_days: int = 180
    noncurrent_versions_expire_after_days: int = 90
    incomplete_multipart_abort_after_days: int = 7
    access_logs_expire_after_days: int = 365
    athena_bytes_scanned_cutoff: int = 10 * 1024**3  # 10 GiB per query

    def __post_init__(self) -> None:
        if self.raw_glacier_after_days <= self.raw_infrequent_access_after_days:
            raise ValueError("raw data must move to Glacier after it moved to infrequent access")
        if self.raw_infrequent_access_after_days < 30:
            raise ValueError("S3 allows STANDARD_IA transitions only after 30 days")
        if self.athena_bytes_scanned_cutoff < 10 * 1024**2:
            raise ValueError("Athena's minimum bytes-scanned cutoff is 10 MiB")


@dataclass(frozen=True)
class CdcConfig:
    stream: StreamConfig = field(default_factory=StreamConfig)
    consumer: ConsumerConfig = field(default_factory=lambda: ConsumerConfig(batch_size=100))
    processor: FunctionConfig = field(default_factory=FunctionConfig)
    idempotency_ttl_days: int = 30
    churn_window_days: int = 30
    db_min_acu: float = 0.5
    db_max_acu: float = 4
    db_reader: bool = False
    dms_multi_az: bool = False
    dms_max_capacity_units: int = 4


@dataclass(frozen=True)
class GlueConfig:
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    max_retries: int = 1
    session_gap_minutes: int = 30


@dataclass(frozen=True)
class TrainingConfig:
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    min_pr_auc: float = 0.3
    schedule_expression: str = "cron(0 3 * * ? *)"


@dataclass(frozen=True)
class ServingConfig:
    serverless: bool = True
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    instance_type: str = "ml.m5.large"
    min_instances: int = 1
    max_instances: int = 4
    invocations_per_instance_target: int = 200
    inference_timeout_ms: int = 1500


@dataclass(frozen=True)
class ObservabilityConfig:
    opensearch_enabled: bool = True
    opensearch_instance_type: str = "t3.small.search"
    opensearch_data_nodes: int = 1
    opensearch_multi_az: bool = False
    opensearch_dedicated_masters: bool = False
    opensearch_volume_gb: int = 10
    opensearch_retry_seconds: int = 300
    lambda_error_threshold: int = 1
    firehose_freshness_seconds: int = 900
    endpoint_5xx_threshold: int = 5
    endpoint_latency_ms: int = 500


@dataclass(frozen=True)
class PlatformConfig:
    """Everything that differs between environments, with the defaults of ``dev``."""

    env_name: str
    prefix: str = "mlp"
    # Stateful resources are retained unless this is an explicitly opted-in dev teardown.
    destroy_data_on_teardown: bool = False
    termination_protection: bool = False
    lake: LakeConfig = field(default_factory=LakeConfig)
    clickstream: ClickstreamConfig = field(default_factory=ClickstreamConfig)
    consumer: ConsumerConfig = field(default_factory=ConsumerConfig)
    cdc: CdcConfig = field(default_factory=CdcConfig)
    glue: GlueConfig = field(default_factory=GlueConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    log_retention_days: int = 30

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{1,15}", self.prefix):
            raise ValueError("prefix must be 2-16 lowercase letters, digits or dashes")
        if self.env_name == "prod" and self.destroy_data_on_teardown:
            raise ValueError("prod always retains its data; destroy_data_on_teardown is dev-only")

    @property
    def resource_prefix(self) -> str:
        """Prefix of every physical name, e.g. ``mlp-dev``."""
        return f"{self.prefix}-{self.env_name}"

    @property
    def is_production(self) -> bool:
        return self.env_name == "prod"


def _dev() -> PlatformConfig:
    return PlatformConfig(env_name="dev")


def _prod() -> PlatformConfig:
    return PlatformConfig(
        env_name="prod",
        termination_protection=True,
        log_retention_days=365,
        clickstream=ClickstreamConfig(
            stream=StreamConfig(mode="ON_DEMAND", retention_hours=24 * 7),
            firehose=FirehoseConfig(buffer_interval_seconds=300, buffer_size_mb=128),
            collector=CollectorConfig(rate_limit_rps=10_000, burst_limit=20_000, daily_quota=2_000_000_000),
            transform=FunctionConfig(memory_mb=1769, timeout_seconds=120),
        ),
        consumer=ConsumerConfig(parallelization_factor=4),
        cdc=CdcConfig(
            db_reader=True, dms_multi_az=True, db_min_acu=1, db_max_acu=16, dms_max_capacity_units=16
        ),
        glue=GlueConfig(worker_type="G.1X", number_of_workers=10),
        training=TrainingConfig(training_instance_count=2),
        serving=ServingConfig(serverless=False, min_instances=2, max_instances=10),
        observability=ObservabilityConfig(
            opensearch_instance_type="r6g.large.search",
            opensearch_data_nodes=3,
            opensearch_multi_az=True,
            opensearch_dedicated_masters=True,
            opensearch_volume_gb=100,
        ),
    )


ENVIRONMENTS = {"dev": _dev, "prod": _prod}


def load_config(env_name: str, *, destroy_data_on_teardown: bool = False) -> PlatformConfig:
    """The configuration of one environment.

    ``destroy_data_on_teardown`` is the explicit opt-in (CDK context ``destroyDataOnTeardown``)
    that lets a ``dev`` stack delete its buckets and streams on ``cdk destroy``.
    """
    try:
        config = ENVIRONMENTS[env_name]()
    except KeyError:
        known = ", ".join(sorted(ENVIRONMENTS))
        raise ValueError(f"unknown environment {env_name!r}; expected one of: {known}") from None
    if destroy_data_on_teardown:
        config = dataclasses.replace(config, destroy_data_on_teardown=True)
    return config
