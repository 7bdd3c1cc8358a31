"""The producer against a real (moto) Kinesis stream, with Kinesis's partial failures injected."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from platform_core.kpl import is_aggregated
from platform_core.schemas.clickstream import MAX_RECORD_BYTES
from producer import ClickstreamProducer, kinesis_client
from producer.kinesis_producer import RejectionCode
from tests.producer.conftest import STREAM, RecordingSleep
from tests.producer.fakes import (
    PTEE,
    FaultInjectingKinesis,
    clickstream_event,
    read_stream,
    sent_event_ids,
)

# Small aggregates so that a few hundred events make many aggregated records (and many entries
# for the fault injection to fail).
AGGREGATE_BYTES = 16 * 1024


def make_producer(client: Any, sleep: RecordingSleep, *, aggregate: bool, **options: Any) -> ClickstreamProducer:
    return ClickstreamProducer(
        STREAM,
        client=client,
        aggregate=aggregate,
        max_aggregate_bytes=AGGREGATE_BYTES,
        sleep=sleep,
        **options,
    )


@pytest.mark.parametrize("aggregate", [False, True], ids=["plain", "aggregated"])
def test_every_event_lands_exactly_once_despite_failing_entries(
    kinesis: Any, sleep: RecordingSleep, aggregate: bool
) -> None:
    # Given a stream that fails 20% of the entries of every call, and events without event ids
    events = [clickstream_event(i, sessions=40) for i in range(1_200)]
    for i in range(0, len(events), 10):  # some callers bring their own ids
        events[i]["event_id"] = f"caller-id-{i}"
    faulty = FaultInjectingKinesis(kinesis, failure_rate=0.2, seed=11)
    producer = make_producer(faulty, sleep, aggregate=aggregate, max_attempts=12)

    # When the events are put
    results = producer.put_events(events)

    # Then every event is acknowledged, once, in input order, after retries that really happened
    assert len(results) == len(events)
    assert all(r.acknowledged and r.error_code is None for r in results)
    assert faulty.failed_entries, "the fault injection must have failed some entries"
    assert max(r.attempts for r in results) > 1
    assert len(sleep.delays) == max(r.attempts for r in results) - 1
    ids = [r.event_id for r in results]
    assert len(set(ids)) == len(events)
    assert [ids[i] for i in range(0, len(events), 10)] == [f"caller-id-{i}" for i in range(0, len(events), 10)]
    assert "event_id" not in events[1], "the caller's event must not be modified"

    # And the stream holds each event exactly once: nothing lost, nothing twice
    stored = read_stream(kinesis, STREAM)
    stored_ids = Counter(s.event["event_id"] for s in stored)
    assert set(stored_ids) == set(ids)
    assert max(stored_ids.values()) == 1

    # And each stored event is the input event at the same position, keyed by its session
    by_id = {s.event["event_id"]: s for s in stored}
    for position, (event, result) in enumerate(zip(events, results, strict=True)):
        landed = by_id[result.event_id]
        assert landed.event["properties"]["seq"] == str(position)
        assert {**event, "event_id": result.event_id} == landed.event
        assert landed.user_record.partition_key == event["session_id"]
        assert (landed.shard_id, landed.sequence_number) == (result.shard_id, result.sequence_number)

    # And retries carried the id assigned before the first attempt: every id ever sent, failed
    # attempts included, is one of the final ids, and each failed event landed later under it
    assert set(sent_event_ids(faulty.calls)) == set(ids)
    failed_ids = set(sent_event_ids([faulty.failed_entries]))
    assert failed_ids <= set(ids)
    assert all(r.attempts >= 2 for r in results if r.event_id in failed_ids)
    assert all(r.attempts == 1 for r in results if r.event_id not in failed_ids)


def test_aggregated_records_are_kpl_records_carrying_many_events(kinesis: Any, sleep: RecordingSleep) -> None:
    # Given an aggregating producer
    events = [clickstream_event(i, sessions=25) for i in range(600)]
    producer = make_producer(kinesis, sleep, aggregate=True)

    # When the events are put
    results = producer.put_events(events)

    # Then far fewer Kinesis records than events landed, each a KPL record within the size limit
    stored = read_stream(kinesis, STREAM)
    kinesis_records = {(s.shard_id, s.sequence_number) for s in stored}
    assert len(stored) == len(events)
    assert len(kinesis_records) < len(events) / 10
    assert all(s.user_record.aggregated for s in stored)
    # And the Kinesis record's key is its first user record's key; user records keep their own
    for s in stored:
        assert s.user_record.partition_key == s.event["session_id"]
        if s.user_record.sub_sequence_number == 0:
            assert s.kinesis_partition_key == s.user_record.partition_key
    # And results name the position of each event inside its aggregated record
    by_id = {s.event["event_id"]: s for s in stored}
    for result in results:
        assert result.sub_sequence_number == by_id[result.event_id].user_record.sub_sequence_number


def test_aggregated_records_stay_within_the_record_limit(kinesis: Any, sleep: RecordingSleep) -> None:
    # Given ~600-byte events, more than fit into one 1 MiB aggregated record
    events = [clickstream_event(i, sessions=3_000, padding=200) for i in range(3_000)]
    producer = ClickstreamProducer(STREAM, client=kinesis, aggregate=True, sleep=sleep)

    # When they are put
    results = producer.put_events(events)

    # Then they use a few records, each within 1 MiB with its partition key, and all land
    assert all(r.acknowledged for r in results)
    sequence_numbers = {(r.shard_id, r.sequence_number) for r in results}
    assert 2 <= len(sequence_numbers) <= 3
    raw = [
        record
        for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]
        for record in kinesis.get_records(
            ShardIterator=kinesis.get_shard_iterator(
                StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        )["Records"]
    ]
    assert all(is_aggregated(r["Data"]) for r in raw)
    assert all(len(r["Data"]) + len(r["PartitionKey"].encode()) <= MAX_RECORD_BYTES for r in raw)
    assert sum(len(r["Data"]) for r in raw) > MAX_RECORD_BYTES
    assert len(read_stream(kinesis, STREAM)) == len(events)


@pytest.mark.parametrize("aggregate", [False, True], ids=["plain", "aggregated"])
def test_bad_events_are_reported_with_reasons_while_good_ones_go_through(
    kinesis: Any, sleep: RecordingSleep, aggregate: bool
) -> None:
    # Given good events interleaved with every kind of bad one
    good = [clickstream_event(i) for i in range(4)]
    no_session = {**clickstream_event(10), "session_id": None}
    del no_session["session_id"]
    oversize = clickstream_event(11, padding=MAX_RECORD_BYTES)
    not_serialisable = {**clickstream_event(12), "properties": {"tags": {"a", "b"}}}
    not_a_number = {**clickstream_event(13), "request": {"latency_ms": float("nan")}}
    events: list[Any] = [
        good[0],
        no_session,
        oversize,
        good[1],
        not_serialisable,
        ["not", "an", "object"],
        not_a_number,
        {**clickstream_event(14), "event_id": 42},
        {**clickstream_event(15), "session_id": "s" * 257},
        good[2],
        {**clickstream_event(16), "session_id": ""},
        good[3],
    ]
    producer = make_producer(kinesis, sleep, aggregate=aggregate)

    # When they are put in one call
    results = producer.put_events(events)

    # Then each bad event has its own reason and was never sent
    codes = [r.error_code for r in results]
    assert codes == [
        None,
        RejectionCode.MISSING_SESSION_ID,
        RejectionCode.RECORD_TOO_LARGE,
        None,
        RejectionCode.NOT_SERIALIZABLE,
        RejectionCode.NOT_AN_OBJECT,
        RejectionCode.NOT_SERIALIZABLE,
        RejectionCode.INVALID_EVENT_ID,
        RejectionCode.INVALID_SESSION_ID,
        None,
        RejectionCode.MISSING_SESSION_ID,
        None,
    ]
    rejected = [r for r in results if r.error_code is not None]
    assert all(not r.acknowledged and r.attempts == 0 and r.error_message for r in rejected)
    assert "session_id" in results[1].error_message  # type: ignore[operator]
    assert str(MAX_RECORD_BYTES) in results[2].error_message  # type: ignore[operator]

    # And exactly the good events landed
    stored = read_stream(kinesis, STREAM)
    assert sorted(s.event["properties"]["seq"] for s in stored) == ["0", "1", "2", "3"]
    assert {s.event["event_id"] for s in stored} == {r.event_id for r in results if r.acknowledged}


def test_record_size_limit_counts_the_partition_key(kinesis: Any, sleep: RecordingSleep) -> None:
    # Given two events whose JSON plus partition key is exactly 1 MiB, and one byte more
    base = {"event_id": "e-0", "event_type": "click", "event_time": 1, "session_id": "session-at-limit"}
    overhead = len(json.dumps({**base, "pad": ""}, separators=(",", ":")).encode()) + len(b"session-at-limit")
    at_limit = {**base, "pad": "x" * (MAX_RECORD_BYTES - overhead)}
    over_limit = {**base, "event_id": "e-1", "pad": "x" * (MAX_RECORD_BYTES - overhead + 1)}
    producer = make_producer(kinesis, sleep, aggregate=False)

    # When both are put
    at, over = producer.put_events([at_limit, over_limit])

    # Then the one at the limit lands and the other is refused with its size
    assert at.acknowledged
    assert (over.acknowledged, over.error_code) == (False, RejectionCode.RECORD_TOO_LARGE)
    assert f"record is {MAX_RECORD_BYTES + 1} bytes" in (over.error_message or "")
    assert [s.event["event_id"] for s in read_stream(kinesis, STREAM)] == ["e-0"]


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"]
)
def test_whole_call_throttling_is_retried(kinesis: Any, sleep: RecordingSleep, code: str) -> None:
    # Given a stream whose first two calls are throttled as a whole
    faulty = FaultInjectingKinesis(kinesis, failure_rate=0.0, whole_call_errors=[code, code])
    producer = make_producer(faulty, sleep, aggregate=False, base_delay_s=0.5, max_delay_s=30.0)
    events = [clickstream_event(i) for i in range(20)]

    # When the events are put
    results = producer.put_events(events)

    # Then they land on the third attempt, after two jittered, growing backoff windows
    assert all(r.acknowledged and r.attempts == 3 for r in results)
    assert len(faulty.calls) == 3
    assert len(sleep.delays) == 2
    assert 0 <= sleep.delays[0] <= 0.5
    assert 0 <= sleep.delays[1] <= 1.0
    assert len(read_stream(kinesis, STREAM)) == 20


@pytest.mark.parametrize("aggregate", [False, True], ids=["plain", "aggregated"])
def test_giving_up_after_max_attempts_is_reported(kinesis: Any, sleep: RecordingSleep, aggregate: bool) -> None:
    # Given a stream that always fails the records of one session
    doomed_session = "session-0003"
    faulty = FaultInjectingKinesis(
        kinesis, failure_rate=0.0, always_fail=lambda entry: entry["PartitionKey"] == doomed_session
    )
    producer = make_producer(faulty, sleep, aggregate=aggregate, max_attempts=3)
    # (sessions=10: with aggregation, events group by session, so session 3 fills its own record)
    events = [clickstream_event(i, sessions=10, padding=3_000) for i in range(40)]

    # When the events are put
    results = producer.put_events(events)

    # Then the doomed events are reported with the last error after exactly max_attempts
    doomed = [r for e, r in zip(events, results, strict=True) if e["session_id"] == doomed_session]
    others = [r for e, r in zip(events, results, strict=True) if e["session_id"] != doomed_session]
    assert doomed
    assert all((r.acknowledged, r.attempts, r.error_code) == (False, 3, PTEE) for r in doomed)
    assert all(r.sequence_number is None and r.error_message for r in doomed)
    assert all(r.acknowledged and r.attempts == 1 for r in others)
    assert len(sleep.delays) == 2
    # And the stream holds every other event, and none of the doomed ones
    stored_ids = {s.event["event_id"] for s in read_stream(kinesis, STREAM)}
    assert stored_ids == {r.event_id for r in others}


def test_a_call_error_that_retrying_cannot_fix_is_reported_at_once(kinesis: Any, sleep: RecordingSleep) -> None:
    # Given a producer for a stream that does not exist
    producer = ClickstreamProducer("no-such-stream", client=kinesis, sleep=sleep)

    # When events are put
    results = producer.put_events([clickstream_event(i) for i in range(3)])

    # Then each says why, after one attempt and no waiting
    assert [(r.acknowledged, r.error_code, r.attempts) for r in results] == [
        (False, "ResourceNotFoundException", 1)
    ] * 3
    assert sleep.delays == []


def test_the_default_client_is_made_on_first_put_not_before(kinesis: Any, sleep: RecordingSleep) -> None:
    # Given a producer without a client
    kinesis_client.cache_clear()
    producer = ClickstreamProducer(STREAM, region_name="us-east-1", sleep=sleep)
    assert kinesis_client.cache_info().currsize == 0

    # When it puts an event
    [result] = producer.put_events([clickstream_event(1)])

    # Then it made (and cached) a client that reached the stream
    assert result.acknowledged
    assert kinesis_client.cache_info().currsize == 1
    assert [s.event["event_id"] for s in read_stream(kinesis, STREAM)] == [result.event_id]
    kinesis_client.cache_clear()
