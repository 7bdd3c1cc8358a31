"""Monthly cost per component: the quantities of :mod:`planner.model` times the prices of a region."""

from __future__ import annotations

from dataclasses import dataclass

from planner.model import (
    EXTENDED_RETENTION_MAX_HOURS,
    MONTH_HOURS,
    RETENTION_INCLUDED_HOURS,
    Assumptions,
    KinesisCapacity,
    LambdaUse,
    Workload,
    athena_tib_scanned,
    consumer_lambdas,
    firehose_objects_per_month,
    firehose_volumes,
    glue_dpu_hours,
    kinesis_capacity,
    kinesis_stored_gib,
    lake_stored_gib,
    monthly_write_gib,
    on_demand_ingested_gib,
    put_payload_units,
    transform_lambda,
)
from planner.prices import Price, PriceSheet, TieredPrice


@dataclass(frozen=True)
class CostLine:
    component: str
    usd_per_month: float
    detail: str
    price_keys: tuple[str, ...]


def provisioned_stream_cost(
    shards: int, records_per_second: float, record_bytes: float, prices: PriceSheet, *, hours: float = MONTH_HOURS
) -> list[CostLine]:
    """Shard-hours and PUT payload units of a provisioned stream with 24-hour retention."""
    units = records_per_second * put_payload_units(record_bytes) * hours * 3600
    return [
        CostLine(
            "Kinesis shard-hours",
            shards * hours * prices["kinesis.provisioned.shard_hour"],
            f"{shards} shards x {hours:.0f} h",
            ("kinesis.provisioned.shard_hour",),
        ),
        CostLine(
            "Kinesis PUT payload units",
            units / 1e6 * prices["kinesis.provisioned.put_payload_units_per_million"],
            f"{units / 1e6:,.1f} M units ({put_payload_units(record_bytes)} per record)",
            ("kinesis.provisioned.put_payload_units_per_million",),
        ),
    ]


def _retention_lines(workload: Workload, prices: PriceSheet, extended: CostLine | None) -> list[CostLine]:
    lines = [extended] if extended else []
    long_term = kinesis_stored_gib(workload, from_hours=EXTENDED_RETENTION_MAX_HOURS, to_hours=float("inf"))
    if long_term > 0:
        lines.append(
            CostLine(
                "Kinesis long-term retention",
                long_term * prices["kinesis.long_term_retention_gb_month"],
                f"{long_term:,.0f} GiB held beyond 7 days",
                ("kinesis.long_term_retention_gb_month",),
            )
        )
    return lines


def kinesis_provisioned(workload: Workload, capacity: KinesisCapacity, prices: PriceSheet) -> list[CostLine]:
    lines = provisioned_stream_cost(
        capacity.shards, workload.kinesis_records_per_second, workload.kinesis_record_bytes, prices
    )
    extended = None
    if workload.retention_hours > RETENTION_INCLUDED_HOURS:
        extended = CostLine(
            "Kinesis extended retention",
            capacity.shards * MONTH_HOURS * prices["kinesis.provisioned.extended_retention_shard_hour"],
            f"{capacity.shards} shards x {MONTH_HOURS} h (retention {workload.retention_hours} h)",
            ("kinesis.provisioned.extended_retention_shard_hour",),
        )
    lines += _retention_lines(workload, prices, extended)
    if capacity.enhanced_fan_out and workload.consumers:
        consumer_shard_hours = workload.consumers * capacity.shards * MONTH_HOURS
        gib = workload.consumers * monthly_write_gib(workload)
        lines.append(
            CostLine(
                "Kinesis enhanced fan-out",
                consumer_shard_hours * prices["kinesis.provisioned.efo_consumer_shard_hour"]
                + gib * prices["kinesis.provisioned.efo_data_gb"],
                f"{consumer_shard_hours:,.0f} consumer-shard-hours + {gib:,.0f} GiB read",
                ("kinesis.provisioned.efo_consumer_shard_hour", "kinesis.provisioned.efo_data_gb"),
            )
        )
    return lines


def kinesis_on_demand(workload: Workload, capacity: KinesisCapacity, prices: PriceSheet) -> list[CostLine]:
    ingested = on_demand_ingested_gib(workload)
    read_gib = workload.consumers * monthly_write_gib(workload)
    read_key = "kinesis.on_demand.efo_data_gb" if capacity.enhanced_fan_out else "kinesis.on_demand.data_out_gb"
    lines = [
        CostLine(
            "Kinesis stream-hours",
            MONTH_HOURS * prices["kinesis.on_demand.stream_hour"],
            f"1 stream x {MONTH_HOURS} h",
            ("kinesis.on_demand.stream_hour",),
        ),
        CostLine(
            "Kinesis data in",
            ingested * prices["kinesis.on_demand.data_in_gb"],
            f"{ingested:,.0f} GiB billed (records rounded up to 1 KB)",
            ("kinesis.on_demand.data_in_gb",),
        ),
    ]
    if read_gib:
        lines.append(
            CostLine(
                "Kinesis data out" + (" (enhanced fan-out)" if capacity.enhanced_fan_out else ""),
                read_gib * prices[read_key],
                f"{workload.consumers} consumer(s) x {monthly_write_gib(workload):,.0f} GiB",
                (read_key,),
            )
        )
    stored = kinesis_stored_gib(workload, from_hours=RETENTION_INCLUDED_HOURS, to_hours=EXTENDED_RETENTION_MAX_HOURS)
    extended = None
    if stored > 0:
        extended = CostLine(
            "Kinesis extended retention",
            stored * prices["kinesis.on_demand.extended_retention_gb_month"],
            f"{stored:,.0f} GiB held from 24 h to {min(workload.retention_hours, 168)} h",
            ("kinesis.on_demand.extended_retention_gb_month",),
        )
    return lines + _retention_lines(workload, prices, extended)


