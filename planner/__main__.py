"""Capacity and cost planner for the clickstream pipeline (``make plan ARGS="..."``).

    python -m planner --events-per-second 1000 --event-bytes 1024 --retention-hours 24 \\
        --consumers 1 --history-days 365 [--region us-east-1] [--aggregation-factor K] [--json]

Prints the Kinesis shards (provisioned, with the read side of the consumers; and the on-demand
equivalent), Lambda concurrency, Firehose's billed volume with its 5 KB rounding and what KPL
aggregation saves, the raw lake's size, Glue DPU-hours and Athena TB scanned, and the monthly
cost of each component with the total for provisioned and for on-demand Kinesis. Prices come
from planner/prices/<region>.json; every assumption is printed with the plan.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from planner.costs import make_plan
from planner.model import Assumptions, Workload
from planner.prices import available_regions, load_prices
from planner.report import render_text, to_dict


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m planner",
        description="Capacity and monthly cost of the clickstream pipeline for a given load.",
        epilog=f"Regions with a price file: {', '.join(available_regions())}.",
    )
    parser.add_argument("--events-per-second", type=float, required=True, help="sustained events per second")
    parser.add_argument("--event-bytes", type=int, required=True, help="bytes per event as Kinesis counts it")
    parser.add_argument("--retention-hours", type=int, default=24, help="Kinesis retention (24..8760)")
    parser.add_argument("--consumers", type=int, default=1, help="Lambda consumers reading the stream")
    parser.add_argument("--history-days", type=int, default=365, help="days of raw Parquet kept in S3")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--aggregation-factor", type=int, default=1, help="events per Kinesis record (KPL)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    tuning = parser.add_argument_group("assumptions")
    tuning.add_argument("--parquet-ratio", type=float, help="Parquet bytes per JSON byte")
    tuning.add_argument("--parallelization-factor", type=int, help="Lambda shards-to-batches factor (1..10)")
    reads = tuning.add_mutually_exclusive_group()
    reads.add_argument("--enhanced-fan-out", dest="efo", action="store_true", default=None)
    reads.add_argument("--shared-throughput", dest="efo", action="store_false")
    tuning.add_argument("--transform-events-per-cpu-second", type=float)
    tuning.add_argument("--glue-passes", type=int, help="Spark passes over each day's events")
    tuning.add_argument("--glue-events-per-dpu-second", type=float, help="Spark throughput per Glue DPU")
    tuning.add_argument("--athena-queries-per-day", type=int)
    return parser


def assumptions_from(args: argparse.Namespace) -> Assumptions:
    overrides = {
        "parquet_bytes_per_json_byte": args.parquet_ratio,
        "parallelization_factor": args.parallelization_factor,
        "enhanced_fan_out": args.efo,
        "transform_events_per_cpu_second": args.transform_events_per_cpu_second,
        "glue_passes": args.glue_passes,
        "glue_events_per_dpu_second": args.glue_events_per_dpu_second,
        "athena_queries_per_day": args.athena_queries_per_day,
    }
    base = Assumptions()
    changes = {key: value for key, value in overrides.items() if value is not None}
    if args.efo is None:
        changes.pop("enhanced_fan_out", None)
    return dataclasses.replace(base, **changes)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        workload = Workload(
            events_per_second=args.events_per_second,
            event_bytes=args.event_bytes,
            retention_hours=args.retention_hours,
            consumers=args.consumers,
            history_days=args.history_days,
            aggregation_factor=args.aggregation_factor,
        )
        plan = make_plan(workload, assumptions_from(args), load_prices(args.region))
    except ValueError as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps(to_dict(plan), indent=2))
    else:
        print(render_text(plan), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
