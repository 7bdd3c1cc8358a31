"""A local stand-in for a Lambda event source mapping on a Kinesis stream.

Reproduces the settings the KinesisConsumer construct deploys: batches of ``batch_size`` per
shard in order, ``ReportBatchItemFailures`` (the batch is retried from the first failed sequence
number), bisect on error when the function raises, a finite number of retries, and on exhaustion
the batch's *metadata* sent to the on-failure destination (an SQS queue), as AWS does. Not
reproduced: parallelisation factor (one batch per shard at a time here), maximum record age
(nothing here is old), batching window.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from local_runtime.kinesis_reader import StreamRecord

Handler = Callable[[dict[str, Any], Any], dict[str, Any] | None]


@dataclass
class MappingReport:
    records: int = 0
    invocations: int = 0
    retried_batches: int = 0
    sent_to_dlq: int = 0  # records in batches handed to the on-failure destination
    dlq_messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class LocalEventSourceMapping:
    function_name: str
    stream_arn: str
    handler: Handler
    batch_size: int = 100
    retry_attempts: int = 5
    bisect_on_error: bool = True
    on_failure: Callable[[dict[str, Any]], None] | None = None

    def run(self, records: Sequence[StreamRecord]) -> MappingReport:
        report = MappingReport(records=len(records))
        for _, shard_records in groupby(records, key=lambda r: r.shard_id):
            ordered = list(shard_records)
            for start in range(0, len(ordered), self.batch_size):
                self._process(ordered[start : start + self.batch_size], report, attempts_left=self.retry_attempts)
        return report

    def _process(self, batch: list[StreamRecord], report: MappingReport, *, attempts_left: int) -> None:
        while batch:
            report.invocations += 1
            try:
                response = self.handler(self._event(batch), None) or {}
            except Exception:  # the function failed as a whole: Lambda retries, bisecting if asked
                if attempts_left <= 0:
                    self._give_up(batch, report)
                    return
                report.retried_batches += 1
                if self.bisect_on_error and len(batch) > 1:
                    middle = len(batch) // 2
                    self._process(batch[:middle], report, attempts_left=attempts_left - 1)
                    self._process(batch[middle:], report, attempts_left=attempts_left - 1)
                    return
                attempts_left -= 1
                continue
            failures = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
            if not failures:
                return
            # Checkpoint before the lowest failed sequence number and retry from there.
            first = min(
                (i for i, r in enumerate(batch) if r.sequence_number in set(failures)),
                default=0,
            )
            if attempts_left <= 0:
                self._give_up(batch[first:], report)
                return
            report.retried_batches += 1
            attempts_left -= 1
            batch = batch[first:]

    def _give_up(self, batch: list[StreamRecord], report: MappingReport) -> None:
        report.sent_to_dlq += len(batch)
        message = {
            "requestContext": {
                "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self.retry_attempts + 1,
            },
            "KinesisBatchInfo": {
                "shardId": batch[0].shard_id,
                "startSequenceNumber": batch[0].sequence_number,
                "endSequenceNumber": batch[-1].sequence_number,
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
            "timestamp": datetime.now(UTC).isoformat(),
        }
        report.dlq_messages.append(message)
        if self.on_failure is not None:
            self.on_failure(message)

    def _event(self, batch: list[StreamRecord]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r.partition_key,
                        "sequenceNumber": r.sequence_number,
                        "data": base64.b64encode(r.data).decode("ascii"),
                        "approximateArrivalTimestamp": r.approximate_arrival_ms / 1000,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{r.shard_id}:{r.sequence_number}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/local",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": self.stream_arn,
                }
                for r in batch
            ]
        }


def dlq_sender(sqs: Any, queue_url: str) -> Callable[[dict[str, Any]], None]:
    def send(message: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))

    return send
