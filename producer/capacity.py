"""Shard arithmetic for a Kinesis data stream.

A shard accepts at most 1,000 records/s and 1 MiB/s of writes, whichever comes first. Small
events exhaust the record limit long before the byte limit; aggregating ``k`` events into one
Kinesis record divides the record rate by ``k`` and leaves the byte rate unchanged, so past a
small factor the stream is byte-bound and the shard count stops falling.

Example: 1,000,000 events/s of 600 bytes need 1,000 shards unaggregated (record-bound), but
only 573 with an aggregation factor of 2 or more (byte-bound: 600 MB/s / 1 MiB/s).
"""

from __future__ import annotations

SHARD_MAX_RECORDS_PER_SECOND = 1_000
SHARD_MAX_BYTES_PER_SECOND = 1024 * 1024


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def shards_needed(events_per_second: int, event_bytes: int, aggregation_factor: int = 1) -> int:
    """Shards a stream needs for this write rate (at least 1).

    ``event_bytes`` is what Kinesis counts per event: data plus partition key (plus, when
    aggregating, the aggregation overhead, see :func:`platform_core.kpl.plan_aggregation`).
    ``aggregation_factor`` is the number of events carried per Kinesis record.
    """
    if events_per_second < 0:
        raise ValueError("events_per_second must not be negative")
    if event_bytes < 1:
        raise ValueError("event_bytes must be at least 1")
    if aggregation_factor < 1:
        raise ValueError("aggregation_factor must be at least 1")
    records_per_second = _ceil_div(events_per_second, aggregation_factor)
    by_records = _ceil_div(records_per_second, SHARD_MAX_RECORDS_PER_SECOND)
    by_bytes = _ceil_div(events_per_second * event_bytes, SHARD_MAX_BYTES_PER_SECOND)
    return max(1, by_records, by_bytes)


def is_record_bound(event_bytes: int, aggregation_factor: int = 1) -> bool:
    """True when the 1,000 records/s limit binds before the 1 MiB/s limit."""
    bytes_per_record = event_bytes * aggregation_factor
    return bytes_per_record * SHARD_MAX_RECORDS_PER_SECOND < SHARD_MAX_BYTES_PER_SECOND


def min_aggregation_factor(event_bytes: int) -> int:
    """The smallest number of events per Kinesis record that makes the stream byte-bound.

    Byte-bound means ``factor * event_bytes * 1000 >= 1 MiB``: a shard's 1,000 records/s then
    carry at least its 1 MiB/s.
    """
    if event_bytes < 1:
        raise ValueError("event_bytes must be at least 1")
    return max(1, _ceil_div(SHARD_MAX_BYTES_PER_SECOND, event_bytes * SHARD_MAX_RECORDS_PER_SECOND))
