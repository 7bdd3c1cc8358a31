"""Driving the local stand-ins of Firehose and of a Lambda event source mapping through crashes.

Firehose writes one S3 object per buffer it flushes; :func:`deliver_buffers` models that by
handing the stream to :class:`~local_runtime.firehose.LocalFirehose` one buffer at a time, so that
a delivery process that dies after ``die_after_buffers`` buffers leaves exactly those buffers in
the lake, and a replay from the start of the stream writes them a second time (at-least-once: the
curated lake's de-duplication must absorb it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from local_runtime.firehose import DeliveryReport
from local_runtime.kinesis_reader import StreamRecord


class Deliverer(Protocol):
    """What :func:`deliver_buffers` needs of :class:`~local_runtime.firehose.LocalFirehose`."""

    def deliver(self, records: Sequence[StreamRecord]) -> DeliveryReport: ...


@dataclass
class DeliveryRun:
    """What one delivery process did before it finished or died."""

    buffers: int = 0  # buffers delivered
    died: bool = False
    reports: list[DeliveryReport] = field(default_factory=list)

    @property
    def source_records(self) -> int:
        """User records (after KPL de-aggregation) the transform was given."""
        return sum(r.source_records for r in self.reports)

    @property
    def delivered(self) -> int:
        return sum(r.delivered for r in self.reports)

    @property
    def processing_failed(self) -> int:
        return sum(r.processing_failed for r in self.reports)

    @property
    def conversion_failed(self) -> int:
        return sum(r.conversion_failed for r in self.reports)

    @property
    def invocations(self) -> int:
        return sum(r.invocations for r in self.reports)


def deliver_buffers(
    firehose: Deliverer,
    records: Sequence[StreamRecord],
    *,
    records_per_buffer: int,
    die_after_buffers: int | None = None,
) -> DeliveryRun:
    """Deliver ``records`` (in stream order) buffer by buffer; optionally die after some buffers."""
    if records_per_buffer < 1:
        raise ValueError("records_per_buffer must be positive")
    run = DeliveryRun()
    for start in range(0, len(records), records_per_buffer):
        if die_after_buffers is not None and run.buffers >= die_after_buffers:
            run.died = True
            break
        run.reports.append(firehose.deliver(records[start : start + records_per_buffer]))
        run.buffers += 1
    return run
