"""A clickstream event as producers send it -> a row of the raw lake.

Validate against the contract, normalise ``event_time`` to UTC epoch milliseconds (Firehose's Hive
JSON deserialiser reads timestamps as ``millis``), enrich (user agent, referrer host, protected
IP, ingestion time) and serialise as one compact JSON line whose keys are exactly the
CLICKSTREAM_RAW fields, plus the hourly partition keys for Firehose's dynamic partitioning.

Knows nothing about Firehose or Lambda: input is the record's bytes, output a
:data:`TransformOutcome`, so the local runtime calls the very same function and gets the reason
for every rejection.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from platform_core.enrich import (
    UNKNOWN_USER_AGENT,
    IpProtector,
    referrer_host,
    user_agent_info,
)
from platform_core.schemas.clickstream import CLICKSTREAM_EVENT, CLICKSTREAM_RAW
from platform_core.validation import (
    EVENT_ID,
    EVENT_TIME,
    IP,
    ReasonCode,
    Rejection,
    ValidatedEvent,
    parse_clickstream_event,
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Transformed:
    """A valid event, ready for the lake."""

    line: bytes  # compact JSON of the CLICKSTREAM_RAW row, newline-terminated
    partition_keys: Mapping[str, str]  # year, month, day, hour of event_time (UTC)
    event_id: str


TransformOutcome = Transformed | Rejection

# Field names, looked up in the schemas so that a rename fails at import rather than silently
# writing a column the table does not have.
USER_AGENT: Final = CLICKSTREAM_EVENT.field("user_agent").name
REFERRER: Final = CLICKSTREAM_EVENT.field("referrer").name
REFERRER_HOST: Final = CLICKSTREAM_RAW.field("referrer_host").name
UA_BROWSER: Final = CLICKSTREAM_RAW.field("ua_browser").name
UA_BROWSER_VERSION: Final = CLICKSTREAM_RAW.field("ua_browser_version").name
UA_OS: Final = CLICKSTREAM_RAW.field("ua_os").name
UA_DEVICE: Final = CLICKSTREAM_RAW.field("ua_device").name
UA_IS_BOT: Final = CLICKSTREAM_RAW.field("ua_is_bot").name
INGESTED_AT: Final = CLICKSTREAM_RAW.field("ingested_at").name

_MS_PER_HOUR = 3_600_000
# msgspec is as strict as the platform's reference decoder (no NaN, no overflowing numbers, no
# lone surrogates) and several times faster than the standard library on this hot path.
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


def _loads(text: str) -> Any:
    return _DECODER.decode(text)


def transform_event(
    raw: bytes, *, ingested_at_ms: int | None, now_ms: int, protect_ip: IpProtector
) -> TransformOutcome:
    """One record's bytes -> the lake line, or the reason the record is rejected.

    ``ingested_at_ms`` is when the stream accepted the record (epoch ms); ``now_ms`` bounds how
    far in the future ``event_time`` may be. Raises only on a bug: see
    :func:`transform_event_safely`.
    """
    validated = parse_clickstream_event(raw, now_ms=now_ms, loads=_loads)
    if isinstance(validated, Rejection):
        return validated
    row = lake_row(validated, ingested_at_ms=ingested_at_ms, protect_ip=protect_ip)
    return Transformed(
        line=_ENCODER.encode(row) + b"\n",
        partition_keys=partition_keys(validated.event_time_ms),
        event_id=row[EVENT_ID],
    )


def transform_event_safely(
    raw: bytes, *, ingested_at_ms: int | None, now_ms: int, protect_ip: IpProtector
) -> TransformOutcome:
    """:func:`transform_event`, with a crash turned into an ``internal_error`` rejection.

    One record that trips a bug must not fail its whole batch: it is rejected (and so kept in the
    error output for a replay once the bug is fixed) while its neighbours go through.
    """
    try:
        return transform_event(raw, ingested_at_ms=ingested_at_ms, now_ms=now_ms, protect_ip=protect_ip)
    except Exception as exc:
        _log.exception("clickstream transform crashed on one record")
        return Rejection(ReasonCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:300])


def lake_row(event: ValidatedEvent, *, ingested_at_ms: int | None, protect_ip: IpProtector) -> dict[str, Any]:
    """The CLICKSTREAM_RAW row of a validated event, keys in schema order."""
    row = event.fields  # a fresh dict per event: extending it in place avoids a copy
    row[EVENT_TIME] = event.event_time_ms
    if row[IP] is not None:
        row[IP] = protect_ip(row[IP])
    referrer = row[REFERRER]
    row[REFERRER_HOST] = None if referrer is None else referrer_host(referrer)
    agent = row[USER_AGENT]
    ua = UNKNOWN_USER_AGENT if agent is None else user_agent_info(agent)
    row[UA_BROWSER] = ua.browser
    row[UA_BROWSER_VERSION] = ua.browser_version
    row[UA_OS] = ua.os
    row[UA_DEVICE] = ua.device
    row[UA_IS_BOT] = ua.is_bot
    row[INGESTED_AT] = ingested_at_ms
    return row


def partition_keys(event_time_ms: int) -> Mapping[str, str]:
    """Hive partition values of an instant: ``{"year": "2024", "month": "03", "day": "09", "hour": "07"}``."""
    return _hour_partition(event_time_ms // _MS_PER_HOUR)


@functools.lru_cache(maxsize=1024)
def _hour_partition(hour_index: int) -> Mapping[str, str]:
    # A batch spans a few hours at most: one gmtime per hour, then lookups. The dict is shared
    # between records, hence typed read-only.
    t = time.gmtime(hour_index * 3600)
    return {
        "year": f"{t.tm_year:04d}",
        "month": f"{t.tm_mon:02d}",
        "day": f"{t.tm_mday:02d}",
        "hour": f"{t.tm_hour:02d}",
    }
