"""Shard arithmetic: 1,000 records/s and 1 MiB/s per shard, whichever binds first."""

from __future__ import annotations

import pytest

from producer.capacity import is_record_bound, min_aggregation_factor, shards_needed


def test_a_million_600_byte_events_per_second_unaggregated_is_record_bound() -> None:
    # 1,000,000 records/s / 1,000 = 1,000 shards; bytes alone would need 573
    assert shards_needed(1_000_000, 600) == 1_000
    assert is_record_bound(600)


@pytest.mark.parametrize("factor", [2, 10, 1_620])
def test_aggregating_two_or_more_makes_it_byte_bound(factor: int) -> None:
    # 600,000,000 B/s / 1,048,576 B/s per shard = 572.2 -> 573 shards
    assert shards_needed(1_000_000, 600, aggregation_factor=factor) == 573
    assert not is_record_bound(600, factor)


def test_the_smallest_factor_that_makes_600_byte_events_byte_bound_is_2() -> None:
    assert min_aggregation_factor(600) == 2
    assert shards_needed(1_000_000, 600, min_aggregation_factor(600)) == shards_needed(1_000_000, 600, 1_000)
    assert shards_needed(1_000_000, 600, min_aggregation_factor(600) - 1) > 573


@pytest.mark.parametrize(
    ("event_bytes", "factor"), [(1, 1_049), (100, 11), (524, 3), (525, 2), (1_048, 2), (1_049, 1), (5_000, 1)]
)
def test_min_factor_is_the_boundary_of_being_record_bound(event_bytes: int, factor: int) -> None:
    assert min_aggregation_factor(event_bytes) == factor
    assert not is_record_bound(event_bytes, factor)
    if factor > 1:
        assert is_record_bound(event_bytes, factor - 1)


def test_a_quiet_stream_still_needs_one_shard() -> None:
    assert shards_needed(0, 600) == 1
    assert shards_needed(10, 600) == 1


def test_exactly_full_shards_are_not_rounded_up() -> None:
    assert shards_needed(3_000, 10) == 3
    assert shards_needed(1_024, 1024 * 1024 // 1_024 * 2) == 2  # 2 MiB/s exactly


@pytest.mark.parametrize(("eps", "size", "factor"), [(-1, 600, 1), (1, 0, 1), (1, 600, 0)])
def test_nonsense_inputs_are_refused(eps: int, size: int, factor: int) -> None:
    with pytest.raises(ValueError):
        shards_needed(eps, size, factor)
