"""PutRecords limits, backoff and error classification, with in-memory clients (no moto)."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError

from platform_core.kpl import deaggregate
from producer import ClickstreamProducer
from producer.kinesis_producer import MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, PutResult
from tests.producer.conftest import RecordingSleep
from tests.producer.fakes import AcceptingKinesis, clickstream_event, throttling_error


def call_bytes(call: list[Mapping[str, Any]]) -> int:
    return sum(len(r["Data"]) + len(r["PartitionKey"].encode()) for r in call)


def test_calls_carry_at_most_500_records() -> None:
    # Given 1,201 small events
    client = AcceptingKinesis()
    producer = ClickstreamProducer("s", client=client)

    # When they are put
    results = producer.put_events(clickstream_event(i) for i in range(1_201))

    # Then three calls carry them: 500, 500 and 201, each result naming its own record
    assert [len(c) for c in client.calls] == [MAX_RECORDS_PER_CALL, MAX_RECORDS_PER_CALL, 201]
    assert [r.sequence_number for r in results] == [str(i) for i in range(1_201)]


def test_calls_carry_at_most_5_mib_counting_partition_keys() -> None:
    # Given 40 events of ~400 kB (13 fit into 5 MiB, 14 do not)
    client = AcceptingKinesis()
    producer = ClickstreamProducer("s", client=client)
    events = [clickstream_event(i, padding=400_000) for i in range(40)]

    # When they are put
    results = producer.put_events(events)

    # Then no call exceeds 5 MiB (data plus keys), and each is as full as the limit allows
    assert all(r.acknowledged for r in results)
    assert [len(c) for c in client.calls] == [13, 13, 13, 1]
    sizes = [call_bytes(c) for c in client.calls]
    assert max(sizes) <= MAX_BYTES_PER_CALL
    record_bytes = call_bytes(client.calls[0]) // 13
    assert sizes[0] + record_bytes > MAX_BYTES_PER_CALL


def test_aggregated_calls_respect_the_limits_and_send_a_lone_event_unaggregated() -> None:
    # Given events of one session that fill six 1 MiB aggregated records, then one more event
    client = AcceptingKinesis()
    producer = ClickstreamProducer("s", client=client, aggregate=True)
    events = [clickstream_event(i, sessions=1, padding=100_000) for i in range(61)]

    # When they are put
    results = producer.put_events(events)

    # Then five aggregated records fill the first call (5 MiB) and the rest follow
    assert all(r.acknowledged for r in results)
    assert all(call_bytes(c) <= MAX_BYTES_PER_CALL for c in client.calls)
    records = [entry for call in client.calls for entry in call]
    user_records = [deaggregate(e["Data"], partition_key=e["PartitionKey"]) for e in records]
    assert [len(u) for u in user_records] == [10, 10, 10, 10, 10, 10, 1]
    assert [len(c) for c in client.calls] == [5, 2]
    # And the last, lone event went as a plain record with no sub-sequence number
    assert user_records[-1][0].aggregated is False
    assert results[-1].sub_sequence_number is None
    assert [r.sub_sequence_number for r in results[:10]] == list(range(10))


class ScriptedKinesis:
    """Answers each call from a script: an exception to raise, or per-entry error codes."""

    def __init__(self, script: list[Exception | list[str | None]]) -> None:
        self.script = script
        self.calls: list[list[Mapping[str, Any]]] = []

    def put_records(self, **kwargs: Any) -> Mapping[str, Any]:
        records = kwargs["Records"]
        self.calls.append(records)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        assert len(step) == len(records)
        return {
            "FailedRecordCount": sum(code is not None for code in step),
            "Records": [
                {"ErrorCode": code, "ErrorMessage": f"{code} for this entry"}
                if code
                else {"SequenceNumber": f"seq-{len(self.calls)}-{i}", "ShardId": "shardId-000000000002"}
                for i, code in enumerate(step)
            ],
        }


class HighestRandom(random.Random):
    """Jitter pinned to the top of its window, so the window itself is observable."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    # Given a call that fails as a whole five times
    client = ScriptedKinesis([throttling_error("ThrottlingException")] * 5 + [[None]])
    sleep = RecordingSleep()
    producer = ClickstreamProducer(
        "s",
        client=client,
        sleep=sleep,
        rng=HighestRandom(),
        base_delay_s=0.1,
        max_delay_s=0.5,
        max_attempts=6,
    )

    # When an event is put
    [result] = producer.put_events([clickstream_event(0)])

    # Then the waits' upper bounds double from the base delay and stop at the cap
    assert result.acknowledged and result.attempts == 6
    assert sleep.delays == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_jitter_is_drawn_from_the_whole_window() -> None:
    # Given many single-attempt failures with a seeded random source
    sleep = RecordingSleep()
    client = ScriptedKinesis([throttling_error("ThrottlingException")] * 200 + [[None]])
    producer = ClickstreamProducer(
        "s",
        client=client,
        sleep=sleep,
        rng=random.Random(3),
        base_delay_s=1.0,
        max_delay_s=1.0,
        max_attempts=201,
    )

    # When an event is put
    producer.put_events([clickstream_event(0)])

    # Then the waits spread over [0, 1], not bunched at the top like plain exponential backoff
    assert len(sleep.delays) == 200
    assert 0 <= min(sleep.delays) < 0.1
    assert 0.9 < max(sleep.delays) <= 1.0


