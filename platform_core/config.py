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

from platform_core.schemas.video import CameraConfig

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
    transform: FunctionConfig = field(default_factory=lambda: FunctionConfig(memory_mb=1024, timeout_seconds=120))
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
    # --- added by the CDC stack (all optional, with the dev defaults) ---
    dms_min_capacity_units: int = 1
    dms_latency_alarm_seconds: int = 300  # CDCLatencySource/Target above this for 5 minutes alarms
    # DMS finds `dms-vpc-role` and `dms-cloudwatch-logs-role` by these fixed, account-wide names:
    # only one stack per account may create them. Set False where they already exist.
    create_dms_service_roles: bool = True
    db_port: int = 15432  # not the engine default, so that scanners of default ports miss it
    db_backup_retention_days: int = 14
    db_secret_rotation_days: int = 30
    vpc_cidr: str = "10.41.0.0/16"  # private, no NAT: only the database, DMS and endpoints live here
    migrator: FunctionConfig = field(default_factory=lambda: FunctionConfig(memory_mb=256, timeout_seconds=300))

    def __post_init__(self) -> None:
        if not 0.5 <= self.db_min_acu <= self.db_max_acu <= 256:
            raise ValueError("Aurora Serverless v2 needs 0.5 <= db_min_acu <= db_max_acu <= 256")
        for units in (self.dms_min_capacity_units, self.dms_max_capacity_units):
            if units not in DMS_CAPACITY_UNITS:
                raise ValueError(f"DMS Serverless capacity units must be one of {DMS_CAPACITY_UNITS}, got {units}")
        if self.dms_min_capacity_units > self.dms_max_capacity_units:
            raise ValueError("dms_min_capacity_units must not exceed dms_max_capacity_units")
        if not 1 <= self.db_backup_retention_days <= 35:
            raise ValueError("db_backup_retention_days must be 1..35 (Aurora limits)")
        if not 1 <= self.db_secret_rotation_days <= 1000:
            raise ValueError("db_secret_rotation_days must be 1..1000 (Secrets Manager limits)")
        if not 1150 <= self.db_port <= 65535:
            raise ValueError("db_port must be 1150..65535 (Aurora PostgreSQL limits)")


# Capacity units DMS Serverless accepts (1 DCU = 2 GB of memory).
DMS_CAPACITY_UNITS = (1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 384)


@dataclass(frozen=True)
class GlueConfig:
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    max_retries: int = 1
    session_gap_minutes: int = 30


