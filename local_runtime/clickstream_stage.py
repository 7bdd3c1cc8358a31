"""Clickstream: producer -> Kinesis -> Firehose (transform, Parquet) -> raw lake.

Input lines are sent the way real clients would: JSON objects through the producer library
(batching, retries, event ids); anything that is not a JSON object is written raw to the stream,
as a misbehaving producer would, so that the transform's rejection path is exercised too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime.context import RunContext
from local_runtime.firehose import DeliveryReport, LocalFirehose
from local_runtime.kinesis_reader import read_stream
from platform_core.names import CLICKSTREAM_REJECTS_PREFIX
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from producer.kinesis_producer import ClickstreamProducer, PutResult


@dataclass
class ClickstreamInput:
    lines: list[bytes]
    injected_duplicates: int = 0
    injected_bad: int = 0


@dataclass
class ClickstreamLanding:
    input_records: int
    producer_rejected: int
    sent_raw: int
    acknowledged: int
    delivery: DeliveryReport
    rejects_files: list[Path] = field(default_factory=list)


def run(ctx: RunContext, source: ClickstreamInput) -> ClickstreamLanding:
    kinesis = ctx.aws.client("kinesis")
    stream = ctx.names.clickstream_stream
    events: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for line in source.lines:
        try:
            value = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = None
        if isinstance(value, dict):
            events.append(value)
        else:
            raw.append(line)

    producer = ClickstreamProducer(stream, client=kinesis)
    results = producer.put_events(events)
    _write_producer_rejections(ctx, events, results)
    for start in range(0, len(raw), 500):
        kinesis.put_records(
            StreamName=stream,
            Records=[
                {"Data": data, "PartitionKey": f"raw-{start + i}"} for i, data in enumerate(raw[start : start + 500])
            ],
        )
    ctx.progress.say(
        "clickstream", f"{sum(r.acknowledged for r in results)} events acknowledged, {len(raw)} raw lines sent"
    )

    os.environ.update(
        {
            "IP_PROTECTION": ctx.config.clickstream.ip_protection,
            "REJECTS_BUCKET": ctx.bucket("raw"),
            "REJECTS_PREFIX": CLICKSTREAM_REJECTS_PREFIX,
        }
    )
    from lambdas.clickstream_transform import handler as transform

    firehose = LocalFirehose(
        name=ctx.names.clickstream_firehose,
        stream_arn=ctx.stream_arn(stream),
        handler=transform.handler,
        schema=CLICKSTREAM_RAW,
        lake_dir=ctx.lake / "clickstream_raw",
        errors_dir=ctx.errors / "clickstream",
        backup_dir=ctx.out / "source-backup" / "clickstream",
        buffer_bytes=int(ctx.config.clickstream.firehose.transform_buffer_size_mb * 1024 * 1024),
    )
    delivery = firehose.deliver(read_stream(kinesis, stream))
    rejects = _download(ctx, ctx.bucket("raw"), CLICKSTREAM_REJECTS_PREFIX, ctx.errors / "clickstream" / "rejected")
    ctx.progress.say(
        "clickstream",
        f"{delivery.delivered} rows in the raw lake, {delivery.processing_failed} rejected by the transform "
        f"({delivery.invocations} transform invocations)",
    )
    return ClickstreamLanding(
        input_records=len(source.lines),
        producer_rejected=sum(1 for r in results if not r.acknowledged),
        sent_raw=len(raw),
        acknowledged=sum(1 for r in results if r.acknowledged),
        delivery=delivery,
        rejects_files=rejects,
    )


def _write_producer_rejections(ctx: RunContext, events: list[dict[str, Any]], results: list[PutResult]) -> None:
    """Events the producer refused (or gave up on) are kept with the reason it returned."""
    rejected = [(e, r) for e, r in zip(events, results, strict=True) if not r.acknowledged]
    if not rejected:
        return
    directory = ctx.errors / "clickstream" / "producer"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "rejected.ndjson").open("w") as out:
        for event, result in rejected:
            reason = {"error_code": result.error_code, "error_message": result.error_message}
            out.write(json.dumps({"reason": reason, "event": event}, default=str) + "\n")


def _download(ctx: RunContext, bucket: str, prefix: str, target: Path) -> list[Path]:
    s3 = ctx.aws.client("s3")
    paths = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            path = target / item["Key"][len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(path))
            paths.append(path)
    return paths
