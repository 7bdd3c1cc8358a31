"""The Firehose transformation handler, driven by AWS-shaped events, with moto S3 for rejects."""

from __future__ import annotations

import base64
import collections
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lambdas.clickstream_transform import aws
from lambdas.clickstream_transform import handler as transform_handler
from lambdas.clickstream_transform.handler import handler
from lambdas.clickstream_transform.settings import SettingsError
from platform_core import enrich
from platform_core.arrow_schema import arrow_schema
from platform_core.schema import Primitive
from platform_core.schemas.clickstream import CLICKSTREAM_RAW, MAX_RECORD_BYTES
from tests.clickstream_transform.conftest import (
    DIRECT_PUT_EXPECTED,
    KINESIS_EXPECTED,
    REJECTS_BUCKET,
    REJECTS_PREFIX,
    event_bytes,
    load_fixture,
)

TIMESTAMP_FIELDS = tuple(f.name for f in CLICKSTREAM_RAW.fields if f.type is Primitive.TIMESTAMP)


def outcomes(response: dict[str, Any]) -> list[str]:
    return [r["result"] for r in response["records"]]


def rejects_objects(s3: Any) -> dict[str, list[dict[str, Any]]]:
    """Every rejects file in the bucket: key -> its NDJSON lines."""
    listing = s3.list_objects_v2(Bucket=REJECTS_BUCKET, Prefix=REJECTS_PREFIX)
    files = {}
    for item in listing.get("Contents", []):
        body = s3.get_object(Bucket=REJECTS_BUCKET, Key=item["Key"])["Body"].read().decode()
        files[item["Key"]] = [json.loads(line) for line in body.splitlines()]
    return files


