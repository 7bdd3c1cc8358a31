"""Capacity arithmetic of the planner: shards, reads, Lambda concurrency, Firehose volumes, retention."""

from __future__ import annotations

import dataclasses

import pytest

from planner.costs import make_plan
from planner.model import (
    FIREHOSE_ROUNDING_BYTES,
    GIB,
    KIB,
    MIB,
    SECONDS_PER_MONTH,
    Assumptions,
    Workload,
    athena_tib_scanned,
    firehose_volumes,
    glue_dpu_hours,
    kinesis_capacity,
    lake_stored_gib,
    on_demand_ingested_gib,
    transform_lambda,
)
from planner.prices import load_prices

SHARED = Assumptions(enhanced_fan_out=False)


def test_small_events_are_record_bound_and_aggregation_makes_them_byte_bound() -> None:
    # Given 1,000,000 events/s of 600 bytes
    plain = Workload(events_per_second=1_000_000, event_bytes=600)
    aggregated = dataclasses.replace(plain, aggregation_factor=2)
    # When the planner sizes both
    before = kinesis_capacity(plain, SHARED)
    after = kinesis_capacity(aggregated, SHARED)
    # Then the plain stream needs 1,000 shards for its records, the aggregated one is bound by bytes
    assert before.shards == 1000
    assert before.binding_limit.startswith("write records")
    assert any("aggregation" in note for note in before.notes)
    assert after.binding_limit.startswith("write bytes")
    # 573 shards carry the bare 600 MB/s; the KPL framing and a 36-byte key per event add some
    assert 573 <= after.shards < 700


def test_shared_consumers_add_read_shards() -> None:
    # Given 1 MB/s written and three consumers on shared throughput
    workload = Workload(events_per_second=1000, event_bytes=1000, consumers=3)
    # When sized with shared reads
    capacity = kinesis_capacity(workload, SHARED)
    # Then the 3 MB/s of reads need two shards although the writes fit in one
    assert capacity.write_shards_by_bytes == 1
    assert capacity.read_shards_shared == 2
    assert capacity.shards == 2
    assert capacity.binding_limit.startswith("shared reads")


def test_more_than_two_consumers_choose_enhanced_fan_out_by_default() -> None:
    workload = Workload(events_per_second=1000, event_bytes=1000, consumers=3)
    capacity = kinesis_capacity(workload, Assumptions())
    assert capacity.enhanced_fan_out
    assert capacity.shards == 1  # each EFO consumer has its own 2 MiB/s per shard


def test_six_shared_consumers_are_flagged() -> None:
    workload = Workload(events_per_second=100, event_bytes=500, consumers=6)
    notes = kinesis_capacity(workload, SHARED).notes
    assert any("GetRecords" in note for note in notes)


def test_lambda_concurrency_is_shards_times_parallelization_factor() -> None:
    # Given a stream of 4 shards (4,000 records/s of 1,000 bytes) and two consumers, factor 3
    workload = Workload(events_per_second=4000, event_bytes=1000, consumers=2)
    assumptions = Assumptions(enhanced_fan_out=True, parallelization_factor=3)
    # When planned
    plan = make_plan(workload, assumptions, load_prices("us-east-1"))
    # Then each consumer runs 4 x 3 = 12 batches at once
    assert plan.capacity.shards == 4
    consumers = [use for use in plan.lambdas if use.name.startswith("stream consumers")]
    assert consumers[0].concurrency == 2 * 4 * 3


def test_firehose_bills_small_records_five_kilobytes_each_and_aggregation_saves() -> None:
    # Given 1 KB events
    workload = Workload(events_per_second=1000, event_bytes=1024)
    # When Firehose volumes are computed
    volumes = firehose_volumes(workload)
    # Then it bills five times what is sent
    assert volumes["billed_gib"] == pytest.approx(5 * volumes["actual_gib"])
    # and packing as many events as fit under 5 KB (4, with the KPL framing) bills far less
    assert volumes["packed_factor"] == 4
    assert volumes["billed_gib_packed"] == pytest.approx(1000 / 4 * FIREHOSE_ROUNDING_BYTES * SECONDS_PER_MONTH / GIB)
    assert volumes["billed_gib_packed"] < volumes["billed_gib"] / 3


def test_an_aggregated_stream_is_billed_per_aggregated_record() -> None:
    workload = Workload(events_per_second=1000, event_bytes=1024, aggregation_factor=4)
    volumes = firehose_volumes(workload)
    assert workload.kinesis_record_bytes > 4 * 1024  # the KPL framing and keys
    assert volumes["billed_gib"] < volumes["billed_gib_unaggregated"]


def test_on_demand_bills_records_rounded_to_1_kb() -> None:
    workload = Workload(events_per_second=1000, event_bytes=1025)
    expected = 1000 * 2 * KIB * SECONDS_PER_MONTH / GIB
    assert on_demand_ingested_gib(workload) == pytest.approx(expected)


def test_an_aggregation_factor_beyond_one_mib_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        Workload(events_per_second=10, event_bytes=600_000, aggregation_factor=2)


@pytest.mark.parametrize(
    "bad",
    [
        {"events_per_second": 0},
        {"event_bytes": 0},
        {"event_bytes": 2 * MIB},
        {"retention_hours": 12},
        {"consumers": -1},
        {"history_days": -1},
        {"aggregation_factor": 0},
    ],
)
def test_impossible_workloads_are_refused_with_a_reason(bad: dict[str, float]) -> None:
    args: dict[str, float] = {"events_per_second": 100, "event_bytes": 500, **bad}
    with pytest.raises(ValueError):
        Workload(**args)  # type: ignore[arg-type]


def test_retention_beyond_a_day_and_a_week_is_charged() -> None:
    prices = load_prices("us-east-1")
    day = make_plan(Workload(100, 1000, retention_hours=24), SHARED, prices)
    week = make_plan(Workload(100, 1000, retention_hours=168), SHARED, prices)
    month = make_plan(Workload(100, 1000, retention_hours=720), SHARED, prices)
    names = lambda plan: {line.component for line in plan.kinesis_provisioned}  # noqa: E731
    assert "Kinesis extended retention" not in names(day)
    assert "Kinesis extended retention" in names(week)
    assert "Kinesis long-term retention" not in names(week)
    assert "Kinesis long-term retention" in names(month)
    assert month.total_on_demand > week.total_on_demand > day.total_on_demand


def test_lake_glue_and_athena_grow_with_the_data() -> None:
    small = Workload(events_per_second=100, event_bytes=600, history_days=30)
    large = dataclasses.replace(small, events_per_second=10_000)
    a = Assumptions()
    assert lake_stored_gib(large, a) == pytest.approx(100 * lake_stored_gib(small, a))
    assert glue_dpu_hours(large, a) > glue_dpu_hours(small, a)
    assert athena_tib_scanned(large, a) > athena_tib_scanned(small, a)


def test_glue_never_bills_less_than_its_minimum_runs() -> None:
    tiny = Workload(events_per_second=1, event_bytes=100)
    a = Assumptions()
    minimum = a.glue_runs_per_day * (730 / 24) * a.glue_dpus_per_run / 60
    assert glue_dpu_hours(tiny, a) == pytest.approx(minimum)


def test_transform_lambda_uses_the_benchmark_rate() -> None:
    workload = Workload(events_per_second=50_000, event_bytes=600)
    use = transform_lambda(workload, Assumptions(transform_events_per_cpu_second=25_000))
    assert use.concurrency == 2
    assert use.gb_seconds_per_month == pytest.approx(2 * SECONDS_PER_MONTH * 1769 / 1024)
