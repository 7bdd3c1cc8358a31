"""Poison pills: one bad record inside a 10,000-record Kinesis batch, through LocalEventSourceMapping
(bisect on error, ReportBatchItemFailures, finite retries, on-failure destination).

The platform's consumers reject a bad record themselves (error output with its reason) and report
it as handled, so the batch needs exactly one invocation. For contrast, a consumer that *crashes* on
a record leaves the isolation to the event source mapping: bisection finds the record, but only
down to ``batch / 2**retries`` records, and those go to the on-failure destination as metadata.
"""

from __future__ import annotations

import base64
import functools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.cdc_processor import handler as cdc_handler
from lambdas.cdc_processor.processor import CdcProcessor
from lambdas.cdc_processor.sink import S3Sink
from lambdas.cdc_processor.store import InMemoryStateStore as CdcStateStore
from lambdas.online_features import clients as online_clients
from lambdas.online_features import handler as online_handler
from lambdas.online_features.feature_store import InMemoryFeatureStore
from lambdas.online_features.settings import get_settings as online_settings
from lambdas.online_features.state import decode_events
from local_runtime.event_source import LocalEventSourceMapping, MappingReport
from local_runtime.kinesis_reader import StreamRecord
from platform_core.config import load_config
from platform_core.schemas.cdc import CDC_ERROR_PREFIX
from reliability.workload import clickstream_events, dms_records, encode_lines

pytestmark = pytest.mark.slow

BATCH = 10_000
PILL_AT = 5_000
PILL = b'{"metadata": {"record-type": "data", "operation": "upd'  # cut off mid-record
SHARD = "shardId-000000000000"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/{}"
CONFIG = load_config("dev")


def sequence(i: int) -> str:
    """Kinesis sequence numbers: long decimal strings growing along the shard."""
    return f"49590338271490256608559692538361571095921575989136{i:06d}"


def batch_with_pill(payloads: list[bytes], partition_keys: list[str]) -> list[StreamRecord]:
    """``BATCH`` records of one shard, the pill at ``PILL_AT``."""
    assert len(payloads) == BATCH - 1
    datas = [*payloads[:PILL_AT], PILL, *payloads[PILL_AT:]]
    keys = [*partition_keys[:PILL_AT], "pill", *partition_keys[PILL_AT:]]
    return [
        StreamRecord(SHARD, sequence(i), k, d, 1_748_800_000_000 + i)
        for i, (d, k) in enumerate(zip(datas, keys, strict=True))
    ]


def mapping(stream: str, handler: Any, *, retries: int) -> LocalEventSourceMapping:
    return LocalEventSourceMapping(
        function_name=f"mlp-dev-{stream}-consumer",
        stream_arn=STREAM_ARN.format(stream),
        handler=handler,
        batch_size=BATCH,
        retry_attempts=retries,
        on_failure=lambda message: None,
    )


