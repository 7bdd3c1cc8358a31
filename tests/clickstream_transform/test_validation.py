"""The clickstream validator: every contract rule, with its reason code."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from platform_core.schemas.clickstream import CLICKSTREAM_EVENT, MAX_FUTURE_SKEW_MS, MAX_RECORD_BYTES
from platform_core.validation import (
    ReasonCode,
    Rejection,
    ValidatedEvent,
    decode_json_object,
    parse_clickstream_event,
    strict_json_loads,
    validate_clickstream_event,
)
from tests.clickstream_transform.conftest import NOW_MS, event_bytes


def validate(**fields: Any) -> ValidatedEvent | Rejection:
    return parse_clickstream_event(event_bytes(**fields), now_ms=NOW_MS)


def rejection(**fields: Any) -> Rejection:
    outcome = validate(**fields)
    assert isinstance(outcome, Rejection), outcome
    return outcome


def accepted(**fields: Any) -> ValidatedEvent:
    outcome = validate(**fields)
    assert isinstance(outcome, ValidatedEvent), outcome
    return outcome


def test_a_complete_event_is_accepted_with_all_schema_fields() -> None:
    # When a valid event is validated
    event = accepted()

    # Then its fields are exactly the schema's, in order, and event_time is normalised
    assert tuple(event.fields) == CLICKSTREAM_EVENT.field_names
    assert event.event_time_ms == 1740824130250
    assert str(event.ip_address) == "192.0.2.55"


@pytest.mark.parametrize("absent", [f.name for f in CLICKSTREAM_EVENT.fields if not f.required], ids=lambda name: name)
@pytest.mark.parametrize("how", ["absent", "null"])
def test_optional_fields_may_be_absent_or_null(absent: str, how: str) -> None:
    # Given an event without one optional field (absent, or explicitly null)
    raw = json.loads(event_bytes())
    if how == "absent":
        del raw[absent]
    else:
        raw[absent] = None

    # Then it is accepted, with that field null
    event = validate_clickstream_event(raw, now_ms=NOW_MS)
    assert isinstance(event, ValidatedEvent)
    assert event.fields[absent] is None


@pytest.mark.parametrize("required", CLICKSTREAM_EVENT.required_names)
def test_required_fields_missing_or_null_are_rejected(required: str) -> None:
    raw = json.loads(event_bytes())
    raw[required] = None
    outcome = validate_clickstream_event(raw, now_ms=NOW_MS)
    assert isinstance(outcome, Rejection)
    assert outcome.code is ReasonCode.MISSING_FIELD
    assert outcome.message == f"{required}: required field missing"


@pytest.mark.parametrize(
    ("fields", "code", "in_message"),
    [
        ({"event_id": ""}, ReasonCode.EMPTY_FIELD, "event_id"),
        ({"session_id": "   "}, ReasonCode.EMPTY_FIELD, "session_id"),
        ({"session_id": 42}, ReasonCode.WRONG_TYPE, "session_id: expected string, got number"),
        ({"user_id": 1234}, ReasonCode.WRONG_TYPE, "user_id"),
        ({"event_type": True}, ReasonCode.WRONG_TYPE, "event_type: expected string, got boolean"),
        ({"event_type": "teleport"}, ReasonCode.UNKNOWN_EVENT_TYPE, "teleport"),
        ({"event_time": "yesterday"}, ReasonCode.UNPARSEABLE_TIMESTAMP, "yesterday"),
        ({"event_time": "2025-02-30T10:00:00Z"}, ReasonCode.UNPARSEABLE_TIMESTAMP, "2025-02-30"),
        ({"event_time": "2025-03-01T10:00:00"}, ReasonCode.NAIVE_TIMESTAMP, "no zone"),
        ({"event_time": "2025-03-01"}, ReasonCode.NAIVE_TIMESTAMP, "no zone"),
        ({"event_time": "1999-12-31T23:59:59.999Z"}, ReasonCode.ABSURD_TIMESTAMP, "before 2000-01-01"),
        ({"event_time": 1740824130}, ReasonCode.ABSURD_TIMESTAMP, "epoch seconds?"),
        ({"event_time": -5}, ReasonCode.ABSURD_TIMESTAMP, "-5"),
        ({"event_time": 10**30}, ReasonCode.ABSURD_TIMESTAMP, "future"),
        ({"event_time": 1740824130250.5}, ReasonCode.WRONG_TYPE, "integer epoch milliseconds"),
        ({"event_time": True}, ReasonCode.WRONG_TYPE, "event_time"),
        ({"event_time": {"ms": 1}}, ReasonCode.WRONG_TYPE, "event_time"),
        ({"ip": "999.1.1.1"}, ReasonCode.INVALID_IP, "999.1.1.1"),
        ({"ip": "10.0.0.1/24"}, ReasonCode.INVALID_IP, "10.0.0.1/24"),
        ({"ip": "localhost"}, ReasonCode.INVALID_IP, "localhost"),
        ({"ip": 167772161}, ReasonCode.WRONG_TYPE, "ip: expected string"),
        ({"request": "GET /"}, ReasonCode.WRONG_TYPE, "request: expected object, got string"),
        ({"request": {"status": "200"}}, ReasonCode.WRONG_TYPE, "request.status: expected int"),
        (
            {"request": {"status": 2**31}},
            ReasonCode.WRONG_TYPE,
            "request.status: integer out of 32-bit range",
        ),
        ({"request": {"latency_ms": "fast"}}, ReasonCode.WRONG_TYPE, "request.latency_ms"),
        (
            {"request": {"latency_ms": 10**400}},
            ReasonCode.WRONG_TYPE,
            "request.latency_ms: number out of range",
        ),
        ({"properties": ["a", "b"]}, ReasonCode.WRONG_TYPE, "properties: expected object"),
        ({"properties": {"n": 3}}, ReasonCode.WRONG_TYPE, "properties.n: expected string, got number"),
    ],
)
def test_contract_violations_are_rejected_with_a_specific_code(
    fields: dict[str, Any], code: ReasonCode, in_message: str
) -> None:
    # When an event breaking one rule is validated
    outcome = rejection(**fields)

    # Then it is rejected with that rule's code, a message naming the problem, and its event id
    assert outcome.code is code
    assert in_message in outcome.message
    if "event_id" not in fields:
        assert outcome.event_id == "0190f5a1-0000-7000-8000-0000000000aa"


@pytest.mark.parametrize(
    ("event_time", "expected_ms"),
    [
        ("2025-03-01T10:15:30.250Z", 1740824130250),
        ("2025-03-01T12:15:30.250+02:00", 1740824130250),
        ("2025-03-01T05:15:30.250-05:00", 1740824130250),
        ("2025-03-01T10:15:30.250999+00:00", 1740824130250),  # sub-millisecond digits truncated
        ("20250301T101530Z", 1740824130000),
        (1740824130250, 1740824130250),
        ("2000-01-01T00:00:00Z", 946684800000),  # the lower bound itself
    ],
)
def test_event_time_is_normalised_to_utc_epoch_ms(event_time: Any, expected_ms: int) -> None:
    assert accepted(event_time=event_time).event_time_ms == expected_ms


def test_event_time_may_be_up_to_one_day_ahead_of_now() -> None:
    assert accepted(event_time=NOW_MS + MAX_FUTURE_SKEW_MS).event_time_ms == NOW_MS + MAX_FUTURE_SKEW_MS
    assert rejection(event_time=NOW_MS + MAX_FUTURE_SKEW_MS + 1).code is ReasonCode.ABSURD_TIMESTAMP


@pytest.mark.parametrize("ip", ["203.0.113.9", "2001:db8::1", "::ffff:192.0.2.1", "fe80::1%eth0", "::1"])
def test_valid_ipv4_and_ipv6_addresses_are_accepted(ip: str) -> None:
    assert accepted(ip=ip).fields["ip"] == ip


def test_unknown_fields_are_ignored_and_not_carried() -> None:
    # Given an event with a field the schema does not have, and a struct member it does not declare
    raw = json.loads(event_bytes())
    raw["brand_new_field"] = {"nested": True}
    raw["request"]["tls_version"] = "1.3"

    # When it is validated
    event = validate_clickstream_event(raw, now_ms=NOW_MS)

    # Then it is accepted (forward compatibility) and carries only declared fields
    assert isinstance(event, ValidatedEvent)
    assert "brand_new_field" not in event.fields
    assert set(event.fields["request"]) == {"method", "path", "query", "status", "latency_ms"}


def test_integer_latency_becomes_a_double() -> None:
    event = accepted(request={"method": "GET", "status": 200, "latency_ms": 12})
    latency = event.fields["request"]["latency_ms"]
    assert latency == 12.0 and type(latency) is float


def test_null_map_values_and_empty_map_are_accepted() -> None:
    assert accepted(properties={"a": None}).fields["properties"] == {"a": None}
    assert accepted(properties={}).fields["properties"] == {}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe{}", ReasonCode.NOT_UTF8),
        (b'{"event_id": "a"', ReasonCode.NOT_JSON),
        (b"", ReasonCode.NOT_JSON),
        (b'{"a": NaN}', ReasonCode.NOT_JSON),
        (b'{"a": Infinity}', ReasonCode.NOT_JSON),
        (b'{"a": 1e999}', ReasonCode.NOT_JSON),
        (b'{"a": "\\ud800"}', ReasonCode.NOT_JSON),
        (b"[" * 100_000 + b"]" * 100_000, ReasonCode.NOT_JSON),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, ReasonCode.NOT_JSON),
        (b"\xef\xbb\xbf{}", ReasonCode.NOT_JSON),  # a UTF-8 byte-order mark is not JSON
        (b"[1, 2]", ReasonCode.NOT_OBJECT),
        (b'"text"', ReasonCode.NOT_OBJECT),
        (b"null", ReasonCode.NOT_OBJECT),
        (b"42", ReasonCode.NOT_OBJECT),
    ],
)
@pytest.mark.parametrize("decoder", ["stdlib", "msgspec"])
def test_undecodable_records_are_rejected_alike_by_both_decoders(raw: bytes, code: ReasonCode, decoder: str) -> None:
    # The Lambda decodes with msgspec, the rest of the platform with the strict stdlib decoder:
    # both must reject the same documents for the same reason.
    loads = strict_json_loads if decoder == "stdlib" else msgspec.json.Decoder().decode
    outcome = decode_json_object(raw, loads=loads)
    assert isinstance(outcome, Rejection)
    assert outcome.code is code


@pytest.mark.parametrize(
    "document",
    [
        '{"a": "\\ud83d\\ude00", "b": "\\u00e9"}',  # a valid surrogate pair and a plain escape
        '{"big": 123456789012345678901234567890, "neg": -0, "f": 1.5e300}',
        '{"a": 1, "a": 2}',
    ],
)
def test_both_decoders_agree_on_unusual_but_valid_json(document: str) -> None:
    assert strict_json_loads(document) == msgspec.json.decode(document)


def test_oversize_is_checked_before_decoding() -> None:
    raw = event_bytes(properties={"blob": "x" * MAX_RECORD_BYTES})
    outcome = parse_clickstream_event(raw, now_ms=NOW_MS)
    assert isinstance(outcome, Rejection)
    assert outcome.code is ReasonCode.OVERSIZE
    assert str(MAX_RECORD_BYTES) in outcome.message


def test_a_record_of_exactly_the_limit_is_not_oversize() -> None:
    padding = MAX_RECORD_BYTES - len(event_bytes(properties={"blob": ""}))
    raw = event_bytes(properties={"blob": "x" * padding})
    assert len(raw) == MAX_RECORD_BYTES
    assert isinstance(parse_clickstream_event(raw, now_ms=NOW_MS), ValidatedEvent)


def test_reason_codes_are_unique_snake_case_strings() -> None:
    values = [code.value for code in ReasonCode]
    assert len(values) == len(set(values))
    assert all(v == v.lower() and " " not in v for v in values)
    assert json.dumps(ReasonCode.MISSING_FIELD) == '"missing_field"'