def test_only_failed_entries_are_retried() -> None:
    # Given a call where the 2nd and 4th entries fail (throttled, internal failure)
    client = ScriptedKinesis([[None, "ProvisionedThroughputExceededException", None, "InternalFailure"], [None, None]])
    producer = ClickstreamProducer("s", client=client, sleep=RecordingSleep())
    events = [{**clickstream_event(i), "event_id": f"e{i}"} for i in range(4)]

    # When the events are put
    results = producer.put_events(events)

    # Then the second call carries exactly those two, with their original bodies
    assert client.calls[1] == [client.calls[0][1], client.calls[0][3]]
    assert [(r.event_id, r.attempts, r.sequence_number) for r in results] == [
        ("e0", 1, "seq-1-0"),
        ("e1", 2, "seq-2-0"),
        ("e2", 1, "seq-1-2"),
        ("e3", 2, "seq-2-1"),
    ]


@pytest.mark.parametrize(
    ("error", "expected_code", "retried"),
    [
        (
            EndpointConnectionError(endpoint_url="https://kinesis.us-east-1.amazonaws.com"),
            "EndpointConnectionError",
            True,
        ),
        (NoCredentialsError(), "NoCredentialsError", False),
        (throttling_error("AccessDeniedException"), "AccessDeniedException", False),
        (throttling_error("InternalFailure"), "InternalFailure", True),
    ],
    ids=["connection", "credentials", "access-denied", "internal-failure"],
)
def test_whole_call_errors_are_retried_by_kind_not_by_message(
    error: Exception, expected_code: str, retried: bool
) -> None:
    # Given a call that fails as a whole with this error, then one that succeeds
    client = ScriptedKinesis([error, [None]])
    producer = ClickstreamProducer("s", client=client, sleep=RecordingSleep(), max_attempts=2)

    # When an event is put
    [result] = producer.put_events([clickstream_event(0)])

    # Then a retryable error is retried; another is reported at once with its code
    if retried:
        assert (result.acknowledged, result.attempts, len(client.calls)) == (True, 2, 2)
    else:
        assert (result.acknowledged, result.attempts, result.error_code) == (False, 1, expected_code)
        assert len(client.calls) == 1


def test_results_are_frozen_values() -> None:
    result = PutResult(event_id="e", acknowledged=True)
    with pytest.raises(AttributeError):
        result.acknowledged = False  # type: ignore[misc]


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"base_delay_s": 2.0, "max_delay_s": 1.0},
        {"max_aggregate_bytes": 2 * 1024 * 1024},
    ],
)
def test_settings_that_cannot_work_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ClickstreamProducer("s", client=AcceptingKinesis(), **options)


def test_any_mapping_is_sent_as_a_json_object() -> None:
    # Given a read-only mapping that already carries its event id
    client = AcceptingKinesis()
    event = MappingProxyType({**clickstream_event(0), "event_id": "e-1"})

    # When it is put
    [result] = ClickstreamProducer("s", client=client).put_events([event])

    # Then it is sent as the same JSON object under its own id
    assert (result.acknowledged, result.event_id) == (True, "e-1")
    assert json.loads(client.calls[0][0]["Data"]) == dict(event)
