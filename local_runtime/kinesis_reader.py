"""Reading a whole Kinesis stream from moto, shard by shard, in sequence order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StreamRecord:
    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    approximate_arrival_ms: int


def read_stream(kinesis: Any, stream_name: str, *, limit: int = 10_000) -> Iterator[StreamRecord]:
    """Every record of every shard from TRIM_HORIZON (moto keeps all of them)."""
    shards = kinesis.list_shards(StreamName=stream_name)["Shards"]
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=limit)
            for record in page["Records"]:
                yield StreamRecord(
                    shard_id=shard["ShardId"],
                    sequence_number=record["SequenceNumber"],
                    partition_key=record["PartitionKey"],
                    data=record["Data"],
                    approximate_arrival_ms=int(record["ApproximateArrivalTimestamp"].timestamp() * 1000),
                )
            if not page["Records"] or (page.get("MillisBehindLatest", 0) == 0 and len(page["Records"]) < limit):
                break
            iterator = page.get("NextShardIterator")