def firehose(workload: Workload, assumptions: Assumptions, prices: PriceSheet) -> list[CostLine]:
    volumes = firehose_volumes(workload)
    billed = volumes["billed_gib"]
    ingestion = prices.tier("firehose.ingestion")
    lines = [
        CostLine(
            "Firehose ingestion",
            ingestion.cost(billed),
            f"{billed:,.0f} GiB billed for {volumes['actual_gib']:,.0f} GiB sent (5 KB rounding per record)",
            ("firehose.ingestion",),
        )
    ]
    if assumptions.firehose_format_conversion:
        lines.append(
            CostLine(
                "Firehose Parquet conversion",
                billed * prices["firehose.format_conversion_gb"],
                f"{billed:,.0f} GiB (5 KB increments)",
                ("firehose.format_conversion_gb",),
            )
        )
    if assumptions.firehose_dynamic_partitioning:
        objects = firehose_objects_per_month(workload, assumptions)
        lines.append(
            CostLine(
                "Firehose dynamic partitioning",
                volumes["actual_gib"] * prices["firehose.dynamic_partitioning_gb"]
                + objects / 1000 * prices["firehose.dynamic_partitioning_per_1000_objects"],
                f"{volumes['actual_gib']:,.0f} GiB + {objects:,.0f} objects",
                ("firehose.dynamic_partitioning_gb", "firehose.dynamic_partitioning_per_1000_objects"),
            )
        )
    return lines


def lambda_line(use: LambdaUse, prices: PriceSheet) -> CostLine:
    return CostLine(
        f"Lambda: {use.name}",
        use.gb_seconds_per_month * prices["lambda.gb_second"]
        + use.invocations_per_month / 1e6 * prices["lambda.requests_per_million"],
        f"{use.gb_seconds_per_month:,.0f} GB-s, {use.invocations_per_month / 1e6:,.2f} M invocations, "
        f"concurrency {use.concurrency}",
        ("lambda.gb_second", "lambda.requests_per_million"),
    )


def storage_and_analytics(workload: Workload, assumptions: Assumptions, prices: PriceSheet) -> list[CostLine]:
    stored = lake_stored_gib(workload, assumptions)
    objects = firehose_objects_per_month(workload, assumptions)
    dpu_hours = glue_dpu_hours(workload, assumptions)
    tib = athena_tib_scanned(workload, assumptions)
    return [
        CostLine(
            "S3 raw lake (Parquet)",
            stored * prices["s3.standard_gb_month"] + objects / 1000 * prices["s3.put_per_1000"],
            f"{stored:,.0f} GiB for {workload.history_days} days of history + {objects:,.0f} PUTs",
            ("s3.standard_gb_month", "s3.put_per_1000"),
        ),
        CostLine(
            "Glue (Spark jobs)",
            dpu_hours * prices["glue.dpu_hour"],
            f"{dpu_hours:,.1f} DPU-hours",
            ("glue.dpu_hour",),
        ),
        CostLine(
            "Athena queries",
            tib * prices["athena.tb_scanned"],
            f"{tib:,.3f} TiB scanned",
            ("athena.tb_scanned",),
        ),
    ]


@dataclass(frozen=True)
class Plan:
    workload: Workload
    assumptions: Assumptions
    prices: PriceSheet
    capacity: KinesisCapacity
    lambdas: tuple[LambdaUse, ...]
    firehose_volumes: dict[str, float]
    kinesis_provisioned: tuple[CostLine, ...]
    kinesis_on_demand: tuple[CostLine, ...]
    shared: tuple[CostLine, ...]

    @property
    def total_provisioned(self) -> float:
        return sum(line.usd_per_month for line in (*self.kinesis_provisioned, *self.shared))

    @property
    def total_on_demand(self) -> float:
        return sum(line.usd_per_month for line in (*self.kinesis_on_demand, *self.shared))

    def doubtful_prices(self) -> list[Price | TieredPrice]:
        keys = dict.fromkeys(
            key
            for line in (*self.kinesis_provisioned, *self.kinesis_on_demand, *self.shared)
            for key in line.price_keys
        )
        return self.prices.doubtful(list(keys))


def make_plan(workload: Workload, assumptions: Assumptions, prices: PriceSheet) -> Plan:
    capacity = kinesis_capacity(workload, assumptions)
    lambdas: tuple[LambdaUse, ...] = (transform_lambda(workload, assumptions),)
    if workload.consumers:
        lambdas += (consumer_lambdas(workload, assumptions, capacity.shards),)
    shared = [
        *firehose(workload, assumptions, prices),
        *(lambda_line(use, prices) for use in lambdas),
        *storage_and_analytics(workload, assumptions, prices),
    ]
    return Plan(
        workload=workload,
        assumptions=assumptions,
        prices=prices,
        capacity=capacity,
        lambdas=lambdas,
        firehose_volumes=firehose_volumes(workload),
        kinesis_provisioned=tuple(kinesis_provisioned(workload, capacity, prices)),
        kinesis_on_demand=tuple(kinesis_on_demand(workload, capacity, prices)),
        shared=tuple(shared),
    )
