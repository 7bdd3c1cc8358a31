"""Clickstream events as the online feature path needs them, parsed from what producers send.

The stream carries events as producers wrote them. They are validated by the very validator the
Firehose transformation uses (:mod:`platform_core.validation`), and ``ua_os`` / ``referrer_host``
are derived by the transformation's own enrichment functions, so an event counts online exactly
when, and exactly as, it counts in the lake. Only what the features read is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from platform_core.enrich import referrer_host, user_agent_info
from platform_core.schemas.features import is_mobile_os, page_class, referrer_class
from platform_core.validation import Rejection, parse_clickstream_event


class InvalidEventError(ValueError):
    """An event that breaks the contract: ``code`` is the validator's stable reason code,
    ``reason`` the human explanation for the person who reads the rejects."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    """What the clickstream features read of an event (kept per user in the online state)."""

    event_id: str
    time_ms: int
    event_type: str
    mobile: bool
    referrer: str  # referrer class: search | social | direct | other
    page: str | None = None  # page class of a page view: support | plans | None


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    user_id: str | None
    event: FeatureEvent


def parse_event(data: bytes, now_ms: int) -> ParsedEvent:
    """Parse one user record; raises :class:`InvalidEventError` with the validator's reason."""
    outcome = parse_clickstream_event(data, now_ms=now_ms)
    if isinstance(outcome, Rejection):
        raise InvalidEventError(outcome.code.value, outcome.message)
    fields = outcome.fields
    agent, referrer = fields["user_agent"], fields["referrer"]
    os_family = None if agent is None else user_agent_info(agent).os
    host = None if referrer is None else referrer_host(referrer)
    return ParsedEvent(
        user_id=fields["user_id"],
        event=FeatureEvent(
            event_id=fields["event_id"],
            time_ms=outcome.event_time_ms,
            event_type=fields["event_type"],
            mobile=is_mobile_os(os_family),
            referrer=referrer_class(host),
            page=page_class(fields["event_type"], (fields["request"] or {}).get("path")),
        ),
    )
