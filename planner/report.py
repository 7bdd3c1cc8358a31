"""A plan as text for a person, or as a JSON-ready dict for a program."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from planner.costs import CostLine, Plan
from planner.model import MIB, lake_daily_gib, lake_stored_gib


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _table(lines: tuple[CostLine, ...] | list[CostLine], width: int) -> list[str]:
    return [f"    {line.component:<{width}}  {_usd(line.usd_per_month):>12}   {line.detail}" for line in lines]


def render_text(plan: Plan) -> str:
    w, a, c = plan.workload, plan.assumptions, plan.capacity
    fh = plan.firehose_volumes
    width = max(len(line.component) for line in (*plan.kinesis_provisioned, *plan.kinesis_on_demand, *plan.shared))
    out = [
        f"Capacity and cost plan — {plan.prices.region}, prices read {plan.prices.read_on} ({plan.prices.currency})",
        "",
        "Workload",
        f"  {w.events_per_second:,.0f} events/s of {w.event_bytes:,} bytes = {w.events_per_second * w.event_bytes / MIB:,.2f} MiB/s; "
        f"retention {w.retention_hours} h; {w.consumers} consumer(s); {w.history_days} days of history",
        f"  aggregation factor {w.aggregation_factor}: {w.kinesis_records_per_second:,.0f} Kinesis records/s of "
        f"{w.kinesis_record_bytes:,} bytes",
        "",
        "Kinesis Data Streams",
        f"  provisioned: {c.shards} shard(s)  (writes need {c.write_shards_by_bytes} by bytes, "
        f"{c.write_shards_by_records} by records; shared reads need {c.read_shards_shared}; bound by {c.binding_limit})",
        "  reads: "
        + (
            f"enhanced fan-out, {w.consumers} consumer(s) x 2 MiB/s per shard each"
            if c.enhanced_fan_out
            else f"shared 2 MiB/s per shard among {w.consumers} consumer(s)"
        ),
        f"  on-demand equivalent: {c.on_demand_write_mib_per_second:,.2f} MiB/s of writes, the capacity of "
        f"{c.shards} shard(s); no shard count to manage (an on-demand stream starts at 4 MiB/s and scales)",
        *(f"  note: {note}" for note in c.notes),
        "",
        "Lambda concurrency",
        *(f"  {use.name}: {use.concurrency}" for use in plan.lambdas),
        f"  (stream consumers: {c.shards} shard(s) x parallelization factor {a.parallelization_factor} each)",
        "",
        "Firehose",
        f"  ingested: {fh['billed_gib']:,.0f} GiB/month billed for {fh['actual_gib']:,.0f} GiB sent "
        f"({fh['billed_gib'] / max(fh['actual_gib'], 1e-9):.1f}x: every record is billed as a multiple of 5 KB)",
        f"  unaggregated: {fh['billed_gib_unaggregated']:,.0f} GiB; packing {fh['packed_factor']:.0f} events per record "
        f"(KPL aggregation) would bill {fh['billed_gib_packed']:,.0f} GiB",
        "",
        "S3, Glue, Athena",
        f"  raw lake: {lake_daily_gib(w, a):,.1f} GiB/day of Parquet ({a.parquet_bytes_per_json_byte:.2f} of the JSON size), "
        f"{lake_stored_gib(w, a):,.0f} GiB for {w.history_days} days",
        "",
        "Monthly cost",
        "  with provisioned Kinesis:",
        *_table(plan.kinesis_provisioned, width),
        "  with on-demand Kinesis:",
        *_table(plan.kinesis_on_demand, width),
        "  every other component:",
        *_table(plan.shared, width),
        "",
        f"  TOTAL with provisioned Kinesis: {_usd(plan.total_provisioned)} / month",
        f"  TOTAL with on-demand Kinesis:   {_usd(plan.total_on_demand)} / month",
        "",
        "Assumptions (override with flags, see --help)",
        *(f"  {key} = {value}" for key, value in asdict(a).items()),
    ]
    doubtful = plan.doubtful_prices()
    if doubtful:
        out += ["", "Prices not confirmed for this region (see planner/prices/*.json):"]
        out += [f"  {p.key}: {p.confidence} — {p.read_via}" for p in doubtful]
    return "\n".join(out) + "\n"


def _lines(lines: tuple[CostLine, ...]) -> list[dict[str, Any]]:
    return [asdict(line) for line in lines]


def to_dict(plan: Plan) -> dict[str, Any]:
    c = plan.capacity
    return {
        "region": plan.prices.region,
        "prices_read_on": plan.prices.read_on,
        "currency": plan.prices.currency,
        "workload": asdict(plan.workload),
        "assumptions": asdict(plan.assumptions),
        "kinesis": {
            **asdict(c),
            "binding_limit": c.binding_limit,
            "kinesis_records_per_second": plan.workload.kinesis_records_per_second,
            "kinesis_record_bytes": plan.workload.kinesis_record_bytes,
        },
        "lambda": [asdict(use) for use in plan.lambdas],
        "firehose": plan.firehose_volumes,
        "lake": {
            "parquet_gib_per_day": lake_daily_gib(plan.workload, plan.assumptions),
            "parquet_gib_stored": lake_stored_gib(plan.workload, plan.assumptions),
        },
        "cost": {
            "kinesis_provisioned": _lines(plan.kinesis_provisioned),
            "kinesis_on_demand": _lines(plan.kinesis_on_demand),
            "shared": _lines(plan.shared),
            "total_with_provisioned": plan.total_provisioned,
            "total_with_on_demand": plan.total_on_demand,
        },
        "unconfirmed_prices": [
            {"key": p.key, "confidence": p.confidence, "read_via": p.read_via} for p in plan.doubtful_prices()
        ],
    }
