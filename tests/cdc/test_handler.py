"""The Lambda handler end to end on moto: DynamoDB state and dedup markers, Avro log and error
objects in S3, partial batch responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.cdc_processor import handler as cdc_handler
from lambdas.cdc_processor.settings import Settings, SettingsError
from lambdas.cdc_processor.store import DynamoDBStateStore
from tests.cdc.conftest import read_avro
from tests.cdc.events import FIRST_SEQUENCE, dms, kinesis_event, row

TABLE = "mlp-dev-cdc-state"
LAKE = "mlp-dev-lake"
ERRORS = "mlp-dev-errors"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("LAKE_BUCKET", LAKE)
    monkeypatch.setenv("ERRORS_BUCKET", ERRORS)
    with mock_aws():
        cdc_handler.reset()
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=LAKE)
        s3.create_bucket(Bucket=ERRORS)
        yield {"dynamodb": dynamodb, "s3": s3}
        cdc_handler.reset()


def objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def items(dynamodb: Any) -> dict[str, dict[str, Any]]:
    scanned = dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    for item in scanned:
        item.pop("updated_at", None)  # wall clock of the write
    return {i["user_id"]["S"]: i for i in scanned}


def test_sequence_of_changes_lands_as_avro_and_state(aws: dict[str, Any]) -> None:
    # Given inserts, a renewal with a pk-only before image, a cancellation and a delete
    event = kinesis_event(
        [
            dms("insert", row("u1", True, renewal="2026-12-01"), ts="2026-11-30T10:00:00.000001Z", txid=1),
            dms("insert", row("u2", True, plan="pro", price="19.99"), ts="2026-11-30T10:00:01Z", txid=2),
            dms(
                "update",
                row("u1", True, renewal="2027-01-01"),
                ts="2026-11-30T11:00:00Z",
                txid=3,
                before={"user_id": "u1"},
            ),
            dms("update", row("u2", False, plan="pro", price="19.99"), ts="2026-11-30T12:00:00Z", txid=4),
            dms("delete", {"user_id": "u2"}, ts="2026-11-30T13:00:00Z", txid=5),
        ]
    )
    # When the handler gets the Kinesis event
    response = cdc_handler.handler(event, None)
    # Then nothing is to be retried
    assert response == {"batchItemFailures": []}
    # And the transitions read back from S3 are exactly the expected ones
    log = objects(aws["s3"], LAKE, "cdc/transitions/")
    assert list(log) == [
        f"cdc/transitions/date=2026-11-30/shardId-000000000000-{FIRST_SEQUENCE}-{FIRST_SEQUENCE + 400}.avro"
    ]
    transitions = read_avro(next(iter(log.values())))
    assert [(t["user_id"], t["transition"]) for t in transitions] == [
        ("u1", "subscribed"),
        ("u2", "subscribed"),
        ("u1", "renewed"),
        ("u2", "cancelled"),
        ("u2", "deleted"),
    ]
    assert transitions[2]["before_renewal_date"] == date(2026, 12, 1)
    snapshots = read_avro(next(iter(objects(aws["s3"], LAKE, "cdc/snapshots/").values())))
    assert [(s["user_id"], s["is_active_subscribed"], s["is_deleted"]) for s in snapshots] == [
        ("u1", True, False),
        ("u2", True, False),
        ("u1", True, False),
        ("u2", False, False),
        ("u2", None, True),
    ]
    # And the final state per user is in DynamoDB, next to one TTL'd dedup marker per change
    stored = items(aws["dynamodb"])
    assert stored["u1"]["renewal_date"] == {"S": "2027-01-01"}
    assert stored["u1"]["is_active_subscribed"] == {"BOOL": True}
    assert stored["u2"]["is_deleted"] == {"BOOL": True}
    markers = [k for k in stored if k.startswith("dedup#subscriptions#")]
    assert len(markers) == 5
    assert all(int(stored[k]["expires_at"]["N"]) > 1_700_000_000 for k in markers)


def test_replay_of_a_batch_changes_nothing(aws: dict[str, Any]) -> None:
    # Given a processed batch
    event = kinesis_event(
        [
            dms("insert", row("u1", True), ts="2026-11-30T10:00:00Z", txid=1),
            dms("update", row("u1", False), ts="2026-11-30T11:00:00Z", txid=2),
        ]
    )
    cdc_handler.handler(event, None)
    log_before = objects(aws["s3"], LAKE)
    state_before = items(aws["dynamodb"])
    # When Lambda delivers it again
    response = cdc_handler.handler(event, None)
    # Then no object and no item changed
    assert response == {"batchItemFailures": []}
    assert objects(aws["s3"], LAKE) == log_before
    assert items(aws["dynamodb"]) == state_before


def test_bad_records_go_to_the_error_bucket_and_are_not_retried(aws: dict[str, Any]) -> None:
    # Given a good record, a record with a type change, and a record that is not JSON
    event = kinesis_event(
        [
            dms("insert", row("u1", True), ts="2026-11-30T10:00:00Z", txid=1),
            dms("update", row("u1", "yes"), ts="2026-11-30T11:00:00Z", txid=2),  # type: ignore[arg-type]
            b"{truncated",
        ]
    )
    # When processed
    response = cdc_handler.handler(event, None)
    # Then the shard is not blocked: no failures reported
    assert response == {"batchItemFailures": []}
    # And each bad record is an error object with its reason and the original data
    errors = objects(aws["s3"], ERRORS, "errors/cdc/")
    docs = {key.rsplit("/", 1)[1]: json.loads(body) for key, body in errors.items()}
    assert {name: d["reason"] for name, d in docs.items()} == {
        f"shardId-000000000000-{FIRST_SEQUENCE + 100}.json": "invalid_field",
        f"shardId-000000000000-{FIRST_SEQUENCE + 200}.json": "not_json",
    }
    assert all(key.startswith("errors/cdc/date=2026-") for key in errors)
    # And the good record was applied
    assert items(aws["dynamodb"])["u1"]["is_active_subscribed"] == {"BOOL": True}


def test_refused_commit_is_a_partial_batch_failure(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given u1's state at a position this invocation will not see (a concurrent writer got there first)
    cdc_handler.handler(kinesis_event([dms("insert", row("u1", True), ts="2026-11-30T10:00:00Z", txid=1)]), None)
    real_load = DynamoDBStateStore.load_states

    def load_without_u1(self: DynamoDBStateStore, user_ids: Any) -> Any:
        return {u: s for u, s in real_load(self, user_ids).items() if u != "u1"}

    monkeypatch.setattr(DynamoDBStateStore, "load_states", load_without_u1)
    event = kinesis_event(
        [
            dms("insert", row("u2", True), ts="2026-11-30T11:00:00Z", txid=2),
            dms("update", row("u1", False), ts="2026-11-30T12:00:00Z", txid=3),
        ],
        first_sequence=FIRST_SEQUENCE + 10_000,
    )
    # When the batch commits
    response = cdc_handler.handler(event, None)
    # Then the conditional write refuses u1, whose record is reported for retry; u2 is committed
    assert response == {"batchItemFailures": [{"itemIdentifier": str(FIRST_SEQUENCE + 10_100)}]}
    stored = items(aws["dynamodb"])
    assert stored["u1"]["is_active_subscribed"] == {"BOOL": True}
    assert stored["u2"]["is_active_subscribed"] == {"BOOL": True}


def test_many_changes_of_one_user_commit_in_chunks(aws: dict[str, Any]) -> None:
    # Given 150 plan changes of one user in one batch (more than one transaction holds)
    messages = [dms("insert", row("u1", True, plan="p0"), ts="2026-11-30T10:00:00Z", txid=1)]
    messages += [
        dms(
            "update",
            row("u1", True, plan=f"p{i}"),
            ts=f"2026-11-30T10:{i // 60:02d}:{i % 60:02d}.5Z",
            txid=1 + i,
        )
        for i in range(1, 150)
    ]
    # When processed
    response = cdc_handler.handler(kinesis_event(messages), None)
    # Then all apply and the final state is the last one
    assert response == {"batchItemFailures": []}
    stored = items(aws["dynamodb"])
    assert stored["u1"]["plan"] == {"S": "p149"}
    assert sum(k.startswith("dedup#") for k in stored) == 150


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"STATE_TABLE": "t", "LAKE_BUCKET": "b", "ERRORS_PREFIX": "errs"})
    assert (settings.errors_bucket, settings.errors_prefix, settings.before_image_field) == (
        "b",
        "errs/",
        "before-image",
    )
    with pytest.raises(SettingsError):
        Settings.from_env({"LAKE_BUCKET": "b"})
    with pytest.raises(SettingsError):
        Settings.from_env({"STATE_TABLE": "t", "LAKE_BUCKET": "b", "DEDUP_TTL_DAYS": "-1"})
