"""A local stand-in for a Firehose delivery stream: Kinesis source, Lambda transform, Parquet,
dynamic partitioning, error output and source backup.

What it reproduces of Firehose (and why it matters for the code under test):
- it reads the source stream and de-aggregates KPL records *before* the transform, as Firehose does;
- it invokes the real transform handler with the transformation event AWS sends for a Kinesis
  source (``kinesisRecordMetadata`` included), in batches of at most the configured buffer size;
- ``Ok`` records are parsed with the table's schema (timestamps as epoch milliseconds, the
  HiveJsonSerDe ``millis`` format) and written as Parquet under the partition the transform chose
  (``metadata.partitionKeys``); a record that does not fit the schema goes to
  ``format-conversion-failed``, as Firehose's conversion does;
- ``ProcessingFailed`` records go to ``processing-failed`` with Firehose's error document;
- every source record is backed up (gzip NDJSON) like ``S3BackupMode: Enabled``.
What it does not: buffering by time, retries of a failing Lambda invocation, delivery to S3 (it
writes the local lake directly).
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from local_runtime.kinesis_reader import StreamRecord
from platform_core.arrow_schema import arrow_schema
from platform_core.kpl import deaggregate
from platform_core.schema import Primitive, Schema

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class DeliveryReport:
    source_records: int = 0
    delivered: int = 0
    processing_failed: int = 0
    conversion_failed: int = 0
    invocations: int = 0
    files: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class LocalFirehose:
    name: str
    stream_arn: str
    handler: Handler
    schema: Schema
    lake_dir: Path  # lake/<table>/
    errors_dir: Path  # errors/<source>/
    backup_dir: Path
    buffer_bytes: int = 1024 * 1024

    def deliver(self, records: Iterable[StreamRecord]) -> DeliveryReport:
        report = DeliveryReport()
        batch: list[dict[str, Any]] = []
        size = 0
        by_partition: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        backup: list[dict[str, Any]] = []
        for record in records:
            for user_record in deaggregate(record.data, partition_key=record.partition_key):
                report.source_records += 1
                entry = self._event_record(record, user_record.data, user_record.sub_sequence_number)
                backup.append({"data": entry["data"], "sequenceNumber": record.sequence_number})
                if batch and size + len(entry["data"]) > self.buffer_bytes:
                    self._invoke(batch, report, by_partition)
                    batch, size = [], 0
                batch.append(entry)
                size += len(entry["data"])
        if batch:
            self._invoke(batch, report, by_partition)
        self._write_partitions(by_partition, report)
        self._write_backup(backup)
        return report

    def _event_record(self, record: StreamRecord, data: bytes, subsequence: int | None) -> dict[str, Any]:
        return {
            "recordId": f"{record.sequence_number}-{subsequence or 0}-{uuid.uuid4().hex[:8]}",
            "approximateArrivalTimestamp": record.approximate_arrival_ms,
            "data": base64.b64encode(data).decode("ascii"),
            "kinesisRecordMetadata": {
                "sequenceNumber": record.sequence_number,
                "subsequenceNumber": subsequence or 0,
                "partitionKey": record.partition_key,
                "shardId": record.shard_id,
                "approximateArrivalTimestamp": record.approximate_arrival_ms,
            },
        }

    def _invoke(
        self,
        batch: list[dict[str, Any]],
        report: DeliveryReport,
        by_partition: dict[tuple[str, ...], list[dict[str, Any]]],
    ) -> None:
        event = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": f"arn:aws:firehose:us-east-1:123456789012:deliverystream/{self.name}",
            "sourceKinesisStreamArn": self.stream_arn,
            "region": "us-east-1",
            "records": batch,
        }
        report.invocations += 1
        answer = self.handler(event, None)
        answered = {r["recordId"]: r for r in answer["records"]}
        if set(answered) != {r["recordId"] for r in batch} or len(answer["records"]) != len(batch):
            raise RuntimeError(f"{self.name}: the transform did not answer every recordId exactly once")
        for source in batch:
            result = answered[source["recordId"]]
            if result["result"] == "Ok":
                row = json.loads(base64.b64decode(result["data"]))
                keys = result.get("metadata", {}).get("partitionKeys", {})
                partition = tuple(f"{k}={keys[k]}" for k in (p.name for p in self.schema.partition_keys))
                by_partition[partition].append(row)
            elif result["result"] == "ProcessingFailed":
                report.processing_failed += 1
                self._write_error(
                    "processing-failed", source, "Lambda.ProcessingFailed", "record failed in the transform"
                )
            # "Dropped" is intentionally discarded by the transform: nothing to write.

    def _write_partitions(
        self, by_partition: dict[tuple[str, ...], list[dict[str, Any]]], report: DeliveryReport
    ) -> None:
        schema = arrow_schema(self.schema)
        for partition, rows in sorted(by_partition.items()):
            good, bad = _fit_schema(rows, self.schema)
            for row, reason in bad:
                report.conversion_failed += 1
                raw = {"data": base64.b64encode(json.dumps(row).encode()).decode("ascii")}
                self._write_error("format-conversion-failed", raw, "DataFormatConversion.InvalidSchema", reason)
            if not good:
                continue
            directory = self.lake_dir.joinpath(*partition)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{self.name}-{uuid.uuid4().hex}.parquet"
            pq.write_table(pa.Table.from_pylist(good, schema=schema), path, compression="snappy")
            report.delivered += len(good)
            report.files.append(path)

    def _write_error(self, error_type: str, source: dict[str, Any], code: str, message: str) -> None:
        directory = self.errors_dir / error_type
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "attemptsMade": 1,
            "arrivalTimestamp": source.get("approximateArrivalTimestamp"),
            "errorCode": code,
            "errorMessage": message,
            "rawData": source["data"],
            "sequenceNumber": source.get("kinesisRecordMetadata", {}).get("sequenceNumber"),
        }
        with (directory / f"{self.name}.json").open("a") as out:
            out.write(json.dumps(document) + "\n")

    def _write_backup(self, backup: list[dict[str, Any]]) -> None:
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        with gzip.open(self.backup_dir / f"{self.name}.json.gz", "wt") as out:
            for entry in backup:
                out.write(json.dumps(entry) + "\n")


def _fit_schema(
    rows: list[dict[str, Any]], schema: Schema
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """Convert epoch-ms timestamps as the HiveJsonSerDe ``millis`` format does; keep only schema columns."""
    from datetime import UTC, datetime

    timestamps = [f.name for f in schema.fields if f.type is Primitive.TIMESTAMP]
    names = schema.field_names
    good, bad = [], []
    for row in rows:
        try:
            converted = {name: row.get(name) for name in names}
            for name in timestamps:
                value = converted[name]
                if value is not None:
                    converted[name] = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
            good.append(converted)
        except (TypeError, ValueError, OverflowError) as error:
            bad.append((row, f"{type(error).__name__}: {error}"))
    return good, bad
