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

    # Video (added by the video stack)
    @property
    def video_metadata_firehose(self) -> str:
        return f"{self._p}-video-metadata-to-lake"

    @property
    def video_watermark_table(self) -> str:
        """DynamoDB table of the video ingest: one item per camera (watermark, lease, step in flight)."""
        return f"{self._p}-video-watermarks"

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

    # Observability (added by the observability stack): the physical names below are the contract
    # between the stack that creates a resource and the alarms that watch it by name.

    @property
    def search_domain(self) -> str:
        """OpenSearch domain name (3-28 characters: fits every 16-character prefix with ``-prod``)."""
        return f"{self._p}-search"

    @property
    def clickstream_search_firehose(self) -> str:
        return f"{self._p}-clickstream-to-search"

    @property
    def dashboards_reader_role(self) -> str:
        """IAM role operators assume to read the clickstream dashboards (mapped read-only in OpenSearch)."""
        return f"{self._p}-dashboards-reader"

    @property
    def alarm_topic(self) -> str:
        return f"{self._p}-alarms"

    @property
    def platform_dashboard(self) -> str:
        return f"{self._p}-platform"

    def function(self, name: str) -> str:
        """Physical name of the function built from ``lambdas/<name>``, e.g. ``mlp-dev-cdc-processor``."""
        return f"{self._p}-{name.replace('_', '-')}"

    def dead_letter_queue(self, consumer: str) -> str:
        """On-failure queue of the stream consumer ``lambdas/<consumer>``."""
        return f"{self._p}-{consumer.replace('_', '-')}-dlq"

    @property
    def glue_job_prefix(self) -> str:
        """Every platform Glue job's name starts with this (the failure rule matches on it)."""
        return f"{self._p}-"

    def glue_job(self, name: str) -> str:
        return f"{self.glue_job_prefix}{name.replace('_', '-')}"

    @property
    def orchestration_state_machine(self) -> str:
        return f"{self._p}-orchestration"

    @property
    def training_pipeline(self) -> str:
        """SageMaker pipeline name (SageMaker lower-cases it in ARNs; the prefix is lower-case already)."""
        return f"{self._p}-training"

    @property
    def inference_endpoint(self) -> str:
        return f"{self._p}-inference"

    @property
    def inference_variant(self) -> str:
        return "AllTraffic"

    # Feature engineering (added by the feature stack).

    @property
    def online_features_state_table(self) -> str:
        """DynamoDB table of the online features consumer (recent events per user)."""
        return f"{self._p}-online-features-state"

    @property
    def online_features_rejects_queue(self) -> str:
        """SQS queue holding the clickstream records the online features consumer could not use."""
        return f"{self._p}-online-features-rejects"

    @property
    def orchestration_failure_topic(self) -> str:
        """SNS topic the orchestration state machine notifies when a run fails."""
        return f"{self._p}-orchestration-failures"

    # Serving (added by the serving stack).

    @property
    def model_package_group(self) -> str:
        """SageMaker Model Registry group of the churn model: training registers, approval deploys."""
        return f"{self._p}-churn"

    @property
    def serving_manifest_parameter(self) -> str:
        """SSM parameter (JSON) naming the model the endpoint serves; written by the deployer."""
        return f"/{self._p}/serving/deployed-model"

    @property
    def endpoint_rollback_alarms(self) -> tuple[str, ...]:
        """CloudWatch alarms that roll a blue/green endpoint deployment back (errors, latency)."""
        return (f"{self._p}-inference-rollback-errors", f"{self._p}-inference-rollback-latency")

    @property
    def batch_scoring_state_machine(self) -> str:
        return f"{self._p}-batch-scoring"

    @property
    def inference_api(self) -> str:
        return f"{self._p}-inference-api"

    @property
    def data_quality_monitoring_schedule(self) -> str:
        return f"{self._p}-inference-data-quality"


BUCKET_PURPOSES = frozenset({"raw", "curated", "artifacts", "access-logs"})


# Key prefixes inside the buckets, shared by Firehose, Glue tables, the jobs and the local runtime.
CLICKSTREAM_RAW_PREFIX = "clickstream/"
CLICKSTREAM_ERROR_PREFIX = "errors/clickstream/"
CLICKSTREAM_BACKUP_PREFIX = "source-backup/clickstream/"
ATHENA_RESULTS_PREFIX = "athena-results/"

CLICKSTREAM_RAW_TABLE = "clickstream_raw"
CLICKSTREAM_REJECTS_PREFIX = "errors/clickstream/rejected/"

# The video-metadata stream in the raw lake (added by the video stack); the segments themselves
# live under platform_core.schemas.video's prefixes.
VIDEO_METADATA_RAW_PREFIX = "video-metadata/"
VIDEO_METADATA_ERROR_PREFIX = "errors/video-metadata/"
VIDEO_METADATA_BACKUP_PREFIX = "source-backup/video-metadata/"
VIDEO_METADATA_RAW_TABLE = "video_metadata_raw"

# Feature engineering (added by the feature stack): the SageMaker Feature Store offline store
# (Iceberg tables, one per feature group) lives under this prefix of the curated bucket.
FEATURE_STORE_OFFLINE_PREFIX = "curated/feature-store/"


# ---------------------------------------------------------------------------------------------
# Observability (added by the observability stack). The physical names below are the contract
# between the stack that creates a resource and the alarms that watch it by name.
# ---------------------------------------------------------------------------------------------

# Custom model-quality metric: published by the monitoring/evaluation code, alarmed on by the
# observability stack. Dimension: EndpointName.
MODEL_QUALITY_NAMESPACE = "MLPlatform/ModelQuality"
MODEL_QUALITY_METRIC = "pr_auc"

# OpenSearch: Firehose rotates one index a day, clickstream-YYYY-MM-DD.
SEARCH_INDEX_PREFIX = "clickstream"
SEARCH_INDEX_PATTERN = "clickstream-*"
SEARCH_ERROR_PREFIX = "errors/opensearch/"
SEARCH_REJECTS_PREFIX = "errors/opensearch/rejected/"


# ---------------------------------------------------------------------------------------------
# Serving (added by the serving stack): see platform_core/schemas/serving.py for the datasets.
# ---------------------------------------------------------------------------------------------

# Raw bucket: what the endpoint (or, for serverless endpoints, the inference API) captures,
# as <prefix><endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl.
DATA_CAPTURE_PREFIX = "serving/data-capture/"
# Artifacts bucket: the feature transform and metadata of each deployed model version, copied out
# of model.tar.gz by the deployer so that the inference API never opens a model archive.
SERVING_MODELS_PREFIX = "serving/models/"
# Artifacts bucket: Model Monitor's data-quality baseline and reports.
MONITORING_PREFIX = "serving/monitoring/"
# Curated bucket: the active users' features exported for batch scoring (one folder per run).
BATCH_INPUT_PREFIX = "serving/batch-input/"