def lake_rows(response: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for answer in response["records"]:
        if answer["result"] == "Ok":
            line = base64.b64decode(answer["data"])
            assert line.endswith(b"\n") and line.count(b"\n") == 1
            rows.append(json.loads(line))
    return rows


def as_arrow_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Firehose's Hive JSON SerDe (TimestampFormats ["millis"]) does: epoch ms -> timestamp."""
    converted = []
    for row in rows:
        arrow_row = dict(row)
        for name in TIMESTAMP_FIELDS:
            if arrow_row[name] is not None:
                arrow_row[name] = datetime.fromtimestamp(arrow_row[name] / 1000, tz=UTC)
        converted.append(arrow_row)
    return converted


def test_kinesis_source_every_record_answered_once_with_its_reason(s3: Any) -> None:
    # Given a Kinesis-source batch mixing good and bad records
    event = load_fixture("kinesis_source_mixed.json")

    # When Firehose invokes the function
    response = handler(event, None)

    # Then every recordId is answered exactly once, in order
    sent_ids = [r["recordId"] for r in event["records"]]
    answered_ids = [r["recordId"] for r in response["records"]]
    assert answered_ids == sent_ids
    assert len(set(answered_ids)) == len(sent_ids)
    # And the good ones are Ok while each bad one failed
    expected = ["Ok" if e == "Ok" else "ProcessingFailed" for e in KINESIS_EXPECTED]
    assert outcomes(response) == expected
    # And a failed record carries its original data, unchanged
    for sent, answer in zip(event["records"], response["records"], strict=True):
        if answer["result"] == "ProcessingFailed":
            assert answer["data"] == sent["data"]
            assert "metadata" not in answer

    # And one rejects file lists every failure with its reason code
    files = rejects_objects(s3)
    assert len(files) == 1
    (key, lines), *_ = files.items()
    by_id = {line["recordId"]: line for line in lines}
    failed = {s["recordId"]: code for s, code in zip(event["records"], KINESIS_EXPECTED, strict=True) if code != "Ok"}
    assert {i: line["reason_code"] for i, line in by_id.items()} == failed
    assert key.startswith(f"{REJECTS_PREFIX}year=2025/month=03/day=01/") and key.endswith(".json")


def test_rejects_file_lines_carry_raw_bytes_and_source_position(s3: Any) -> None:
    # Given a Kinesis-source batch
    event = load_fixture("kinesis_source_mixed.json")

    # When it is transformed
    handler(event, None)

    # Then a rejected line has the raw record, the human reason, the event id and stream position
    (lines,) = rejects_objects(s3).values()
    sent = {r["recordId"]: r for r in event["records"]}
    invalid_ip = next(line for line in lines if line["reason_code"] == "invalid_ip")
    record = sent[invalid_ip["recordId"]]
    assert invalid_ip["raw_base64"] == record["data"]
    assert invalid_ip["event_id"] == "0190f5a1-0000-7000-8000-000000000016"
    assert "999.12.0.1" in invalid_ip["reason"]
    assert invalid_ip["approximate_arrival_timestamp"] == record["approximateArrivalTimestamp"]
    meta = record["kinesisRecordMetadata"]
    assert invalid_ip["source"] == {
        "stream_arn": event["sourceKinesisStreamArn"],
        "shard_id": meta["shardId"],
        "partition_key": meta["partitionKey"],
        "sequence_number": meta["sequenceNumber"],
        "subsequence_number": meta["subsequenceNumber"],
        "approximate_arrival_timestamp": meta["approximateArrivalTimestamp"],
    }
    # And a record too broken to have an event id says so
    not_json = next(line for line in lines if line["reason_code"] == "not_json")
    assert not_json["event_id"] is None


def test_good_records_convert_to_the_glue_derived_arrow_schema_without_dropping_a_field(s3: Any) -> None:
    # Given both source shapes
    rows = lake_rows(handler(load_fixture("kinesis_source_mixed.json"), None))
    rows += lake_rows(handler(load_fixture("direct_put_mixed.json"), None))

    # Then each output row has exactly the CLICKSTREAM_RAW fields
    assert len(rows) == KINESIS_EXPECTED.count("Ok") + DIRECT_PUT_EXPECTED.count("Ok")
    for row in rows:
        assert tuple(row) == CLICKSTREAM_RAW.field_names

    # And pyarrow converts them with the schema derived for the Glue table, losing no value
    table = pa.Table.from_pylist(as_arrow_rows(rows), schema=arrow_schema(CLICKSTREAM_RAW))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    back = pq.read_table(io.BytesIO(sink.getvalue()))
    assert back.schema.names == list(CLICKSTREAM_RAW.field_names)
    for original, stored in zip(as_arrow_rows(rows), back.to_pylist(), strict=True):
        props = stored.pop("properties")
        assert (dict(props) if props is not None else None) == original.pop("properties")
        assert stored == original


def test_partition_keys_come_from_event_time_in_utc(s3: Any) -> None:
    # Given events around midnight UTC, one sent with a +02:00 offset
    kinesis = handler(load_fixture("kinesis_source_mixed.json"), None)["records"]
    direct = handler(load_fixture("direct_put_mixed.json"), None)["records"]

    def keys(answer: dict[str, Any]) -> tuple[str, ...]:
        p = answer["metadata"]["partitionKeys"]
        assert set(p) == {f.name for f in CLICKSTREAM_RAW.partition_keys}
        return (p["year"], p["month"], p["day"], p["hour"])

    # Then the partition is the UTC hour of the event
    assert keys(kinesis[0]) == ("2025", "03", "01", "10")
    assert keys(kinesis[1]) == ("2025", "03", "01", "23")  # 2025-03-02T01:30+02:00
    assert keys(direct[0]) == ("2025", "03", "01", "23")  # 23:59:59.999Z
    assert keys(direct[1]) == ("2025", "03", "02", "00")  # 00:00:00.000Z


def test_output_row_is_normalised_and_enriched(s3: Any) -> None:
    # Given the Kinesis fixture
    event = load_fixture("kinesis_source_mixed.json")
    rows = lake_rows(handler(event, None))
    page_view, offset_click, ipv6, voice, bot = rows

    # Then event_time is UTC epoch ms, ingested_at the stream's arrival time
    assert page_view["event_time"] == 1740824130250  # 2025-03-01T10:15:30.250Z
    assert offset_click["event_time"] == 1740871800000  # 2025-03-01T23:30:00Z
    assert page_view["ingested_at"] == event["records"][0]["kinesisRecordMetadata"]["approximateArrivalTimestamp"]
    # And IPs are truncated (the default), referrer host and user agent derived
    assert page_view["ip"] == "203.0.113.0"
    assert ipv6["ip"] == "2001:db8:85a3::"
    assert page_view["referrer_host"] == "www.google.com"
    assert (page_view["ua_browser"], page_view["ua_browser_version"], page_view["ua_os"]) == (
        "Chrome",
        "124",
        "Windows",
    )
    assert (bot["ua_browser"], bot["ua_is_bot"]) == ("Googlebot", True)
    assert ipv6["ua_device"] == "iPhone" and ipv6["ua_is_bot"] is False
    # And absent optional fields are null, unknown fields gone
    assert voice["ip"] is None and voice["referrer_host"] is None and voice["user_id"] is None
    assert "device_serial" not in voice


def test_direct_put_uses_firehose_arrival_time_and_has_no_stream_position(s3: Any) -> None:
    # Given a Direct PUT batch
    event = load_fixture("direct_put_mixed.json")

    # When it is transformed
    response = handler(event, None)

    # Then outcomes match, ingested_at is Firehose's arrival time, IPv4-mapped becomes IPv4 /24
    assert outcomes(response) == ["Ok" if e == "Ok" else "ProcessingFailed" for e in DIRECT_PUT_EXPECTED]
    rows = lake_rows(response)
    assert rows[0]["ingested_at"] == event["records"][0]["approximateArrivalTimestamp"]
    assert rows[1]["ip"] == "198.51.100.0"
    (lines,) = rejects_objects(s3).values()
    assert sorted(line["reason_code"] for line in lines) == ["naive_timestamp", "not_object"]
    assert all(line["source"] is None for line in lines)


def test_oversize_record_is_rejected(s3: Any) -> None:
    # Given a batch whose second record is over 1 MiB (valid JSON otherwise)
    event = load_fixture("direct_put_mixed.json")
    big = event_bytes(properties={"blob": "x" * MAX_RECORD_BYTES})
    event["records"][1]["data"] = base64.b64encode(big).decode()

    # When it is transformed
    response = handler(event, None)

    # Then only that record fails for its size; its neighbours are unaffected
    assert outcomes(response)[:2] == ["Ok", "ProcessingFailed"]
    (lines,) = rejects_objects(s3).values()
    assert {line["reason_code"] for line in lines} >= {"oversize"}


def test_a_retried_invocation_overwrites_its_rejects_file(s3: Any) -> None:
    # Given a batch transformed once
    event = load_fixture("kinesis_source_mixed.json")
    handler(event, None)
    first = rejects_objects(s3)

    # When Firehose retries the same records under a new invocation id
    event["invocationId"] = "0d0d0d0d-1111-4222-8333-444444444444"
    handler(event, None)

    # Then the same key is rewritten: one file, no duplicate lines
    second = rejects_objects(s3)
    assert list(second) == list(first)
    (lines,) = second.values()
    assert len(lines) == len(KINESIS_EXPECTED) - KINESIS_EXPECTED.count("Ok")


def test_no_rejects_file_when_every_record_is_good(s3: Any) -> None:
    # Given a batch of only good records
    event = load_fixture("kinesis_source_mixed.json")
    event["records"] = event["records"][:5]

    # When it is transformed
    response = handler(event, None)

    # Then all are Ok and nothing is written
    assert outcomes(response) == ["Ok"] * 5
    assert rejects_objects(s3) == {}


def test_rejects_write_failure_still_answers_processing_failed(s3: Any, lambda_env: Callable[..., None]) -> None:
    # Given the rejects bucket does not exist (the write fails)
    lambda_env(REJECTS_BUCKET="no-such-bucket")
    event = load_fixture("kinesis_source_mixed.json")

    # When the batch is transformed
    response = handler(event, None)

    # Then the answers are the same as with a working bucket: Firehose keeps the raw records
    assert outcomes(response) == ["Ok" if e == "Ok" else "ProcessingFailed" for e in KINESIS_EXPECTED]
    assert rejects_objects(s3) == {}


def test_a_crash_on_one_record_fails_only_that_record(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the user-agent parser has a bug that crashes on Googlebot only
    real = enrich.user_agent_info

    def buggy(user_agent: str) -> enrich.UserAgentInfo:
        if "Googlebot" in user_agent:
            raise RuntimeError("parser bug")
        return real(user_agent)

    monkeypatch.setattr("lambdas.clickstream_transform.transform.user_agent_info", buggy)
    event = load_fixture("kinesis_source_mixed.json")

    # When the batch is transformed
    response = handler(event, None)

    # Then the Googlebot record fails as internal_error, and every other good record is Ok
    expected = ["Ok" if e == "Ok" else "ProcessingFailed" for e in KINESIS_EXPECTED]
    expected[4] = "ProcessingFailed"
    assert outcomes(response) == expected
    (lines,) = rejects_objects(s3).values()
    crash = next(line for line in lines if line["recordId"] == event["records"][4]["recordId"])
    assert crash["reason_code"] == "internal_error"
    assert "RuntimeError" in crash["reason"]


def test_broken_base64_is_rejected_not_crashed(s3: Any) -> None:
    # Given a record whose data is not base64 (never from Firehose, but a local runner may send it)
    event = load_fixture("direct_put_mixed.json")
    event["records"][0]["data"] = "not base64!!"

    # When it is transformed
    response = handler(event, None)

    # Then it fails with its own reason
    assert outcomes(response)[0] == "ProcessingFailed"
    (lines,) = rejects_objects(s3).values()
    assert collections.Counter(line["reason_code"] for line in lines)["not_base64"] == 1


def test_hash_mode_uses_the_secret_key_fetched_once(s3: Any, lambda_env: Callable[..., None]) -> None:
    # Given an HMAC key in Secrets Manager and the function configured to hash
    secrets = aws.secrets_client()
    arn = secrets.create_secret(Name="ip-hash-key", SecretString="k" * 32)["ARN"]
    lambda_env(IP_PROTECTION="hash", IP_HASH_SECRET_ARN=arn)

    # When two batches are transformed
    rows = lake_rows(handler(load_fixture("kinesis_source_mixed.json"), None))
    # (the key is cached: deleting the secret does not affect the next batch)
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    again = lake_rows(handler(load_fixture("kinesis_source_mixed.json"), None))

    # Then IPs are the keyed hash of the address, the same across batches
    expected = enrich.hashing_protector(b"k" * 32)("203.0.113.77")
    assert rows[0]["ip"] == expected == again[0]["ip"]
    assert len(expected) == 64 and "203.0.113" not in expected


def test_hash_mode_without_secret_arn_is_a_configuration_error(lambda_env: Callable[..., None]) -> None:
    # Given hash protection but no secret configured
    lambda_env(IP_PROTECTION="hash")

    # Then the invocation fails loudly instead of storing raw or unkeyed addresses
    with pytest.raises(SettingsError, match="IP_HASH_SECRET_ARN"):
        handler(load_fixture("direct_put_mixed.json"), None)


def test_none_mode_keeps_the_address(s3: Any, lambda_env: Callable[..., None]) -> None:
    # Given protection switched off
    lambda_env(IP_PROTECTION="none")

    # When a batch is transformed
    rows = lake_rows(handler(load_fixture("kinesis_source_mixed.json"), None))

    # Then the address is stored as sent
    assert rows[0]["ip"] == "203.0.113.77"


def test_one_structured_log_line_per_rejected_record(s3: Any) -> None:
    # Given a Kinesis-source batch with rejections, and the function's log stream captured
    event = load_fixture("kinesis_source_mixed.json")
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(transform_handler.logger.registered_formatter)
    function_logger = logging.getLogger(transform_handler.logger.name)  # what the Logger writes through
    function_logger.addHandler(capture)

    # When it is transformed
    try:
        handler(event, None)
    finally:
        function_logger.removeHandler(capture)

    # Then each rejected record has one JSON log line with its reason code, and no raw payload
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    rejected = [line for line in lines if line["message"] == "clickstream record rejected"]
    expected = collections.Counter(code for code in KINESIS_EXPECTED if code != "Ok")
    assert collections.Counter(line["reason_code"] for line in rejected) == expected
    assert all(line["invocation_id"] == event["invocationId"] for line in rejected)
    assert not any("raw_base64" in line or "data" in line for line in rejected)
