"""Lambda entry point: Kinesis event in, partial batch response out.

``{"batchItemFailures": [{"itemIdentifier": <sequence number>}]}`` needs the event source mapping's
``FunctionResponseTypes: ["ReportBatchItemFailures"]``.
"""

from __future__ import annotations

import base64
import functools
import logging
from typing import Any

from lambdas.online_features import clients
from lambdas.online_features.compute import horizon_ms
from lambdas.online_features.feature_store import FeatureRecordWriter, FeatureStoreRuntimeWriter
from lambdas.online_features.processor import OnlineFeatureProcessor, StreamRecord
from lambdas.online_features.rejects import LogRejectSink, RejectSink, SqsRejectSink
from lambdas.online_features.settings import get_settings
from lambdas.online_features.state import DynamoDBStateStore
from platform_core.schemas.features import CLICKSTREAM_WINDOWS_DAYS

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


@functools.cache
def feature_writer() -> FeatureRecordWriter:
    """The online store writer (tests and the local runtime swap in an in-memory store)."""
    return FeatureStoreRuntimeWriter(clients.featurestore_runtime)


@functools.cache
def processor() -> OnlineFeatureProcessor:
    settings = get_settings()
    rejects: RejectSink = (
        SqsRejectSink(settings.rejects_queue_url, clients.sqs) if settings.rejects_queue_url else LogRejectSink()
    )
    return OnlineFeatureProcessor(
        state_store=DynamoDBStateStore(
            settings.state_table,
            clients.dynamodb,
            horizon_ms(CLICKSTREAM_WINDOWS_DAYS, settings.session_gap_minutes),
        ),
        writer=feature_writer(),
        rejects=rejects,
        feature_group_name=settings.feature_group_name,
        gap_minutes=settings.session_gap_minutes,
    )


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text (a plain ValueError)
        # Not base64 (never from Kinesis): keep the text so the reject shows what came in.
        return data.encode()


def stream_records(event: dict[str, Any]) -> list[StreamRecord]:
    return [
        StreamRecord(
            sequence_number=r["kinesis"]["sequenceNumber"],
            partition_key=r["kinesis"]["partitionKey"],
            data=_decode(r["kinesis"]["data"]),
        )
        for r in event.get("Records", [])
    ]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = processor().process(stream_records(event))
    logger.info(
        "online features: %d new, %d ignored, %d anonymous, %d rejected events; %d records written; %d failed",
        outcome.events_new,
        outcome.events_ignored,
        outcome.events_anonymous,
        outcome.events_rejected,
        outcome.records_written,
        len(outcome.failed_sequence_numbers),
    )
    return {"batchItemFailures": [{"itemIdentifier": s} for s in outcome.failed_sequence_numbers]}
