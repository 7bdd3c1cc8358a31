"""CDC: DMS Kinesis-target records -> cdc stream -> CDC processor (the real handler, via a local
event source mapping) -> Avro change log in the raw bucket -> Parquet copies in the local lake."""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from local_runtime.context import RunContext
from local_runtime.event_source import LocalEventSourceMapping, MappingReport, dlq_sender
from local_runtime.kinesis_reader import read_stream
from platform_core.arrow_schema import arrow_schema
from platform_core.schemas.cdc import CDC_ERROR_PREFIX, CDC_SNAPSHOTS_PREFIX, CDC_TRANSITIONS_PREFIX, TRANSITION

STATE_TABLE_SUFFIX = "cdc-state"


@dataclass
class CdcLanding:
    input_records: int
    mapping: MappingReport
    transitions: Counter[str] = field(default_factory=Counter)
    transition_rows: int = 0
    snapshot_files: list[Path] = field(default_factory=list)
    error_files: list[Path] = field(default_factory=list)


def provision(ctx: RunContext) -> tuple[str, str]:
    table = f"{ctx.config.resource_prefix}-{STATE_TABLE_SUFFIX}"
    ddb = ctx.aws.client("dynamodb")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    sqs = ctx.aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"{ctx.config.resource_prefix}-cdc-processor-dlq")["QueueUrl"]
    return table, queue_url


def run(ctx: RunContext, lines: list[bytes]) -> CdcLanding:
    table, queue_url = provision(ctx)
    kinesis = ctx.aws.client("kinesis")
    stream = ctx.names.cdc_stream
    # DMS partitions by primary key (PartitionIncludeSchemaTable off: the key is the row's key).
    for start in range(0, len(lines), 500):
        chunk = lines[start : start + 500]
        kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": line, "PartitionKey": _partition_key(line, start + i)} for i, line in enumerate(chunk)],
        )
    os.environ.update(
        {
            "STATE_TABLE": table,
            "LAKE_BUCKET": ctx.bucket("raw"),
            "ERRORS_BUCKET": ctx.bucket("raw"),
            "ERRORS_PREFIX": CDC_ERROR_PREFIX,
        }
    )
    from lambdas.cdc_processor import handler as cdc

    cdc.reset()
    consumer = ctx.config.cdc.consumer
    mapping = LocalEventSourceMapping(
        function_name=f"{ctx.config.resource_prefix}-cdc-processor",
        stream_arn=ctx.stream_arn(stream),
        handler=cdc.handler,
        batch_size=consumer.batch_size,
        retry_attempts=consumer.retry_attempts,
        on_failure=dlq_sender(ctx.aws.client("sqs"), queue_url),
    )
    report = mapping.run(list(read_stream(kinesis, stream)))
    landing = CdcLanding(input_records=len(lines), mapping=report)
    _land_transitions(ctx, landing)
    landing.snapshot_files = _download(ctx, CDC_SNAPSHOTS_PREFIX, ctx.out / "raw" / "cdc_snapshots")
    landing.error_files = _download(ctx, CDC_ERROR_PREFIX, ctx.errors / "cdc")
    ctx.progress.say(
        "cdc",
        f"{report.records} records, {landing.transition_rows} transitions {dict(landing.transitions)}, "
        f"{len(landing.error_files)} rejected, {report.invocations} invocations",
    )
    return landing


def _partition_key(line: bytes, index: int) -> str:
    try:
        value = json.loads(line)
        return str(value["data"]["user_id"])
    except (ValueError, KeyError, TypeError):
        return f"unparseable-{index}"


def _land_transitions(ctx: RunContext, landing: CdcLanding) -> None:
    """The Avro change log, also written as Parquet (``lake/cdc_transitions/date=...``) for reading."""
    s3 = ctx.aws.client("s3")
    bucket = ctx.bucket("raw")
    rows_by_date: dict[str, list[dict[str, Any]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=CDC_TRANSITIONS_PREFIX):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            local = ctx.out / "raw" / item["Key"]
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(body)
            date = item["Key"][len(CDC_TRANSITIONS_PREFIX) :].split("/")[0]
            rows_by_date.setdefault(date, []).extend(cast(dict[str, Any], r) for r in fastavro.reader(io.BytesIO(body)))
    schema = arrow_schema(TRANSITION)
    for date, rows in sorted(rows_by_date.items()):
        directory = ctx.lake / "cdc_transitions" / date
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), directory / "part-0.parquet")
        landing.transition_rows += len(rows)
        landing.transitions.update(str(r["transition"]) for r in rows)


def _download(ctx: RunContext, prefix: str, target: Path) -> list[Path]:
    s3 = ctx.aws.client("s3")
    bucket = ctx.bucket("raw")
    paths = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            path = target / item["Key"][len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(path))
            paths.append(path)
    return paths