@dataclass(frozen=True)
class FeaturesConfig:
    """Feature engineering (added by the feature stack): the daily orchestration and the online consumer.

    The state machine runs subscription history -> (clickstream features | subscription features)
    -> training set -> training pipeline once per ``schedule_expression``; every step retries
    ``retry_max_attempts`` times, ``retry_interval_seconds`` apart and growing by ``retry_backoff_rate``.
    The Glue jobs themselves do not retry (the state machine owns the retry policy), so a failure is
    never retried twice over.
    """

    schedule_expression: str = "cron(0 1 * * ? *)"  # 01:00 UTC daily; the scheduled instant is --as_of
    schedule_enabled: bool = True
    retry_interval_seconds: int = 120
    retry_backoff_rate: float = 2.0
    retry_max_attempts: int = 2
    orchestration_timeout_minutes: int = 12 * 60
    # The Lambda that keeps the online store fresh from the clickstream stream.
    online_function: FunctionConfig = field(default_factory=lambda: FunctionConfig(memory_mb=1024, timeout_seconds=120))
    # Read the clickstream through a dedicated enhanced fan-out consumer (its own 2 MB/s per shard,
    # pushed over HTTP/2) instead of sharing each shard's 2 MB/s and 5 reads/s with the other
    # readers (Firehose to the lake, Firehose to OpenSearch). Costs a consumer-shard-hour plus
    # data retrieval; dev's traffic fits the shared limits, so only prod turns it on.
    online_enhanced_fan_out: bool = False
    # The Lambda that reads the approved model's PR-AUC before training starts (a few API calls
    # and one small S3 object).
    baseline_function: FunctionConfig = field(default_factory=lambda: FunctionConfig(memory_mb=256, timeout_seconds=60))
    # How long before a renewal date its churn prediction is made: the training set's features are
    # as of then. Long enough to act (a retention offer); it also keeps out the cancellations of
    # the days before renewal, which would otherwise show in the features (label leakage).
    label_lead_days: int = 7
    # A feature record older than this at the instant it is used counts as missing: in the training
    # set (a snapshot older than this before a cutoff) and at serving (an online record older than
    # this when a request comes). Without it a user who went quiet would keep the features of the
    # last week they were active, which reads as the opposite of what is happening. Above the
    # snapshot interval (daily in AWS, weekly in the local runtime), so a fresh snapshot is found.
    max_feature_age_days: int = 8

    def __post_init__(self) -> None:
        if self.max_feature_age_days < 1:
            raise ValueError("max_feature_age_days must be at least 1 (the daily snapshot interval)")
        if not 0 <= self.label_lead_days < 28:
            raise ValueError("label_lead_days must be 0..27, so that a cutoff stays after the previous renewal")
        if not self.schedule_expression.startswith(("cron(", "rate(")):
            raise ValueError("schedule_expression must be an EventBridge cron(...) or rate(...) expression")
        if not 1 <= self.retry_interval_seconds <= 99_999_999:
            raise ValueError("retry_interval_seconds must be 1..99999999 (Step Functions limits)")
        if not 1.0 <= self.retry_backoff_rate <= 100:
            raise ValueError("retry_backoff_rate must be 1.0..100 (Step Functions limits)")
        if not 0 <= self.retry_max_attempts <= 10:
            raise ValueError("retry_max_attempts must be 0..10")
        if self.orchestration_timeout_minutes < 1:
            raise ValueError("orchestration_timeout_minutes must be positive")


@dataclass(frozen=True)
class TrainingConfig:
    """The SageMaker training pipeline (docs/training.md): preprocess -> train -> evaluate -> gate -> register.

    Instance types and counts, the PR-AUC floor and the XGBoost hyperparameters are the defaults of
    pipeline parameters: a run may override them without a deployment.
    """

    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    min_pr_auc: float = 0.3
    # Unused: the feature orchestration (FeaturesConfig.schedule_expression) starts the training
    # pipeline right after it rebuilt the training set, so the pipeline has no schedule of its own.
    schedule_expression: str = "cron(0 3 * * ? *)"
    # --- added by the training stack (all optional, with the dev defaults) ---
    # The SageMaker XGBoost framework image (sagemaker-xgboost:<this>) runs every step.
    xgboost_framework_version: str = "3.2-0"
    processing_volume_gb: int = 30
    training_volume_gb: int = 30
    processing_max_runtime_minutes: int = 60
    training_max_runtime_minutes: int = 4 * 60
    # The time split of preprocess.py: the latest cutoffs are held out for validation, then test.
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    # Instance types a registered model declares it can be served on (real time and batch).
    inference_instance_types: tuple[str, ...] = ("ml.m5.large", "ml.m5.xlarge")
    transform_instance_types: tuple[str, ...] = ("ml.m5.large", "ml.m5.xlarge")

    def __post_init__(self) -> None:
        for instance_type in (
            self.processing_instance_type,
            self.training_instance_type,
            *self.inference_instance_types,
            *self.transform_instance_types,
        ):
            if not instance_type.startswith("ml."):
                raise ValueError(f"SageMaker instance types start with 'ml.', got {instance_type!r}")
        if self.training_instance_count < 1:
            raise ValueError("training_instance_count must be at least 1")
        if not 0 <= self.min_pr_auc <= 1:
            raise ValueError("min_pr_auc is a PR-AUC, in [0, 1]")
        if not 0 < self.validation_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ValueError("validation_fraction and test_fraction must be in (0, 1)")
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must leave rows for training")
        if not 1 <= self.processing_volume_gb <= 16_384 or not 1 <= self.training_volume_gb <= 16_384:
            raise ValueError("volume sizes must be 1..16384 GB (SageMaker limits)")
        if not 1 <= self.processing_max_runtime_minutes <= 7 * 24 * 60:
            raise ValueError("processing_max_runtime_minutes must be 1..10080 (SageMaker: 7 days)")
        if not 1 <= self.training_max_runtime_minutes <= 28 * 24 * 60:
            raise ValueError("training_max_runtime_minutes must be 1..40320 (SageMaker: 28 days)")