def _table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    return [item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


# ---------------------------------------------------------------------------------------------
# The platform's consumers: one invocation, one rejected record, 9,999 processed
# ---------------------------------------------------------------------------------------------


def test_cdc_processor_isolates_one_bad_record_in_10000(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 9,999 DMS records of 500 users and one record cut off mid-JSON
    lines = encode_lines(dms_records(users=500, changes_per_user=20, seed=5))[: BATCH - 1]
    records = batch_with_pill(lines, [json.loads(line)["data"]["user_id"] for line in lines])
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cdc-lake")
    # The state store in memory (same semantics as the DynamoDB one): moto's TransactWriteItems
    # deep-copies the table for every item, which makes 10,000 changes take hours there.
    store = CdcStateStore()
    processor = CdcProcessor(store=store, sink=S3Sink("cdc-lake", "cdc-lake", CDC_ERROR_PREFIX, lambda: s3))
    monkeypatch.setattr(cdc_handler, "processor", lambda: processor)

    # When the event source mapping hands them to the processor as one batch
    report = mapping("cdc", cdc_handler.handler, retries=CONFIG.cdc.consumer.retry_attempts).run(records)

    # Then one invocation did it all, nothing was retried and nothing reached the DLQ
    assert (report.invocations, report.retried_batches, report.sent_to_dlq) == (1, 0, 0)
    # and the bad record is the one object in the error output, with its reason and its bytes
    errors = s3.list_objects_v2(Bucket="cdc-lake", Prefix=CDC_ERROR_PREFIX).get("Contents", [])
    assert len(errors) == 1
    document = json.loads(s3.get_object(Bucket="cdc-lake", Key=errors[0]["Key"])["Body"].read())
    assert (document["reason"], document["sequence_number"]) == ("not_json", sequence(PILL_AT))
    assert document["detail"] and base64.b64decode(document["data_base64"]) == PILL
    # and each of the other 9,999 changes was handled once (one dedup marker per change)
    assert len(store.markers) == BATCH - 1
    assert len(store.states) == 500
    print(json.dumps({"cdc_poison_pill": _figures(report)}))


def test_online_features_isolate_one_bad_record_in_10000(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 9,999 clickstream events of 300 signed-in users and one record cut off mid-JSON
    events = clickstream_events(BATCH - 1, users=300, seed=6, anonymous_share=0.0, without_event_id_share=0.0)
    records = batch_with_pill([json.dumps(e).encode() for e in events], [e["session_id"] for e in events])
    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    _table(dynamodb, "online-state")
    queue = sqs.create_queue(QueueName="online-rejects")["QueueUrl"]
    store = InMemoryFeatureStore()
    for name, value in {
        "STATE_TABLE_NAME": "online-state",
        "FEATURE_GROUP_NAME": "g",
        "REJECTS_QUEUE_URL": queue,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(online_handler, "feature_writer", lambda: store)
    monkeypatch.setattr(online_clients, "dynamodb", functools.cache(lambda: dynamodb))
    monkeypatch.setattr(online_clients, "sqs", functools.cache(lambda: sqs))
    online_settings.cache_clear()
    online_handler.processor.cache_clear()

    # When the event source mapping hands them to the consumer as one batch
    report = mapping("clickstream", online_handler.handler, retries=CONFIG.consumer.retry_attempts).run(records)
    online_settings.cache_clear()
    online_handler.processor.cache_clear()

    # Then one invocation did it all, nothing was retried and nothing reached the DLQ
    assert (report.invocations, report.retried_batches, report.sent_to_dlq) == (1, 0, 0)
    # and the bad record is the one message in the rejects queue, with its reason and its bytes
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    rejected = json.loads(messages[0]["Body"])
    assert (rejected["code"], rejected["sequence_number"]) == ("not_json", sequence(PILL_AT))
    assert rejected["reason"] and base64.b64decode(rejected["data_base64"]) == PILL
    # and every one of the other 9,999 events is in its user's state, once
    stored = Counter(e.event_id for item in _scan(dynamodb, "online-state") for e in decode_events(item["events"]["B"]))
    assert sum(stored.values()) == len(stored) == BATCH - 1
    assert len(store.records) == len({e["user_id"] for e in events})
    print(json.dumps({"online_features_poison_pill": _figures(report)}))


def _figures(report: MappingReport) -> dict[str, int]:
    return {
        "records": report.records,
        "invocations": report.invocations,
        "retried_batches": report.retried_batches,
        "records_in_dlq_ranges": report.sent_to_dlq,
    }


# ---------------------------------------------------------------------------------------------
# For contrast: a consumer that crashes on the record (what the platform's handlers never do)
# ---------------------------------------------------------------------------------------------


@dataclass
class CrashingConsumer:
    """Processes every record, except that a bug makes the whole invocation fail on the pill."""

    processed: Counter[str] = field(default_factory=Counter)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        data = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
        if PILL in data:
            raise ValueError("the consumer crashed on a record")
        self.processed.update(r["kinesis"]["sequenceNumber"] for r in event["Records"])
        return {"batchItemFailures": []}


@pytest.mark.parametrize("retries", [CONFIG.consumer.retry_attempts, 14])
def test_a_crashing_consumer_is_bisected_down_to_batch_over_two_to_the_retries(retries: int) -> None:
    records = batch_with_pill([b"{}"] * (BATCH - 1), ["k"] * (BATCH - 1))
    consumer = CrashingConsumer()

    report = mapping("clickstream", consumer, retries=retries).run(records)

    # Each failed half is split again with one retry less: the invocations stay bounded...
    assert report.invocations <= 1 + 2 * retries
    # ...the DLQ gets one message whose range holds the pill and at most batch / 2**retries records...
    assert len(report.dlq_messages) == 1
    info = report.dlq_messages[0]["KinesisBatchInfo"]
    assert int(info["startSequenceNumber"]) <= int(sequence(PILL_AT)) <= int(info["endSequenceNumber"])
    assert info["batchSize"] == report.sent_to_dlq <= -(-BATCH // 2**retries)
    # ...and every record outside that range was processed exactly once.
    assert sum(consumer.processed.values()) == len(consumer.processed) == BATCH - report.sent_to_dlq
    print(json.dumps({"crashing_consumer": {"retries": retries, **_figures(report)}}))
