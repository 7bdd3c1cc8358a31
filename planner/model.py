"""Capacity arithmetic: what a clickstream workload needs from Kinesis, Firehose, Lambda, S3, Glue, Athena.

Pure functions of a :class:`Workload` and stated :class:`Assumptions`; no prices here (those are
data, see :mod:`planner.prices`) and no I/O. Service limits are the ones AWS documents:

- a Kinesis shard takes 1 MiB/s or 1,000 records/s of writes, and serves 2 MiB/s of reads shared
  by all consumers, or 2 MiB/s per consumer with enhanced fan-out (EFO); shared consumers also
  share 5 GetRecords calls per second per shard, and a Lambda event source mapping polls each
  shard once a second, so at most five shared Lambda consumers fit on a stream;
- provisioned mode bills PUT payload units of 25 KB per record; on-demand mode bills each
  record rounded up to 1 KB (1,024 bytes);
- Firehose bills each record it ingests rounded up to 5 KB (5,120 bytes).

A month is 730 hours, as AWS prices monthly; GB in prices is 2^30 bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from platform_core.config import ConsumerConfig, FirehoseConfig, GlueConfig, load_config
from platform_core.kpl import aggregated_record_bytes, plan_aggregation
from producer.capacity import SHARD_MAX_BYTES_PER_SECOND, SHARD_MAX_RECORDS_PER_SECOND

MONTH_HOURS = 730
SECONDS_PER_MONTH = MONTH_HOURS * 3600
DAYS_PER_MONTH = MONTH_HOURS / 24
KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4

SHARD_READ_BYTES_PER_SECOND = 2 * MIB
SHARD_GET_RECORDS_PER_SECOND = 5
MAX_SHARED_LAMBDA_CONSUMERS = SHARD_GET_RECORDS_PER_SECOND  # one poll per shard per second each
PUT_PAYLOAD_UNIT_BYTES = 25 * KIB
ON_DEMAND_ROUNDING_BYTES = KIB
FIREHOSE_ROUNDING_BYTES = 5 * KIB
MAX_KINESIS_RECORD_BYTES = MIB
RETENTION_INCLUDED_HOURS = 24
EXTENDED_RETENTION_MAX_HOURS = 7 * 24
ATHENA_MIN_BYTES_PER_QUERY = 10 * 1000**2  # Athena bills at least 10 MB per query
DEFAULT_PARTITION_KEY_BYTES = 36  # a UUID session id
HEADROOM_WARNING = 0.8  # share of a shard's write limit above which the plan warns about bursts


def round_up(value: float, unit: int) -> int:
    """``value`` rounded up to a whole number of ``unit``s, in the same unit as ``value``."""
    return math.ceil(value / unit) * unit if value > 0 else 0


def put_payload_units(record_bytes: float) -> int:
    """PUT payload units one record costs in provisioned mode (25 KB chunks, at least one)."""
    return max(1, math.ceil(record_bytes / PUT_PAYLOAD_UNIT_BYTES))


def on_demand_billed_bytes(record_bytes: float) -> int:
    """What on-demand mode bills for one record: its size rounded up to the next 1 KB."""
    return max(ON_DEMAND_ROUNDING_BYTES, round_up(record_bytes, ON_DEMAND_ROUNDING_BYTES))


def firehose_billed_bytes(record_bytes: float) -> int:
    """What Firehose bills for ingesting one record: its size rounded up to the next 5 KB."""
    return max(FIREHOSE_ROUNDING_BYTES, round_up(record_bytes, FIREHOSE_ROUNDING_BYTES))


@dataclass(frozen=True)
class Workload:
    """What the user asks for: the event rate and size, and how the data is kept and read."""

    events_per_second: float
    event_bytes: int
    retention_hours: int = 24
    consumers: int = 1
    history_days: int = 365
    aggregation_factor: int = 1
    partition_key_bytes: int = DEFAULT_PARTITION_KEY_BYTES

    def __post_init__(self) -> None:
        if self.events_per_second <= 0:
            raise ValueError("events per second must be positive")
        if not 1 <= self.event_bytes <= MAX_KINESIS_RECORD_BYTES:
            raise ValueError("an event must be 1 byte to 1 MiB (the Kinesis record limit)")
        if not RETENTION_INCLUDED_HOURS <= self.retention_hours <= 8760:
            raise ValueError("Kinesis retention is 24 to 8,760 hours")
        if self.consumers < 0:
            raise ValueError("consumers must not be negative")
        if self.history_days < 0:
            raise ValueError("history days must not be negative")
        if self.aggregation_factor < 1:
            raise ValueError("the aggregation factor is at least 1 (no aggregation)")
        if self.aggregation_factor > 1 and self.kinesis_record_bytes > MAX_KINESIS_RECORD_BYTES:
            raise ValueError(
                f"{self.aggregation_factor} events of {self.event_bytes} bytes do not fit into one "
                "1 MiB Kinesis record; use a smaller aggregation factor"
            )

    @property
    def kinesis_records_per_second(self) -> float:
        return self.events_per_second / self.aggregation_factor

    @property
    def kinesis_record_bytes(self) -> int:
        """Bytes of one Kinesis record: the event, or K events in the KPL format with its overhead."""
        if self.aggregation_factor == 1:
            return self.event_bytes
        return aggregated_record_bytes(
            self.aggregation_factor, self.event_bytes, self.partition_key_bytes, distinct_partition_keys=True
        )

    @property
    def write_bytes_per_second(self) -> float:
        return self.kinesis_records_per_second * self.kinesis_record_bytes

    @property
    def events_per_month(self) -> float:
        return self.events_per_second * SECONDS_PER_MONTH

    @property
    def event_bytes_per_month(self) -> float:
        return self.events_per_month * self.event_bytes


def _default_transform_memory_mb() -> int:
    return load_config("prod").clickstream.transform.memory_mb


@dataclass(frozen=True)
class Assumptions:
    """Everything the estimate depends on that is not in the workload; each is printed with the plan."""

    # Snappy Parquet bytes per byte of raw JSON event. `python -m planner.calibrate` measured 0.11 on
    # the platform's own lake rows of synthetic events; real traffic is more varied, hence 0.15.
    parquet_bytes_per_json_byte: float = 0.15
    parallelization_factor: int = field(default_factory=lambda: ConsumerConfig().parallelization_factor)
    consumer_batch_size: int = field(default_factory=lambda: ConsumerConfig().batch_size)
    # None: shared throughput while the consumers fit, enhanced fan-out beyond two (AWS's advice for
    # low latency) or when the shared 2 MiB/s per shard would need more shards than the writes.
    enhanced_fan_out: bool | None = None
    # The clickstream transform Lambda (Firehose data transformation).
    transform_events_per_cpu_second: float = 25_000.0  # the project's target, see bench/results.md
    transform_memory_mb: int = field(default_factory=_default_transform_memory_mb)
    transform_buffer_mb: float = field(default_factory=lambda: FirehoseConfig().transform_buffer_size_mb)
    # Stream consumers (online features, CDC, ...): per-event CPU cost and memory of each.
    consumer_events_per_cpu_second: float = 10_000.0
    consumer_memory_mb: int = 512
    firehose_format_conversion: bool = True  # JSON -> Parquet, as stacks/constructs/lake_delivery.py does
    firehose_dynamic_partitioning: bool = True  # hourly partitions, as the same construct does
    firehose_buffer_mb: int = field(default_factory=lambda: FirehoseConfig().buffer_size_mb)
    firehose_buffer_seconds: int = field(default_factory=lambda: FirehoseConfig().buffer_interval_seconds)
    # Glue: every event is read by this many Spark passes a day (dedup+sessionize, aggregates,
    # features), each processing this many events per DPU-second, in runs of at least one minute.
    # bench_sessionize measured ~20,000 events/s on local[2] (two cores; a G.1X DPU has four vCPU):
    # half of the scaled 40,000 leaves room for S3 reads, shuffles and Spark start-up.
    glue_passes: int = 3
    glue_events_per_dpu_second: float = 20_000.0
    glue_runs_per_day: int = 24
    glue_dpus_per_run: int = field(default_factory=lambda: GlueConfig().number_of_workers)
    # Athena: queries a day, days of history each reads, and the share of columns it reads.
    athena_queries_per_day: int = 100
    athena_days_per_query: int = 1
    athena_column_fraction: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.parquet_bytes_per_json_byte <= 2:
            raise ValueError("the Parquet/JSON size ratio must be in (0, 2]")
        if not 1 <= self.parallelization_factor <= 10:
            raise ValueError("the Lambda parallelization factor is 1..10")
        if not 0 < self.athena_column_fraction <= 1:
            raise ValueError("the Athena column fraction is in (0, 1]")


# ---------------------------------------------------------------------------------------------
# Kinesis
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KinesisCapacity:
    write_shards_by_bytes: int
    write_shards_by_records: int
    read_shards_shared: int
    enhanced_fan_out: bool
    shards: int
    on_demand_write_mib_per_second: float
    notes: tuple[str, ...]

    @property
    def binding_limit(self) -> str:
        limits = {
            "write bytes (1 MiB/s per shard)": self.write_shards_by_bytes,
            "write records (1,000/s per shard)": self.write_shards_by_records,
        }
        if not self.enhanced_fan_out:
            limits["shared reads (2 MiB/s per shard)"] = self.read_shards_shared
        return max(limits, key=lambda k: limits[k])


def use_enhanced_fan_out(workload: Workload, assumptions: Assumptions) -> bool:
    if assumptions.enhanced_fan_out is not None:
        return assumptions.enhanced_fan_out
    write_shards = shards_for_writes(workload)
    return workload.consumers > 2 or shared_read_shards(workload) > write_shards


def shards_for_writes(workload: Workload) -> int:
    return max(1, _by_bytes(workload), _by_records(workload))


def _by_bytes(workload: Workload) -> int:
    return math.ceil(workload.write_bytes_per_second / SHARD_MAX_BYTES_PER_SECOND)


def _by_records(workload: Workload) -> int:
    return math.ceil(workload.kinesis_records_per_second / SHARD_MAX_RECORDS_PER_SECOND)


def shared_read_shards(workload: Workload) -> int:
    """Shards whose shared 2 MiB/s of reads carry every consumer reading every byte."""
    return math.ceil(workload.consumers * workload.write_bytes_per_second / SHARD_READ_BYTES_PER_SECOND)


def kinesis_capacity(workload: Workload, assumptions: Assumptions) -> KinesisCapacity:
    efo = use_enhanced_fan_out(workload, assumptions)
    read = shared_read_shards(workload)
    shards = max(1, shards_for_writes(workload) if efo else max(shards_for_writes(workload), read))
    notes = []
    if not efo and workload.consumers > MAX_SHARED_LAMBDA_CONSUMERS:
        notes.append(
            f"{workload.consumers} shared consumers exceed the 5 GetRecords/s per shard that "
            "Lambda's once-a-second polling needs: use enhanced fan-out"
        )
    utilisation = max(
        workload.write_bytes_per_second / (shards * SHARD_MAX_BYTES_PER_SECOND),
        workload.kinesis_records_per_second / (shards * SHARD_MAX_RECORDS_PER_SECOND),
    )
    if utilisation > HEADROOM_WARNING:
        notes.append(
            f"the mean load uses {utilisation:.0%} of the provisioned shards' write limit: bursts above "
            "the mean are throttled, so provision for the peak, not the mean"
        )
    if workload.aggregation_factor == 1 and _by_records(workload) > _by_bytes(workload):
        notes.append("record-bound: KPL aggregation would cut the shard count (see --aggregation-factor)")
    return KinesisCapacity(
        write_shards_by_bytes=_by_bytes(workload),
        write_shards_by_records=_by_records(workload),
        read_shards_shared=read,
        enhanced_fan_out=efo,
        shards=max(1, shards),
        on_demand_write_mib_per_second=workload.write_bytes_per_second / MIB,
        notes=tuple(notes),
    )


def kinesis_stored_gib(workload: Workload, *, from_hours: float, to_hours: float) -> float:
    """GiB held in the stream between two ages (steady state), e.g. 24 h to 7 days."""
    hours = max(0.0, min(workload.retention_hours, to_hours) - from_hours)
    return workload.write_bytes_per_second * hours * 3600 / GIB


def on_demand_ingested_gib(workload: Workload) -> float:
    """GiB on-demand bills as ingested in a month (each Kinesis record rounded up to 1 KB)."""
    per_record = on_demand_billed_bytes(workload.kinesis_record_bytes)
    return workload.kinesis_records_per_second * per_record * SECONDS_PER_MONTH / GIB


def monthly_write_gib(workload: Workload) -> float:
    return workload.write_bytes_per_second * SECONDS_PER_MONTH / GIB


def put_payload_units_per_month(workload: Workload) -> float:
    return workload.kinesis_records_per_second * put_payload_units(workload.kinesis_record_bytes) * SECONDS_PER_MONTH


# ---------------------------------------------------------------------------------------------
# Firehose, Lambda, S3, Glue, Athena
# ---------------------------------------------------------------------------------------------


def firehose_ingested_gib(records_per_second: float, record_bytes: float) -> float:
    """GiB Firehose bills as ingested in a month: each record rounded up to 5 KB."""
    return records_per_second * firehose_billed_bytes(record_bytes) * SECONDS_PER_MONTH / GIB


def _events_per_5kb_record(workload: Workload) -> int:
    """The most events one KPL-aggregated record holds without passing 5 KB (1 if one does not fit)."""
    try:
        plan = plan_aggregation(workload.event_bytes, workload.partition_key_bytes, max_bytes=FIREHOSE_ROUNDING_BYTES)
    except ValueError:  # one event with the aggregation framing is already over 5 KB
        return 1
    return max(1, plan.user_records_per_record)


def firehose_volumes(workload: Workload) -> dict[str, float]:
    """Billed and actual GiB a month, as the stream delivers it and with the best packing into 5 KB.

    Firehose reads Kinesis records as they are in the stream: aggregated records are billed as one
    record each (the pages we could read do not say otherwise; see docs/performance-and-cost.md).
    """
    packed_factor = _events_per_5kb_record(workload)
    return {
        "actual_gib": monthly_write_gib(workload),
        "billed_gib": firehose_ingested_gib(workload.kinesis_records_per_second, workload.kinesis_record_bytes),
        "billed_gib_unaggregated": firehose_ingested_gib(workload.events_per_second, workload.event_bytes),
        "packed_factor": float(packed_factor),
        "billed_gib_packed": firehose_ingested_gib(workload.events_per_second / packed_factor, FIREHOSE_ROUNDING_BYTES)
        if packed_factor > 1
        else firehose_ingested_gib(workload.events_per_second, workload.event_bytes),
    }


def firehose_objects_per_month(workload: Workload, assumptions: Assumptions) -> float:
    """S3 objects Firehose writes: one per buffer flush (size or time, whichever comes first).

    With hourly dynamic partitions nearly every record of a flush belongs to the current hour, so
    a flush writes about one object.
    """
    json_bytes_per_second = workload.events_per_second * workload.event_bytes
    flushes_per_second = max(
        1 / assumptions.firehose_buffer_seconds,
        json_bytes_per_second / (assumptions.firehose_buffer_mb * MIB),
    )
    return flushes_per_second * SECONDS_PER_MONTH


@dataclass(frozen=True)
class LambdaUse:
    name: str
    concurrency: int
    invocations_per_month: float
    gb_seconds_per_month: float


LAMBDA_MB_PER_VCPU = 1769  # Lambda allocates one full vCPU at 1,769 MB


def transform_lambda(workload: Workload, assumptions: Assumptions) -> LambdaUse:
    """The Firehose transform: one invocation per transform buffer; single-threaded Python.

    Below 1,769 MB a function gets a fraction of a vCPU and takes longer for the same CPU work;
    above it the extra vCPUs sit idle for single-threaded code, so wall time stays the CPU time.
    """
    cpu_share = min(1.0, assumptions.transform_memory_mb / LAMBDA_MB_PER_VCPU)
    wall_seconds = workload.events_per_month / assumptions.transform_events_per_cpu_second / cpu_share
    busy_functions = workload.events_per_second / assumptions.transform_events_per_cpu_second / cpu_share
    return LambdaUse(
        name="clickstream transform (Firehose)",
        concurrency=max(1, math.ceil(busy_functions)),
        invocations_per_month=workload.event_bytes_per_month / (assumptions.transform_buffer_mb * MIB),
        gb_seconds_per_month=wall_seconds * assumptions.transform_memory_mb / 1024,
    )


def consumer_lambdas(workload: Workload, assumptions: Assumptions, shards: int) -> LambdaUse:
    """All stream-consumer functions together: shards x parallelization factor each."""
    per_consumer_concurrency = shards * assumptions.parallelization_factor
    invocations = workload.consumers * workload.events_per_month / assumptions.consumer_batch_size
    cpu_seconds = workload.consumers * workload.events_per_month / assumptions.consumer_events_per_cpu_second
    return LambdaUse(
        name=f"stream consumers ({workload.consumers})",
        concurrency=workload.consumers * per_consumer_concurrency,
        invocations_per_month=invocations,
        gb_seconds_per_month=cpu_seconds * assumptions.consumer_memory_mb / 1024,
    )


def lake_daily_gib(workload: Workload, assumptions: Assumptions) -> float:
    return workload.events_per_second * 86_400 * workload.event_bytes * assumptions.parquet_bytes_per_json_byte / GIB


def lake_stored_gib(workload: Workload, assumptions: Assumptions) -> float:
    """Raw Parquet held once the lake has ``history_days`` of data (steady state)."""
    return lake_daily_gib(workload, assumptions) * workload.history_days


def glue_dpu_hours(workload: Workload, assumptions: Assumptions) -> float:
    compute = assumptions.glue_passes * workload.events_per_month / assumptions.glue_events_per_dpu_second / 3600
    minimum = assumptions.glue_runs_per_day * DAYS_PER_MONTH * assumptions.glue_dpus_per_run / 60
    return max(compute, minimum)


def athena_tib_scanned(workload: Workload, assumptions: Assumptions) -> float:
    per_query_bytes = (
        lake_daily_gib(workload, assumptions)
        * GIB
        * min(assumptions.athena_days_per_query, max(workload.history_days, 1))
        * assumptions.athena_column_fraction
    )
    per_query_bytes = max(per_query_bytes, ATHENA_MIN_BYTES_PER_QUERY)
    return assumptions.athena_queries_per_day * DAYS_PER_MONTH * per_query_bytes / TIB