@dataclass(frozen=True)
class ServingConfig:
    """Real-time endpoint, inference API, batch scoring and the feedback loop (docs/serving.md)."""

    serverless: bool = True
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    instance_type: str = "ml.m5.large"
    min_instances: int = 1
    max_instances: int = 4
    # SageMakerVariantInvocationsPerInstance is per instance and per *minute*. One container process
    # scores ~490 requests/s on one core (bench/bench_inference.py, a single-process server, so an
    # ml.m5.large counts as one core); half of that, for headroom while new instances start, is
    # ~250 requests/s = 15,000 per minute. See docs/serving.md, "Scaling".
    invocations_per_instance_target: int = 15_000
    inference_timeout_ms: int = 1500
    # --- added by the serving stack (all optional, with the dev defaults) ---
    # Blue/green deployment of instance endpoints: a canary share of the new fleet serves first for
    # canary_wait_seconds, then all traffic shifts; the old fleet stays final_bake_seconds for an
    # instant rollback. Any rollback alarm in ALARM during these windows rolls the deployment back.
    canary_percent: int = 10
    canary_wait_seconds: int = 600
    final_bake_seconds: int = 600
    deployment_timeout_seconds: int = 3600
    rollback_5xx_per_minute: int = 1  # server errors in one minute that roll a deployment back
    rollback_latency_ms: int = 1000  # p99 model latency over one minute that rolls a deployment back
    scale_in_cooldown_seconds: int = 600
    scale_out_cooldown_seconds: int = 60
    data_capture_percent: int = 100
    # The deployer reconciles the endpoint with the latest approved model on every registry event,
    # on every endpoint state change, and on this schedule (a deployment that found the endpoint busy
    # continues here; autoscaling is attached once the endpoint is in service).
    reconcile_rate_minutes: int = 15
    # One deployer at a time: a registry event and a scheduled run never race to update the endpoint.
    deployer: FunctionConfig = field(
        default_factory=lambda: FunctionConfig(memory_mb=512, timeout_seconds=120, reserved_concurrency=1)
    )
    # The API's budget: two feature reads, the endpoint call (timeout above, one retry) and a margin.
    api_function: FunctionConfig = field(default_factory=lambda: FunctionConfig(memory_mb=512, timeout_seconds=10))
    api_rate_limit_rps: int = 200
    api_burst_limit: int = 400
    manifest_cache_seconds: int = 60  # how long an API container trusts the deployed model it read
    # Batch scoring of every active user (after the daily features, which run at 01:00 UTC).
    batch_schedule_expression: str = "cron(0 4 * * ? *)"
    batch_schedule_enabled: bool = True
    batch_instance_type: str = "ml.m5.large"
    batch_instance_count: int = 1
    batch_timeout_minutes: int = 180
    # Feedback: captured predictions joined with the churn labels that arrive later through CDC.
    feedback_schedule_expression: str = "cron(0 6 * * ? *)"
    feedback_max_lead_days: int = 35  # a prediction older than this before a renewal is not about it
    feedback_rejoin_days: int = 7  # labels known in the last N days are (re)joined on every run
    quality_window_days: int = 30  # model quality is measured on labels known in the last N days
    quality_min_labelled_rows: int = 200  # fewer labelled predictions than this decide nothing
    # SageMaker Model Monitor data quality (instance endpoints only, as serverless ones capture
    # nothing). On: the training pipeline writes the baseline and the schedule is set up once the
    # endpoint is in service. AWS closed Model Monitor to new customers: such accounts turn it off
    # and rely on the feedback loop's quality metric. See docs/serving.md.
    model_monitor_enabled: bool = False
    monitor_schedule_expression: str = "cron(0 * ? * * *)"
    monitor_instance_type: str = "ml.m5.large"
    # --- added for the data-quality baseline and the monitoring schedule's set-up ---
    # The monitoring schedule can only exist once the endpoint does (the deployer creates it), so a
    # state machine creates or updates it when the endpoint enters service and on this period (a
    # changed setting, or a schedule deleted by hand, is back within it). See data_quality_monitor.py.
    monitor_setup_rate_hours: int = 24
    monitor_volume_gb: int = 20

    def __post_init__(self) -> None:
        if not 1 <= self.min_instances <= self.max_instances:
            raise ValueError("serving needs 1 <= min_instances <= max_instances")
        if self.serverless_memory_mb not in (1024, 2048, 3072, 4096, 5120, 6144):
            raise ValueError("serverless_memory_mb must be 1024..6144 in steps of 1024 (SageMaker limits)")
        if not 1 <= self.serverless_max_concurrency <= 200:
            raise ValueError("serverless_max_concurrency must be 1..200 (SageMaker limits)")
        if not 1 <= self.canary_percent <= 50:
            raise ValueError("canary_percent must be 1..50: SageMaker caps a canary at half the new fleet")
        if not 0 <= self.canary_wait_seconds <= 3600 or not 0 <= self.final_bake_seconds <= 3600:
            raise ValueError("canary_wait_seconds and final_bake_seconds must be 0..3600 (SageMaker limits)")
        if not 600 <= self.deployment_timeout_seconds <= 14_400:
            raise ValueError("deployment_timeout_seconds must be 600..14400 (SageMaker limits)")
        if self.deployment_timeout_seconds <= self.canary_wait_seconds + self.final_bake_seconds:
            raise ValueError("deployment_timeout_seconds must leave time beyond the canary wait and the final bake")
        if self.reconcile_rate_minutes < 1:
            raise ValueError("reconcile_rate_minutes must be at least 1 (EventBridge's finest rate)")
        if not 0 < self.data_capture_percent <= 100:
            raise ValueError("data_capture_percent must be 1..100")
        if self.invocations_per_instance_target < 1 or self.inference_timeout_ms < 100:
            raise ValueError("invocations_per_instance_target must be positive and inference_timeout_ms >= 100")
        if self.model_monitor_enabled and self.serverless:
            raise ValueError("Model Monitor needs data capture, which serverless endpoints do not support")
        if self.quality_min_labelled_rows < 1 or self.feedback_max_lead_days < 1:
            raise ValueError("quality_min_labelled_rows and feedback_max_lead_days must be positive")
        if self.monitor_setup_rate_hours < 1 or not 1 <= self.monitor_volume_gb <= 16_384:
            raise ValueError("monitor_setup_rate_hours must be positive and monitor_volume_gb 1..16384")


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
    # --- added by the observability stack (all optional, with the dev defaults) ---
    opensearch_engine_version: str = "2.19"  # OpenSearch_<this>; upgrades happen in place
    opensearch_master_instance_type: str = "m6g.large.search"
    opensearch_master_nodes: int = 3
    opensearch_retention_days: int = 14  # daily clickstream-* indices older than this are deleted
    opensearch_buffer_interval_seconds: int = 60
    opensearch_buffer_size_mb: int = 5
    opensearch_jvm_pressure_max_percent: int = 85
    opensearch_free_storage_min_fraction: float = 0.25
    vpc_cidr: str = "10.40.0.0/16"
    # OpenSearch needs its service-linked role once per account before a VPC domain can be created;
    # creating it fails where it already exists, so only an account's first domain sets this.
    opensearch_create_service_linked_role: bool = False
    # Networks (VPN, peered corporate ranges) from which operators reach Dashboards on 443.
    opensearch_client_cidrs: tuple[str, ...] = ()
    stream_iterator_age_seconds: int = 300
    stream_write_throttle_threshold: int = 0  # throttled records per 5 minutes, two periods in a row
    lambda_throttle_threshold: int = 0
    dlq_depth_threshold: int = 0
    firehose_processing_success_min: float = 0.99  # share of successful transform invocations
    model_pr_auc_min: float = 0.3
    # --- added for serving (the deployer, the inference API, Model Monitor) ---
    # A function whose slowest invocation in five minutes took this share of its timeout is about
    # to be killed mid-work (the serving functions bound every call they make, so they never should).
    lambda_duration_timeout_fraction: float = 0.8
    # The inference API (API Gateway): server errors per five minutes, and p99 latency over two
    # five-minute periods. The API's own budget is two feature reads plus one bounded endpoint call
    # (ServingConfig.inference_timeout_ms, one retry): 2 s at p99 means the bounds are being hit.
    inference_api_5xx_threshold: int = 5
    inference_api_latency_p99_ms: int = 2000
    # Model Monitor's per-feature baseline drift (a distance in [0, 1]; 0.1 is the analyzer's own
    # default comparison threshold), sustained for this many hourly monitoring runs.
    feature_drift_max: float = 0.1
    feature_drift_periods: int = 3

    def __post_init__(self) -> None:
        # Fail at synth, not half-way through a 30-minute domain deployment.
        if self.opensearch_multi_az:
            if not self.opensearch_dedicated_masters:
                raise ValueError("OpenSearch Multi-AZ with standby needs dedicated master nodes")
            if self.opensearch_data_nodes % 3 != 0:
                raise ValueError("OpenSearch Multi-AZ with standby needs a multiple of 3 data nodes")
            if self.opensearch_instance_type.startswith(("t2.", "t3.")):
                raise ValueError("OpenSearch Multi-AZ with standby does not support burstable (t2/t3) instances")
        if self.opensearch_dedicated_masters and self.opensearch_master_nodes not in (3, 5):
            raise ValueError("OpenSearch needs 3 or 5 dedicated master nodes")
        if self.opensearch_data_nodes < 1:
            raise ValueError("opensearch_data_nodes must be at least 1")
        if not 0 <= self.opensearch_retry_seconds <= 7200:
            raise ValueError("opensearch_retry_seconds must be 0..7200 (Firehose limit)")
        if not 0 <= self.opensearch_buffer_interval_seconds <= 900:
            raise ValueError("opensearch_buffer_interval_seconds must be 0..900")
        if not 1 <= self.opensearch_buffer_size_mb <= 100:
            raise ValueError("opensearch_buffer_size_mb must be 1..100")
        if self.opensearch_retention_days < 1:
            raise ValueError("opensearch_retention_days must be at least 1")
        if not 0 < self.firehose_processing_success_min <= 1:
            raise ValueError("firehose_processing_success_min is a share in (0, 1]")
        if not 0 < self.opensearch_free_storage_min_fraction < 1:
            raise ValueError("opensearch_free_storage_min_fraction is a share in (0, 1)")
        if not 0 < self.lambda_duration_timeout_fraction < 1:
            raise ValueError("lambda_duration_timeout_fraction is a share of the timeout, in (0, 1)")
        if not 0 < self.feature_drift_max <= 1 or self.feature_drift_periods < 1:
            raise ValueError("feature_drift_max is a distance in (0, 1] and feature_drift_periods positive")


