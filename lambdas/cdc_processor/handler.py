"""Lambda entry point: Kinesis event (DMS records of ``subscriptions``) -> partial batch response.

Bad records are written to the error output and reported as handled, so they never block the
shard; only records whose state could not be committed are reported in ``batchItemFailures``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from lambdas.cdc_processor.dms import SourceTable
from lambdas.cdc_processor.kinesis import batch_key, source_records
from lambdas.cdc_processor.processor import CdcProcessor
from lambdas.cdc_processor.settings import Settings
from lambdas.cdc_processor.sink import S3Sink
from lambdas.cdc_processor.store import DynamoDBStateStore

logger = logging.getLogger()
logger.setLevel(logging.INFO)


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def s3_client() -> Any:
    import boto3

    return boto3.client("s3")


@functools.cache
def dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb")


@functools.cache
def processor() -> CdcProcessor:
    config = settings()
    return CdcProcessor(
        store=DynamoDBStateStore(config.state_table, dynamodb_client),
        sink=S3Sink(config.lake_bucket, config.errors_bucket, config.errors_prefix, s3_client),
        table=SourceTable(schema_name=config.source_schema, before_image_field=config.before_image_field),
        dedup_ttl_days=config.dedup_ttl_days,
    )


def reset() -> None:
    """Forget settings and clients (tests change the environment between cases)."""
    for cached in (settings, s3_client, dynamodb_client, processor):
        cached.cache_clear()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records", [])
    result = processor().process(source_records(records), batch_key(records))
    logger.info("cdc batch: %d records, outcomes %s", len(records), dict(result.outcomes))
    return {"batchItemFailures": [{"itemIdentifier": s} for s in result.failed_sequence_numbers]}
