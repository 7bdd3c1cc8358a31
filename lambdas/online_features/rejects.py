"""Where records the features cannot use go, with the reason, so a person can find them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    code: str  # the validator's stable reason code (match on this, never on the reason text)
    reason: str
    sequence_number: str
    sub_sequence_number: int | None
    partition_key: str
    data_base64: str


class RejectSink(Protocol):
    def reject(self, rejected: Rejected) -> None: ...


class SqsRejectSink:
    """Sends each rejected record to an SQS queue (JSON body), where it waits to be looked at."""

    def __init__(self, queue_url: str, client_factory: Callable[[], Any]) -> None:
        self._queue_url = queue_url
        self._client = client_factory

    def reject(self, rejected: Rejected) -> None:
        self._client().send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(asdict(rejected)))


class LogRejectSink:
    """Without a queue: one structured error log line per rejected record (data included)."""

    def reject(self, rejected: Rejected) -> None:
        logger.error("rejected record %s", json.dumps(asdict(rejected)))


class InMemoryRejectSink:
    def __init__(self) -> None:
        self.rejected: list[Rejected] = []

    def reject(self, rejected: Rejected) -> None:
        self.rejected.append(rejected)
