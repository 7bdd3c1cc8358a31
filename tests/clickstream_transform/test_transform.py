"""The domain transform, called directly as the local runtime does."""

from __future__ import annotations

import json

import pytest

from lambdas.clickstream_transform.firehose import FirehoseRecord, parse_event
from lambdas.clickstream_transform.rejects import rejects_key
from lambdas.clickstream_transform.settings import Settings, SettingsError
from lambdas.clickstream_transform.transform import (
    Transformed,
    partition_keys,
    transform_event,
    transform_event_safely,
)
from platform_core.enrich import truncate_ip
from platform_core.names import CLICKSTREAM_REJECTS_PREFIX
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from platform_core.validation import ReasonCode, Rejection
from tests.clickstream_transform.conftest import NOW_MS, event_bytes, load_fixture


def transformed(raw: bytes, ingested_at_ms: int | None = 1740824131000) -> Transformed:
    outcome = transform_event(raw, ingested_at_ms=ingested_at_ms, now_ms=NOW_MS, protect_ip=truncate_ip)
    assert isinstance(outcome, Transformed), outcome
    return outcome


def test_output_is_one_compact_json_line_with_exactly_the_raw_schema_keys() -> None:
    outcome = transformed(event_bytes(unknown_field="dropped"))

    row = json.loads(outcome.line)
    compact = json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    assert outcome.line == compact
    assert tuple(row) == CLICKSTREAM_RAW.field_names
    assert outcome.event_id == row["event_id"]


def test_timestamps_are_epoch_milliseconds_for_the_hive_serde() -> None:
    row = json.loads(transformed(event_bytes(event_time="2025-03-01T12:15:30.250+02:00")).line)
    assert row["event_time"] == 1740824130250
    assert row["ingested_at"] == 1740824131000


def test_missing_user_agent_leaves_all_user_agent_columns_null() -> None:
    row = json.loads(transformed(event_bytes(user_agent=None)).line)
    assert [row[k] for k in ("ua_browser", "ua_browser_version", "ua_os", "ua_device", "ua_is_bot")] == [None] * 5


@pytest.mark.parametrize(
    ("event_time", "keys"),
    [
        ("2025-03-01T23:59:59.999Z", ("2025", "03", "01", "23")),
        ("2025-03-02T00:00:00Z", ("2025", "03", "02", "00")),
        ("2025-03-02T01:30:00+02:00", ("2025", "03", "01", "23")),
        ("2024-12-31T23:30:00-01:00", ("2025", "01", "01", "00")),
        ("2024-02-29T08:00:00Z", ("2024", "02", "29", "08")),
    ],
)
def test_partition_keys_are_the_utc_hour_of_the_event(event_time: str, keys: tuple[str, ...]) -> None:
    outcome = transformed(event_bytes(event_time=event_time))
    p = outcome.partition_keys
    assert (p["year"], p["month"], p["day"], p["hour"]) == keys
    assert list(p) == [f.name for f in CLICKSTREAM_RAW.partition_keys]


def test_partition_keys_of_epoch_ms_directly() -> None:
    assert dict(partition_keys(1740873599999)) == {"year": "2025", "month": "03", "day": "01", "hour": "23"}
    assert dict(partition_keys(1740873600000)) == {"year": "2025", "month": "03", "day": "02", "hour": "00"}


def keep(text: str) -> str:
    return text


def test_a_rejection_says_why_for_a_local_runner() -> None:
    outcome = transform_event(event_bytes(event_type="teleport"), ingested_at_ms=None, now_ms=NOW_MS, protect_ip=keep)
    assert isinstance(outcome, Rejection)
    assert outcome.code is ReasonCode.UNKNOWN_EVENT_TYPE


def test_a_crash_becomes_an_internal_error_rejection() -> None:
    def broken_protector(text: str) -> str:
        raise ZeroDivisionError("boom")

    outcome = transform_event_safely(event_bytes(), ingested_at_ms=None, now_ms=NOW_MS, protect_ip=broken_protector)

    assert isinstance(outcome, Rejection)
    assert outcome.code is ReasonCode.INTERNAL_ERROR
    assert outcome.message == "ZeroDivisionError: boom"


def test_firehose_records_parse_both_source_shapes() -> None:
    kinesis = parse_event(load_fixture("kinesis_source_mixed.json"))
    direct = parse_event(load_fixture("direct_put_mixed.json"))

    assert kinesis.source_kinesis_stream_arn is not None and direct.source_kinesis_stream_arn is None
    first = kinesis.records[0]
    assert first.kinesis is not None and first.kinesis.shard_id == "shardId-000000000002"
    assert first.ingested_at_ms == first.kinesis.approximate_arrival_timestamp != first.approximate_arrival_timestamp
    assert direct.records[0].kinesis is None
    assert direct.records[0].ingested_at_ms == direct.records[0].approximate_arrival_timestamp
    # KPL de-aggregated records share a sequence number and differ by subsequence number
    three, four = kinesis.records[3].kinesis, kinesis.records[4].kinesis
    assert three is not None and four is not None
    assert three.sequence_number == four.sequence_number
    assert (three.subsequence_number, four.subsequence_number) == (0, 1)


def test_kinesis_arrival_time_given_as_iso_text_is_understood() -> None:
    # Some AWS documentation samples show this field as ISO-8601 text rather than epoch ms.
    event = load_fixture("kinesis_source_mixed.json")
    event["records"][0]["kinesisRecordMetadata"]["approximateArrivalTimestamp"] = "2012-04-23T18:25:43.511Z"
    record: FirehoseRecord = parse_event(event).records[0]
    assert record.ingested_at_ms == 1335205543511


def test_rejects_key_depends_on_the_records_not_the_invocation() -> None:
    event = load_fixture("kinesis_source_mixed.json")
    key = rejects_key(parse_event(event), prefix=CLICKSTREAM_REJECTS_PREFIX)

    event["invocationId"] = "another-invocation"
    event["records"].reverse()
    assert rejects_key(parse_event(event), prefix=CLICKSTREAM_REJECTS_PREFIX) == key

    event["records"].pop()
    assert rejects_key(parse_event(event), prefix=CLICKSTREAM_REJECTS_PREFIX) != key
    assert key.startswith("errors/clickstream/rejected/year=2025/month=03/day=01/")


def test_settings_from_environment() -> None:
    settings = Settings.from_env({"REJECTS_BUCKET": "b", "IP_PROTECTION": "HASH", "IP_HASH_SECRET_ARN": "arn:x"})
    assert settings.ip_protection == "hash"
    assert settings.rejects_prefix == CLICKSTREAM_REJECTS_PREFIX
    assert Settings.from_env({"REJECTS_BUCKET": "b", "REJECTS_PREFIX": "/custom/p"}).rejects_prefix == "custom/p/"
    assert Settings.from_env({"REJECTS_BUCKET": "b"}).ip_protection == "truncate"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "REJECTS_BUCKET"),
        ({"REJECTS_BUCKET": "b", "IP_PROTECTION": "scramble"}, "IP_PROTECTION"),
        ({"REJECTS_BUCKET": "b", "IP_PROTECTION": "hash"}, "IP_HASH_SECRET_ARN"),
    ],
)
def test_misconfiguration_is_refused(env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        Settings.from_env(env)
