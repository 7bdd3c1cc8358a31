"""Batch ingestion into Feature Store: the row -> record mapping and the bounded-retry put loop.

moto has no ``sagemaker-featurestore-runtime`` backend, so the loop runs against a real boto3
client with a botocore ``Stubber`` answering as the service does: an empty 200 body on success,
and error bodies with the codes of the API reference (``ThrottlingException``, ``ValidationError``,
``ServiceUnavailable``, ``AccessForbidden``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from glue_jobs.ingest.put import REJECTED, WRITTEN, IngestTarget, RetryPolicy, ingest_rows
from glue_jobs.ingest.records import (
    BATCH_TARGET_STORES,
    UnusableRowError,
    feature_record,
    rejects_prefix,
    target_stores,
)
from glue_jobs.ingest.snapshot import region_of, snapshot_day
from platform_core.schemas.features import FEATURE_GROUPS, USER_CLICKSTREAM, USER_SUBSCRIPTION

AS_OF = datetime(2024, 3, 10, 1, 0, tzinfo=UTC)
ARN = "arn:aws:sagemaker:eu-west-1:123456789012:feature-group/mlp-dev-user-subscription"


def subscription_row(user_id: str = "u1", **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "user_id": user_id,
        "event_time": AS_OF,
        "is_active": 1,
        "plan": "premium",
        "price": 19.99,
        "renewal_month": 4,
        "days_until_renewal": 36,
        "tenure_days": 120.5,
        "cancellations": 0,
        "days_since_last_transition": None,  # no value: left out of the record
    }
    row.update(overrides)
    return row


def expected_record(user_id: str = "u1") -> list[dict[str, str]]:
    return [
        {"FeatureName": "user_id", "ValueAsString": user_id},
        {"FeatureName": "event_time", "ValueAsString": "2024-03-10T01:00:00.000Z"},
        {"FeatureName": "is_active", "ValueAsString": "1"},
        {"FeatureName": "plan", "ValueAsString": "premium"},
        {"FeatureName": "price", "ValueAsString": "19.99"},
        {"FeatureName": "renewal_month", "ValueAsString": "4"},
        {"FeatureName": "days_until_renewal", "ValueAsString": "36"},
        {"FeatureName": "tenure_days", "ValueAsString": "120.5"},
        {"FeatureName": "cancellations", "ValueAsString": "0"},
    ]


# ---------------------------------------------------------------------------------------------
# The mapping
# ---------------------------------------------------------------------------------------------


def test_a_snapshot_row_becomes_the_record_of_its_group_with_the_snapshots_event_time():
    # Given a user-subscription row of the snapshot as of AS_OF (one feature null)
    # When it is mapped
    record = feature_record(USER_SUBSCRIPTION, subscription_row(), as_of=AS_OF)
    # Then every non-null feature is there as Feature Store's string, in the group's order,
    # and the event time is the snapshot's instant (from the data, not from a clock)
    assert record == expected_record()


def test_a_row_of_another_instant_is_refused_with_the_reason():
    other = subscription_row(event_time=AS_OF + timedelta(days=1))
    with pytest.raises(UnusableRowError, match=re.escape("is not the snapshot's as_of 2024-03-10T01:00:00.000Z")):
        feature_record(USER_SUBSCRIPTION, other, as_of=AS_OF)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"event_time": None}, "event_time must be a timezone-aware timestamp"),
        ({"event_time": datetime(2024, 3, 10, 1, 0)}, "event_time must be a timezone-aware timestamp"),
        ({"price": math.nan}, "ValueError: feature price is not finite"),
        ({"user_id": None}, "needs user_id"),
        ({"discount": 0.1}, "KeyError"),
        ({"renewal_month": "April"}, "ValueError"),
    ],
)
def test_rows_that_cannot_become_records_say_why(overrides, reason):
    with pytest.raises(UnusableRowError, match=reason):
        feature_record(USER_SUBSCRIPTION, subscription_row(**overrides), as_of=AS_OF)


def test_the_stream_keeps_the_clickstream_online_store_and_the_batch_fills_the_rest():
    # Every group has its stores; only the subscription group's online store is fed by the batch
    assert {g.name for g in FEATURE_GROUPS} == set(BATCH_TARGET_STORES)
    assert target_stores(USER_CLICKSTREAM) == ("OfflineStore",)
    assert target_stores(USER_SUBSCRIPTION) == ("OnlineStore", "OfflineStore")
    assert rejects_prefix(USER_CLICKSTREAM) == "errors/feature-store/user_clickstream/"


def test_the_ingest_reads_the_partition_the_job_wrote_and_the_region_of_the_group():
    assert snapshot_day(AS_OF) == "2024-03-10"
    assert region_of(ARN) == "eu-west-1"
    with pytest.raises(ValueError, match="not a feature group ARN"):
        region_of("mlp-dev-user-subscription")


# ---------------------------------------------------------------------------------------------
# The put loop, against the real client stubbed as the service answers
# ---------------------------------------------------------------------------------------------

TARGET = IngestTarget(USER_SUBSCRIPTION, ARN, ("OnlineStore", "OfflineStore"), AS_OF)
POLICY = RetryPolicy(max_attempts=3, base_delay_seconds=0.1, max_delay_seconds=1.0)


def _params(user_id: str) -> dict[str, Any]:
    return {
        "FeatureGroupName": ARN,
        "Record": expected_record(user_id),
        "TargetStores": ["OnlineStore", "OfflineStore"],
    }


class Harness:
    """A stubbed client, the pauses the loop asked for (never slept), and a fixed jitter."""

    def __init__(self) -> None:
        self.client = boto3.client("sagemaker-featurestore-runtime", region_name="eu-west-1")
        self.stub = Stubber(self.client)
        self.pauses: list[float] = []

    def ok(self, user_id: str) -> None:
        self.stub.add_response("put_record", {}, _params(user_id))

    def error(self, user_id: str, code: str, status: int, message: str) -> None:
        self.stub.add_client_error(
            "put_record",
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            expected_params=_params(user_id),
        )

    def run(self, rows: list[dict[str, Any]]) -> list[Any]:
        with self.stub:
            outcomes = list(
                ingest_rows(
                    rows,
                    put_record=self.client.put_record,
                    target=TARGET,
                    policy=POLICY,
                    sleep=self.pauses.append,
                    jitter=lambda: 0.5,
                )
            )
            self.stub.assert_no_pending_responses()
        return outcomes


def test_a_throttled_put_is_retried_after_a_backoff_and_then_written():
    # Given the service throttles the first call and accepts the second
    harness = Harness()
    harness.error("u1", "ThrottlingException", 400, "Rate exceeded")
    harness.ok("u1")
    # When one row is ingested
    (outcome,) = harness.run([subscription_row("u1")])
    # Then it is written on the second attempt, after one pause (0.1 s ceiling, half by the jitter)
    assert (outcome.status, outcome.attempts, outcome.reason, outcome.row) == (WRITTEN, 2, None, None)
    assert outcome.record_identifier == "u1" and outcome.event_time == "2024-03-10T01:00:00.000Z"
    assert harness.pauses == [0.05]


def test_retries_are_bounded_and_a_row_still_throttled_is_rejected_with_its_reason():
    # Given the service throttles u1 on every attempt, and is unavailable once for u2
    harness = Harness()
    for _ in range(POLICY.max_attempts):
        harness.error("u1", "ThrottlingException", 400, "Rate exceeded")
    harness.error("u2", "ServiceUnavailable", 503, "Service Unavailable")
    harness.ok("u2")
    # When both rows are ingested
    first, second = harness.run([subscription_row("u1"), subscription_row("u2")])
    # Then u1 gave up after the policy's attempts with growing pauses, and u2 still went through
    assert (first.status, first.attempts) == (REJECTED, 3)
    assert first.reason == "gave up after 3 attempts: ThrottlingException"
    assert json.loads(first.row)["user_id"] == "u1"
    assert (second.status, second.attempts) == (WRITTEN, 2)
    assert harness.pauses == [0.05, 0.1, 0.05]


def test_a_refused_record_is_rejected_at_once_and_its_neighbours_are_written():
    # Given the service refuses u2's record, and an unusable row u3 that is never sent
    harness = Harness()
    harness.ok("u1")
    harness.error("u2", "ValidationError", 400, "Feature price has an invalid value")
    harness.ok("u4")
    rows = [
        subscription_row("u1"),
        subscription_row("u2"),
        subscription_row("u3", event_time=AS_OF - timedelta(days=1)),
        subscription_row("u4"),
    ]
    # When the rows are ingested
    outcomes = harness.run(rows)
    # Then each row has its outcome: u2 and u3 rejected with the reason and the row, u1 and u4 written
    assert [(o.record_identifier, o.status, o.attempts) for o in outcomes] == [
        ("u1", WRITTEN, 1),
        ("u2", REJECTED, 1),
        ("u3", REJECTED, 0),
        ("u4", WRITTEN, 1),
    ]
    assert outcomes[1].reason == "ValidationError: Feature price has an invalid value"
    assert outcomes[2].reason is not None and outcomes[2].reason.startswith("unusable row: event_time")
    assert json.loads(outcomes[2].row)["event_time"] == "2024-03-09T01:00:00+00:00"
    assert harness.pauses == []


def test_an_error_that_concerns_every_row_fails_the_run():
    # Given the job's role may not write the group
    harness = Harness()
    harness.error("u1", "AccessForbidden", 403, "User is not authorized to perform sagemaker:PutRecord")
    # Then the run fails instead of rejecting every row one by one
    with pytest.raises(ClientError) as raised:
        harness.run([subscription_row("u1"), subscription_row("u2")])
    assert raised.value.response["Error"]["Code"] == "AccessForbidden"


def test_a_replay_puts_the_same_records_under_the_same_keys():
    # Given the same snapshot rows ingested twice (a retried task, a re-run of the same as_of)
    harness = Harness()
    for _ in range(2):
        harness.ok("u1")
        harness.ok("u2")
    rows = [subscription_row("u1"), subscription_row("u2")]
    # Then both runs send identical requests (the Stubber checks each one's parameters): the key
    # (user_id, event_time) and the values come from the data, so a replay changes nothing
    assert [o.status for o in harness.run(rows + rows)] == [WRITTEN] * 4


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"base_delay_seconds": 2.0, "max_delay_seconds": 1.0}])
def test_a_retry_policy_without_bounds_is_refused(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


def test_a_lost_connection_is_retried_since_putting_the_same_key_again_is_harmless():
    # Given an endpoint that cannot be reached once (no answer: the call may or may not have landed)
    from botocore.exceptions import EndpointConnectionError

    calls: list[dict[str, Any]] = []

    def put_record(**request: Any) -> dict[str, Any]:
        calls.append(request)
        if len(calls) == 1:
            raise EndpointConnectionError(endpoint_url="https://featurestore-runtime.sagemaker.eu-west-1.amazonaws.com")
        return {}

    # When a row is ingested
    (outcome,) = ingest_rows(
        [subscription_row("u1")], put_record=put_record, target=TARGET, policy=POLICY, sleep=lambda _: None
    )
    # Then the same request was simply sent again
    assert (outcome.status, outcome.attempts) == (WRITTEN, 2)
    assert calls == [_params("u1"), _params("u1")]
