"""Validation of clickstream events against the contract (ARCHITECTURE.md, "Clickstream event").

Used by the Firehose transformation Lambda, the collector's tests and the local runtime, so that
all of them accept and reject exactly the same events for exactly the same reasons.

Which fields exist, which are required and what type each has come from
:data:`~platform_core.schemas.clickstream.CLICKSTREAM_EVENT` (structure via
:func:`platform_core.schema.type_errors`); this module adds only what a type cannot say: the
meaning of ``event_time``, the known ``event_type`` values, the shape of ``ip`` and that required
strings are not blank.

Forward compatibility: unknown top-level fields are **ignored**, not rejected, so that a producer
can start sending a new field before every consumer knows it. They are also not carried into the
validated event (the lake's schema decides what is kept); adding a field to the schema is what
makes it flow through.

Every rejection carries a :class:`ReasonCode` (stable, machine-friendly; dashboards and tests
match on it) and a human message (free text that may change; never match on it).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from platform_core.schema import Field, FieldType, MapOf, Primitive, StructOf, _json_kind, type_errors
from platform_core.schemas.clickstream import (
    CLICKSTREAM_EVENT,
    EVENT_TYPES,
    MAX_FUTURE_SKEW_MS,
    MAX_RECORD_BYTES,
    MIN_EVENT_TIME_MS,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
JsonLoads = Callable[[str], Any]
"""A JSON decoder: takes text, returns the decoded value, raises ``ValueError`` when malformed."""


class ReasonCode(enum.StrEnum):
    """Why a record was rejected. The values are part of the rejects file's contract."""

    NOT_BASE64 = "not_base64"  # the transport's base64 envelope is broken
    OVERSIZE = "oversize"  # larger than MAX_RECORD_BYTES
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"  # malformed JSON, NaN/Infinity, numbers out of range, lone surrogates
    NOT_OBJECT = "not_object"  # valid JSON but not an object
    MISSING_FIELD = "missing_field"  # a required field is absent or null
    EMPTY_FIELD = "empty_field"  # a required string is empty or blank
    WRONG_TYPE = "wrong_type"  # the value does not fit the schema's type (members, ranges included)
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    NAIVE_TIMESTAMP = "naive_timestamp"  # ISO-8601 without a zone: the instant is ambiguous
    ABSURD_TIMESTAMP = "absurd_timestamp"  # before 2000-01-01 or more than a day in the future
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    INVALID_IP = "invalid_ip"
    INTERNAL_ERROR = "internal_error"  # our bug, not the producer's: the record itself may be fine


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that does not meet the contract, and why."""

    code: ReasonCode
    message: str
    event_id: str | None = None  # when the record had a usable one, to help find its producer


@dataclass(frozen=True, slots=True)
class ValidatedEvent:
    """An event that meets the contract.

    ``fields`` holds exactly the CLICKSTREAM_EVENT fields in schema order (absent ones as None),
    with values as sent except that structs keep only their declared members and integers where
    a double is declared become floats. ``event_time_ms`` is the event time as UTC epoch
    milliseconds (``fields["event_time"]`` still holds what was sent) and ``ip_address`` the parsed
    ``ip`` (None when absent).
    """

    fields: dict[str, Any]
    event_time_ms: int
    ip_address: IPAddress | None


ValidationOutcome = ValidatedEvent | Rejection

# The fields with a meaning beyond their type. Looking them up in the schema fails at import if
# the schema ever renames one, instead of silently never checking it.
EVENT_ID: Final = CLICKSTREAM_EVENT.field("event_id").name
EVENT_TIME: Final = CLICKSTREAM_EVENT.field("event_time").name
EVENT_TYPE: Final = CLICKSTREAM_EVENT.field("event_type").name
IP: Final = CLICKSTREAM_EVENT.field("ip").name

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# Integers in this range are plausible epoch *seconds* (2000 .. 5138): worth a hint in the message.
_EPOCH_SECONDS_RANGE = range(MIN_EVENT_TIME_MS // 1000, 10**11)


# ---------------------------------------------------------------------------------------------
# Bytes -> JSON object
# ---------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def strict_json_loads(text: str) -> Any:
    """The standard library's JSON decoder made as strict as msgspec's.

    It refuses NaN/Infinity, numbers that overflow a double and lone UTF-16 surrogates (which no
    UTF-8 writer downstream can encode), so that every decoder the platform uses accepts the same
    documents.
    """
    value = _STRICT_DECODER.decode(text)
    # Only a backslash-u escape can produce a lone surrogate; most events have none, so the
    # costly check runs rarely.
    if "\\u" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("string contains a lone UTF-16 surrogate escape") from None
    return value


def decode_json_object(raw: bytes, *, loads: JsonLoads = strict_json_loads) -> dict[str, Any] | Rejection:
    """Check size, UTF-8 and JSON syntax, and that the document is an object.

    ``loads`` lets a hot path plug in a faster decoder with the same strictness (the Lambda passes
    ``msgspec.json.decode``); it must raise ``ValueError`` on malformed input.
    """
    if len(raw) > MAX_RECORD_BYTES:
        return Rejection(ReasonCode.OVERSIZE, f"record is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(ReasonCode.NOT_UTF8, f"not valid UTF-8 at byte {exc.start}")
    try:
        value = loads(text)
    except ValueError as exc:  # json.JSONDecodeError and msgspec.DecodeError are ValueErrors
        return Rejection(ReasonCode.NOT_JSON, f"not valid JSON: {exc}"[:300])
    except RecursionError:  # both decoders give up on absurd nesting the same way
        return Rejection(ReasonCode.NOT_JSON, "not valid JSON: nested too deeply")
    if not isinstance(value, dict):
        return Rejection(ReasonCode.NOT_OBJECT, f"expected a JSON object, got {_json_kind(value)}")
    return value


def parse_clickstream_event(raw: bytes, *, now_ms: int, loads: JsonLoads = strict_json_loads) -> ValidationOutcome:
    """Bytes as a producer sent them -> a validated event or the reason it is rejected."""
    decoded = decode_json_object(raw, loads=loads)
    if isinstance(decoded, Rejection):
        return decoded
    return validate_clickstream_event(decoded, now_ms=now_ms)


# ---------------------------------------------------------------------------------------------
# JSON object -> validated event
# ---------------------------------------------------------------------------------------------


class _FieldError(Exception):
    """Raised by a field check; carries the rejection's code and message."""

    def __init__(self, code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_clickstream_event(obj: Any, *, now_ms: int) -> ValidationOutcome:
    """Check a decoded event against CLICKSTREAM_EVENT and the contract.

    ``now_ms`` (UTC epoch milliseconds) bounds how far in the future ``event_time`` may be; it is
    a parameter so that a batch is judged against one instant and tests are deterministic.
    Fields are checked in schema order and the first problem found is reported.
    """
    if not isinstance(obj, dict):
        return Rejection(ReasonCode.NOT_OBJECT, f"expected a JSON object, got {_json_kind(obj)}")
    raw_id = obj.get(EVENT_ID)
    event_id = raw_id if isinstance(raw_id, str) and raw_id.strip() else None
    try:
        fields: dict[str, Any] = {}
        for plan in _PLANS:
            # The common case inline (this runs ten times per event); anything unusual (absent,
            # not fitting, blank) goes through _checked_value, which finds the exact problem.
            value = obj.get(plan.name)
            if value is None or not plan.fits(value) or (plan.not_blank and not value.strip()):
                value = _checked_value(plan, value)
            elif plan.normalise is not None:
                value = plan.normalise(value)
            fields[plan.name] = value
        event_time_ms = _event_time_ms(fields[EVENT_TIME], now_ms)
        if fields[EVENT_TYPE] not in EVENT_TYPES:
            raise _FieldError(
                ReasonCode.UNKNOWN_EVENT_TYPE,
                f"{EVENT_TYPE}: {_quote(fields[EVENT_TYPE])} is not a known type",
            )
        ip = fields[IP]
        ip_address = None if ip is None else _ip_address(ip)
    except _FieldError as invalid:
        return Rejection(invalid.code, invalid.message, event_id)
    return ValidatedEvent(fields, event_time_ms, ip_address)


def _checked_value(plan: _FieldPlan, value: Any) -> Any:
    """The value of one field, checked against its schema type and normalised."""
    if value is None:
        if plan.required:
            raise _FieldError(ReasonCode.MISSING_FIELD, f"{plan.name}: required field missing")
        return None
    # type_errors is the authority; the compiled test only saves calling it for values that fit.
    if not plan.fits(value) and (problems := type_errors(value, plan.type, plan.name)):
        raise _FieldError(ReasonCode.WRONG_TYPE, problems[0])
    if plan.not_blank and not value.strip():
        raise _FieldError(ReasonCode.EMPTY_FIELD, f"{plan.name}: must not be empty or blank")
    return value if plan.normalise is None else plan.normalise(value)


# ---------------------------------------------------------------------------------------------
# Field plans: what the schema says about each field, worked out once at import
# ---------------------------------------------------------------------------------------------

Check = Callable[[Any], bool]
Normalise = Callable[[Any], Any]

_INT32 = 2**31
_INT64 = 2**63


def _is_str(v: Any) -> bool:
    return type(v) is str


def _is_int32(v: Any) -> bool:
    return type(v) is int and -_INT32 <= v < _INT32


def _is_int64(v: Any) -> bool:
    return type(v) is int and -_INT64 <= v < _INT64


def _is_number(v: Any) -> bool:
    return type(v) is float or type(v) is int


def _is_bool(v: Any) -> bool:
    return type(v) is bool


def _is_timestamp_like(v: Any) -> bool:
    return type(v) is str or type(v) is int or type(v) is float


# Exact-type tests (no bool-as-int, no subclasses): each accepts only what type_errors accepts.
_FITS: dict[Primitive, Check] = {
    Primitive.STRING: _is_str,
    Primitive.INT: _is_int32,
    Primitive.LONG: _is_int64,
    Primitive.DOUBLE: _is_number,
    Primitive.BOOLEAN: _is_bool,
    Primitive.TIMESTAMP: _is_timestamp_like,
    Primitive.DATE: _is_str,
}


def fits(t: FieldType) -> Check:
    """A fast test that a JSON value fits ``t``.

    True guarantees ``type_errors(value, t, ...)`` is empty; False only means "ask type_errors",
    which has the exact message (and the last word).
    """
    if isinstance(t, Primitive):
        return _FITS[t]
    if isinstance(t, MapOf):
        value_fits = _FITS[t.values]
        return lambda v: type(v) is dict and all(x is None or value_fits(x) for x in v.values())
    members = tuple((m.name, m.required, fits(m.type)) for m in t.fields)

    def struct_fits(v: Any) -> bool:
        if type(v) is not dict:
            return False
        for name, required, member_fits in members:
            x = v.get(name)
            if x is None:
                if required:
                    return False
            elif not member_fits(x):
                return False
        return True

    return struct_fits


def _normaliser(t: FieldType, path: str) -> Normalise | None:
    """How a value that fits ``t`` is normalised, or None when it is kept as sent.

    A struct keeps only its declared members (the Parquet writer would drop the others anyway;
    dropping them here keeps every consumer's view identical); a JSON integer where a double is
    declared becomes a float.
    """
    if t is Primitive.DOUBLE:
        return lambda v: _as_float(v, path)
    if isinstance(t, MapOf):
        if t.values is not Primitive.DOUBLE:
            return None
        return lambda v: {k: None if x is None else _as_float(x, f"{path}.{k}") for k, x in v.items()}
    if isinstance(t, StructOf):
        members = tuple((m.name, _normaliser(m.type, f"{path}.{m.name}")) for m in t.fields)
        return lambda v: {
            name: x if (x := v.get(name)) is None or normalise is None else normalise(x) for name, normalise in members
        }
    return None


def _as_float(value: Any, path: str) -> Any:
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _FieldError(ReasonCode.WRONG_TYPE, f"{path}: number out of range") from None
    return value


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    type: FieldType
    required: bool
    fits: Check
    not_blank: bool  # required strings must carry something
    normalise: Normalise | None


def _plan(f: Field) -> _FieldPlan:
    return _FieldPlan(
        name=f.name,
        type=f.type,
        required=f.required,
        fits=fits(f.type),
        not_blank=f.required and f.type is Primitive.STRING,
        normalise=_normaliser(f.type, f.name),
    )


_PLANS: tuple[_FieldPlan, ...] = tuple(_plan(f) for f in CLICKSTREAM_EVENT.fields)


def _event_time_ms(value: Any, now_ms: int) -> int:
    """UTC epoch milliseconds of an ISO-8601-with-zone string or an epoch-milliseconds integer."""
    if isinstance(value, str):
        ms = _iso_to_epoch_ms(value)
    elif isinstance(value, int):  # bool was already refused by the type check
        ms = value
    else:
        raise _FieldError(
            ReasonCode.WRONG_TYPE,
            f"{EVENT_TIME}: expected ISO-8601 text with zone or integer epoch milliseconds, got {value!r}",
        )
    if not MIN_EVENT_TIME_MS <= ms <= now_ms + MAX_FUTURE_SKEW_MS:
        hint = (
            " (epoch seconds? expected milliseconds)" if isinstance(value, int) and ms in _EPOCH_SECONDS_RANGE else ""
        )
        raise _FieldError(
            ReasonCode.ABSURD_TIMESTAMP,
            f"{EVENT_TIME}: {_quote(value)} is before 2000-01-01 or more than a day in the future{hint}",
        )
    return ms


def _iso_to_epoch_ms(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _FieldError(
            ReasonCode.UNPARSEABLE_TIMESTAMP, f"{EVENT_TIME}: {_quote(text)} is not ISO-8601 date-time"
        ) from None
    if parsed.tzinfo is None:
        raise _FieldError(
            ReasonCode.NAIVE_TIMESTAMP,
            f"{EVENT_TIME}: {_quote(text)} has no zone offset (add Z or +hh:mm)",
        )
    # Exact integer arithmetic: float seconds would round some instants to the wrong millisecond.
    return (parsed - _EPOCH) // _ONE_MS


@functools.lru_cache(maxsize=8192)
def _parse_ip(text: str) -> IPAddress | None:
    # Sessions send many events from one address: the cache turns most parses into a lookup.
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ip_address(text: str) -> IPAddress:
    address = _parse_ip(text)
    if address is None:
        raise _FieldError(ReasonCode.INVALID_IP, f"{IP}: {_quote(text)} is not an IPv4 or IPv6 address")
    return address


def _quote(value: Any) -> str:
    """A short, safe rendering of a producer's value inside a message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
