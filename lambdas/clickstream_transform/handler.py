"""Firehose transformation for clickstream events (Kinesis Data Stream or Direct PUT source).

Thin: parse the Firehose event, run the domain transform on every record, record the rejections
(one NDJSON file per invocation plus one log line per record), answer Firehose.
"""

from __future__ import annotations

import collections
import functools
import time
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.clickstream_transform import aws
from lambdas.clickstream_transform.firehose import (
    FirehoseBatch,
    RecordResult,
    parse_event,
    response,
    transform_records,
)
from lambdas.clickstream_transform.rejects import rejected, rejects_file
from lambdas.clickstream_transform.settings import Settings, settings
from lambdas.clickstream_transform.transform import TransformOutcome, transform_event_safely
from platform_core.enrich import IpProtector, ip_protector

logger = Logger(service="clickstream-transform")


@functools.cache
def _ip_protector() -> IpProtector:
    """Built on first use; with ``hash`` this fetches the key once per container.

    A failure here (secret unreadable) raises and fails the invocation: Firehose retries it, and
    nothing is wrong with the records themselves, so they must not be rejected one by one.
    """
    config = settings()
    key = None
    if config.ip_protection == "hash" and config.ip_hash_secret_arn is not None:
        key = aws.secret_bytes(config.ip_hash_secret_arn)
    return ip_protector(config.ip_protection, key=key)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    protect_ip = _ip_protector()
    batch = parse_event(event)
    logger.append_keys(invocation_id=batch.invocation_id)  # on every line of this invocation
    # One "now" per batch: every record is judged against the same future-skew bound.
    now_ms = time.time_ns() // 1_000_000

    def transform(raw: bytes, ingested_at_ms: int) -> TransformOutcome:
        return transform_event_safely(raw, ingested_at_ms=ingested_at_ms, now_ms=now_ms, protect_ip=protect_ip)

    results = transform_records(batch, transform)
    _record_rejections(batch, results, config)
    return response(results)


def _record_rejections(batch: FirehoseBatch, results: list[RecordResult], config: Settings) -> None:
    failures = rejected(results)
    reasons = collections.Counter(why.code.value for _, why in failures)
    logger.info(
        "clickstream batch transformed",
        extra={
            "records": len(results),
            "rejected": len(failures),
            "reasons": dict(reasons),
        },
    )
    if not failures:
        return
    for result, why in failures:
        # No raw payload in the logs (it holds the client's IP); the rejects file has it.
        kinesis = result.record.kinesis
        logger.warning(
            "clickstream record rejected",
            extra={
                "record_id": result.record.record_id,
                "reason_code": why.code.value,
                "reason": why.message,
                "event_id": why.event_id,
                "shard_id": kinesis.shard_id if kinesis else None,
                "sequence_number": kinesis.sequence_number if kinesis else None,
                "subsequence_number": kinesis.subsequence_number if kinesis else None,
            },
        )
    document = rejects_file(batch, failures, prefix=config.rejects_prefix)
    if document is None:
        return
    try:
        aws.put_rejects(config.rejects_bucket, document)
    except Exception:
        # The records are still answered ProcessingFailed, so Firehose keeps their raw bytes in
        # its error output: only our reason is lost, and it is in the log lines above.
        logger.exception(
            "could not write the rejects file",
            extra={"bucket": config.rejects_bucket, "key": document.key, "rejected": document.count},
        )
    else:
        logger.info("rejects file written", extra={"bucket": config.rejects_bucket, "key": document.key})
