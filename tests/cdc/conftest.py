"""Helpers for the CDC tests: run DMS messages through the processor and read the Avro back."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import fastavro
import pytest

from lambdas.cdc_processor.kinesis import batch_key, source_records
from lambdas.cdc_processor.processor import BatchResult, CdcProcessor
from lambdas.cdc_processor.sink import MemorySink
from lambdas.cdc_processor.store import InMemoryStateStore
from tests.cdc.events import FIRST_SEQUENCE, kinesis_event

PROCESSED_AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def read_avro(body: bytes) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], r) for r in fastavro.reader(io.BytesIO(body))]


class Pipeline:
    """A processor on an in-memory store and sink, fed batches of DMS messages."""

    def __init__(self) -> None:
        self.store = InMemoryStateStore()
        self.sink = MemorySink()
        self.processor = CdcProcessor(self.store, self.sink, clock=lambda: PROCESSED_AT)
        self.next_sequence = FIRST_SEQUENCE

    def run(
        self, messages: Sequence[dict[str, Any] | bytes | str], *, first_sequence: int | None = None
    ) -> BatchResult:
        if first_sequence is None:
            first_sequence = self.next_sequence
            self.next_sequence += 100 * len(messages) + 1000
        records = kinesis_event(list(messages), first_sequence=first_sequence)["Records"]
        return self.processor.process(source_records(records), batch_key(records))

    def logged(self, prefix: str) -> list[dict[str, Any]]:
        """Every record of the change log under ``prefix``, in key order."""
        out: list[dict[str, Any]] = []
        for key in sorted(self.sink.log):
            if key.startswith(prefix):
                out += read_avro(self.sink.log[key])
        return out

    def transitions(self) -> list[tuple[str, str]]:
        return [(t["user_id"], t["transition"]) for t in self.logged("cdc/transitions/")]


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline()