@dataclass(frozen=True)
class VideoConfig:
    """Video ingestion from cameras (docs/video.md): a scheduled Lambda run per camera.

    The function's sizing comes from the measurements in docs/video.md (bench/bench_video.py):
    decoding is CPU-bound and the working set is only 80-110 MB, so memory is bought for CPU and
    1769 MB is one full vCPU. One camera-minute of video costs that vCPU 3-20 s; a 90 s timeout
    covers the slowest measured minute 4.5 times over, plus a segment fetched with all its retries
    (3 x 5 s), and whatever is still left (a backlog after an outage) continues in the next run.
    """

    cameras: tuple[CameraConfig, ...] = ()
    ingest: FunctionConfig = field(default_factory=lambda: FunctionConfig(memory_mb=1769, timeout_seconds=90))
    # Every camera gets its own EventBridge schedule rate(N minutes) with input {"camera_id": ...}.
    schedule_rate_minutes: int = 1
    # 0: one pass over the live window per run. For windows shorter than the schedule period, poll
    # every this many seconds until the run's deadline (and give it a timeout >= the period).
    poll_interval_seconds: float = 0.0
    # Asynchronous invocation: a failed run is never worth retrying (the next scheduled run resumes
    # from the watermark; a retry would find the lease held), and an event older than one period is
    # superseded by the next one. Failures go to the on-failure queue for a person.
    async_retry_attempts: int = 0
    max_event_age_seconds: int = 60
    # A camera alarms when it was unreachable on every run for this long, when any run failed in the
    # error period, and when no run reported on it for three error periods.
    unreachable_alarm_minutes: int = 5
    error_alarm_minutes: int = 5
    # Firehose video-metadata -> raw lake (Parquet); the records are small, so the time bound rules.
    metadata_delivery: FirehoseConfig = field(default_factory=FirehoseConfig)

    def __post_init__(self) -> None:
        ids = [camera.camera_id for camera in self.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError("video cameras must have distinct camera_id values")
        streams = [camera.kvs_stream_name for camera in self.cameras if camera.source_kind == "kvs"]
        if len(set(streams)) != len(streams):
            raise ValueError("two video cameras read the same Kinesis Video stream")
        if not 128 <= self.ingest.memory_mb <= 10_240 or not 1 <= self.ingest.timeout_seconds <= 900:
            raise ValueError("video ingest needs 128..10240 MB and a timeout of 1..900 s (Lambda limits)")
        if self.schedule_rate_minutes < 1:
            raise ValueError("schedule_rate_minutes must be at least 1 (EventBridge's finest rate)")
        if self.poll_interval_seconds < 0:
            raise ValueError("poll_interval_seconds must be 0 (one pass) or positive")
        if self.poll_interval_seconds > 0 and self.ingest.timeout_seconds < self.schedule_rate_minutes * 60:
            raise ValueError(
                "polling runs until the deadline: the ingest timeout must cover the schedule period, "
                "or the live window goes unwatched between runs"
            )
        if not 0 <= self.async_retry_attempts <= 2:
            raise ValueError("async_retry_attempts must be 0..2 (Lambda limit)")
        if not 60 <= self.max_event_age_seconds <= 21_600:
            raise ValueError("max_event_age_seconds must be 60..21600 (Lambda limits)")
        for minutes in (self.unreachable_alarm_minutes, self.error_alarm_minutes):
            if minutes < self.schedule_rate_minutes:
                raise ValueError("an alarm period shorter than the schedule period sees no run at all")


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
    # --- added by the video stack ---
    video: VideoConfig = field(default_factory=VideoConfig)
    # --- added by the feature stack ---
    features: FeaturesConfig = field(default_factory=FeaturesConfig)

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
        cdc=CdcConfig(db_reader=True, dms_multi_az=True, db_min_acu=1, db_max_acu=16, dms_max_capacity_units=16),
        glue=GlueConfig(worker_type="G.1X", number_of_workers=10),
        training=TrainingConfig(training_instance_count=2),
        # Model Monitor: the training pipeline writes the data-quality baseline, and the hourly
        # schedule is set up once the endpoint is in service (docs/serving.md, "Model Monitor").
        serving=ServingConfig(serverless=False, min_instances=2, max_instances=10, model_monitor_enabled=True),
        features=FeaturesConfig(online_enhanced_fan_out=True),
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
