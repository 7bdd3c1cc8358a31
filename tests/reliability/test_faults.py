"""The fault injectors do what the reliability tests rely on them to do."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from local_runtime.firehose import DeliveryReport
from local_runtime.kinesis_reader import StreamRecord
from reliability.delivery import deliver_buffers
from reliability.faults import (
    LOST_ACK,
    THROTTLED,
    CrashAfterReturn,
    DieAfterCall,
    FirehoseInvocationRetries,
    InvocationFailedError,
    LambdaRuntime,
    ProcessDied,
    UnreliableKinesis,
    on_invocations,
)


@dataclass
class FakeKinesis:
    """Accepts every entry and numbers it; remembers what landed."""

    landed: list[bytes] = field(default_factory=list)
    numbers: itertools.count[int] = field(default_factory=itertools.count)

    def put_records(self, **kwargs: Any) -> Mapping[str, Any]:
        self.landed += [r["Data"] for r in kwargs["Records"]]
        return {
            "FailedRecordCount": 0,
            "Records": [{"SequenceNumber": str(next(self.numbers)), "ShardId": "shardId-0"} for _ in kwargs["Records"]],
        }

    def list_shards(self, **kwargs: Any) -> Mapping[str, Any]:
        return {"Shards": []}


def _put(client: Any, count: int) -> Mapping[str, Any]:
    records = [{"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(count)]
    response: Mapping[str, Any] = client.put_records(StreamName="s", Records=records)
    return response


def test_a_lost_acknowledgement_lands_the_entry_but_reports_a_retryable_failure() -> None:
    kinesis = FakeKinesis()
    unreliable = UnreliableKinesis(kinesis, lost_ack_rate=1.0, throttle_rate=0.0)
    response = _put(unreliable, 3)
    assert kinesis.landed == [b"r0", b"r1", b"r2"]
    assert [r["ErrorCode"] for r in response["Records"]] == [LOST_ACK] * 3
    assert response["FailedRecordCount"] == 3
    assert unreliable.report.lost_acks == unreliable.report.forwarded == 3


def test_a_throttled_entry_does_not_land() -> None:
    kinesis = FakeKinesis()
    unreliable = UnreliableKinesis(kinesis, lost_ack_rate=0.0, throttle_rate=1.0)
    response = _put(unreliable, 2)
    assert kinesis.landed == []
    assert [r["ErrorCode"] for r in response["Records"]] == [THROTTLED] * 2


def test_a_lost_call_lands_everything_and_answers_nothing() -> None:
    kinesis = FakeKinesis()
    unreliable = UnreliableKinesis(kinesis, lost_ack_rate=0.0, throttle_rate=0.0, lost_call_rate=1.0)
    with pytest.raises(ReadTimeoutError):
        _put(unreliable, 2)
    assert kinesis.landed == [b"r0", b"r1"]
    assert unreliable.report.lost_call_entries == 2


def test_the_rates_hold_over_many_entries_and_the_rest_is_passed_through() -> None:
    kinesis = FakeKinesis()
    unreliable = UnreliableKinesis(kinesis, lost_ack_rate=0.10, throttle_rate=0.05, seed=1)
    for _ in range(20):
        _put(unreliable, 500)
    report = unreliable.report
    assert 0.09 < report.lost_acks / report.entries < 0.11
    assert 0.04 < report.throttled / report.entries < 0.06
    assert len(kinesis.landed) == report.forwarded == report.entries - report.throttled
    assert unreliable.list_shards(StreamName="s") == {"Shards": []}  # other methods are the client's


def test_rates_that_cannot_be_met_are_refused() -> None:
    with pytest.raises(ValueError, match="rates"):
        UnreliableKinesis(FakeKinesis(), lost_ack_rate=0.8, throttle_rate=0.3)


def test_a_process_death_after_a_call_cannot_be_swallowed_by_the_code_under_test() -> None:
    kinesis = FakeKinesis()
    dying = DieAfterCall(kinesis, "put_records", die_on={2})
    _put(dying, 1)

    def careful_code() -> None:
        try:
            _put(dying, 1)
        except Exception:  # what a handler's own error handling looks like
            pytest.fail("a dead process runs no except clause")

    with pytest.raises(ProcessDied):
        careful_code()
    assert kinesis.landed == [b"r0", b"r0"]  # the side effect of the fatal call happened
    assert (dying.calls, dying.deaths) == (2, 1)


def test_the_lambda_runtime_reports_a_dead_process_as_a_function_error() -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise ProcessDied("killed")

    runtime = LambdaRuntime(handler)
    with pytest.raises(InvocationFailedError, match="killed"):
        runtime({}, None)
    assert (runtime.invocations, runtime.failures) == (1, 1)


def test_crash_after_return_runs_the_side_effects_then_loses_the_answer() -> None:
    effects: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        effects.append(event["n"])
        return {"ok": event["n"]}

    crashing = CrashAfterReturn(handler, crash_when=on_invocations(2))
    assert crashing({"n": 1}, None) == {"ok": 1}
    with pytest.raises(ProcessDied):
        crashing({"n": 2}, None)
    assert effects == [1, 2]
    assert crashing.crashed == [({"n": 2}, {"ok": 2})]


def test_firehose_retries_the_same_records_then_fails_them_to_the_error_output() -> None:
    seen: list[dict[str, Any]] = []

    def always_failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        raise InvocationFailedError("down")

    retries = FirehoseInvocationRetries(always_failing, attempts=3)
    event = {"records": [{"recordId": "a", "data": "eA=="}, {"recordId": "b", "data": "eQ=="}]}
    answer = retries(event, None)
    assert seen == [event, event, event]
    assert answer == {
        "records": [
            {"recordId": "a", "result": "ProcessingFailed", "data": "eA=="},
            {"recordId": "b", "result": "ProcessingFailed", "data": "eQ=="},
        ]
    }
    assert (retries.invocations, retries.retries, retries.exhausted_batches) == (3, 2, 1)


@dataclass
class CountingFirehose:
    deliveries: list[int] = field(default_factory=list)

    def deliver(self, records: Sequence[StreamRecord]) -> DeliveryReport:
        self.deliveries.append(len(records))
        return DeliveryReport(source_records=len(records), delivered=len(records))


def test_a_delivery_process_that_dies_keeps_the_buffers_it_delivered() -> None:
    records = [StreamRecord("shardId-0", str(i), "k", b"{}", 0) for i in range(10)]
    firehose = CountingFirehose()
    run = deliver_buffers(firehose, records, records_per_buffer=3, die_after_buffers=2)
    assert (run.died, run.buffers, run.delivered, firehose.deliveries) == (True, 2, 6, [3, 3])
    replay = deliver_buffers(firehose, records, records_per_buffer=3)
    assert (replay.died, replay.delivered, firehose.deliveries[2:]) == (False, 10, [3, 3, 3, 1])
