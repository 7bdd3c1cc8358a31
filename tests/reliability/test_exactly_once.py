"""Exactly once, end to end, under injected faults (the figures are in docs/reliability.md).

Given 100,000 clickstream events sent through the real producer to a Kinesis stream (moto) that
loses acknowledgements (10 % of entries reach the stream but are reported failed, so the producer
sends them again), throttles (5 % of entries) and loses whole answers (some calls), plus malformed
records a misbehaving producer writes straight to the stream; and DMS change records of the
subscriptions table, some published twice (a DMS task restart):

- Firehose (LocalFirehose + the real transform handler) crashes twice right after writing a rejects
  file (Firehose retries the invocation with the same records), and its delivery process dies after
  two buffers, after which the stream is delivered again from TRIM_HORIZON;
- the CDC processor dies twice right after a change-log write to S3 (before its DynamoDB commit)
  and once after returning (the checkpoint is lost), then the stream is replayed from the start;
- the online features consumer dies twice right after a DynamoDB state write (before putting the
  features or answering), then the stream is replayed from the start.

Then: the curated lake (``dedupe_events`` on the shared local SparkSession) holds exactly the
events the producer acknowledged, once each; every malformed record is in the rejects files with its
reason; online features and CDC transitions equal those of a clean single pass.

Spark rather than DuckDB for the curated lake: the proof is about the very function the Glue job
runs, and the shared session is started once per test run anyway (other suites use it); its one
job costs ~40 s on this machine. The raw lake is only counted, with DuckDB.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import duckdb
import fastavro
import pytest
from moto import mock_aws

from lambdas.cdc_processor import handler as cdc_handler
from lambdas.clickstream_transform import aws as transform_aws
from lambdas.clickstream_transform import handler as transform_handler
from lambdas.clickstream_transform import settings as transform_settings
from lambdas.clickstream_transform.firehose import parse_event
from lambdas.clickstream_transform.rejects import rejects_key
from lambdas.online_features import clients as online_clients
from lambdas.online_features import handler as online_handler
from lambdas.online_features.feature_store import InMemoryFeatureStore
from lambdas.online_features.settings import get_settings as online_settings
from lambdas.online_features.state import decode_events
from local_runtime.event_source import LocalEventSourceMapping, MappingReport
from local_runtime.firehose import LocalFirehose
from local_runtime.kinesis_reader import StreamRecord, read_stream
from platform_core.config import load_config
from platform_core.names import CLICKSTREAM_REJECTS_PREFIX, Names
from platform_core.schemas.cdc import CDC_SNAPSHOTS_PREFIX, CDC_TRANSITIONS_PREFIX
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from producer import ClickstreamProducer
from reliability.delivery import DeliveryRun, deliver_buffers
from reliability.faults import (
    CrashAfterReturn,
    DieAfterCall,
    FirehoseInvocationRetries,
    KinesisFaultReport,
    LambdaRuntime,
    UnreliableKinesis,
    on_invocations,
)
from reliability.workload import clickstream_events, dms_records, encode_lines, malformed_clickstream_records

pytestmark = [pytest.mark.slow, pytest.mark.spark]

SEED = 20_251
EVENTS = 100_000
USERS = 300
BAD_RECORDS = 40
PRODUCER_CALLS = 10  # the service sends its events in 10 batches; malformed records land between them
LOST_ACK_RATE = 0.10
THROTTLE_RATE = 0.05
LOST_CALL_RATE = 0.05
# KPL aggregation into small (4 KiB) records: ~8 events per Kinesis record. moto spends ~0.7 ms per
# Kinesis record (request and response serialisation), so 100,000 single-event records would take
# minutes; small aggregates keep faults per Kinesis entry fine-grained (a lost acknowledgement
# duplicates ~8 events) and run the consumers' KPL de-aggregation too.
AGGREGATE_BYTES = 4096
RECORDS_PER_BUFFER = 1_500  # Kinesis records per Firehose buffer (~10,000 events)
DIE_AFTER_BUFFERS = 2
FIREHOSE_CRASHES = 2
# moto's TransactWriteItems deep-copies the whole table for every item of a transaction (its
# rollback), so the CDC state table's cost grows with the square of its size: 300 changes keep the
# CDC part to seconds while still spanning several batches, crashes and a replay.
CDC_USERS = 75
CDC_CHANGES_PER_USER = 4
CDC_RESENT_SHARE = 0.1
CDC_DIE_AFTER_PUTS = (2, 30)
CDC_CRASH_AFTER_RETURN = (3,)
ONLINE_DIE_AFTER_PUTS = (40, 450)
# The Kinesis maximum: one batch per shard, so that moto's DynamoDB is called per user, not per record.
ONLINE_BATCH_SIZE = 10_000

CONFIG = load_config("dev")
NAMES = Names(CONFIG)
REGION = "us-east-1"
ACCOUNT = "123456789012"
FEATURE_GROUP = "mlp-dev-user-clickstream"


def _stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


# ---------------------------------------------------------------------------------------------
# What the run produced
# ---------------------------------------------------------------------------------------------


@dataclass
class Clickstream:
    events: list[dict[str, Any]]
    event_ids: list[str | None]  # per event, in input order: its own or the one the producer assigned
    acknowledged: set[str]
    unacknowledged: int
    faults: KinesisFaultReport
    bad_records: int
    stream_records: int
    user_records_in_stream: int


@dataclass
class Delivery:
    first: DeliveryRun
    replay: DeliveryRun
    transform: CrashAfterReturn
    retries: FirehoseInvocationRetries
    rejects: dict[str, list[dict[str, Any]]]  # S3 key -> entries
    raw_files: int = 0
    raw_rows: int = 0
    raw_distinct: int = 0
    curated_rows: int = 0
    curated_distinct: int = 0
    curated_ids: set[str] = field(default_factory=set)


@dataclass
class Consumer:
    """One consumer's faulty run (crashes, then a replay from TRIM_HORIZON) and its clean pass."""

    faulty: MappingReport
    replay: MappingReport
    clean: MappingReport
    deaths: int
    crashes_after_return: int
    failed_invocations: int


@dataclass
class Online(Consumer):
    faulty_store: InMemoryFeatureStore = field(default_factory=InMemoryFeatureStore)
    clean_store: InMemoryFeatureStore = field(default_factory=InMemoryFeatureStore)
    state_event_ids: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Cdc(Consumer):
    input_records: int = 0
    resent_records: int = 0
    faulty_transitions: list[dict[str, Any]] = field(default_factory=list)
    clean_transitions: list[dict[str, Any]] = field(default_factory=list)
    faulty_history: list[tuple[Any, ...]] = field(default_factory=list)
    clean_history: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class Outcome:
    clickstream: Clickstream
    delivery: Delivery
    online: Online
    cdc: Cdc


# ---------------------------------------------------------------------------------------------
# The run (once per module: every test below reads its outcome)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outcome(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    out = tmp_path_factory.mktemp("exactly-once")
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        _clear_handler_caches()
        kinesis = boto3.client("kinesis", region_name=REGION)
        for stream in (NAMES.clickstream_stream, NAMES.cdc_stream):
            kinesis.create_stream(StreamName=stream, ShardCount=2)
        timer = _StageTimer()
        with timer("produce"):
            clickstream = _produce(kinesis)
        with timer("read stream"):
            records = list(read_stream(kinesis, NAMES.clickstream_stream))
        clickstream.stream_records = len(records)
        with timer("firehose"):
            delivery = _deliver(records, out, mp)
        clickstream.user_records_in_stream = delivery.replay.source_records
        with timer("spark dedupe"):
            _curate(spark, out / "lake" / "clickstream_raw", delivery)
        with timer("online features"):
            online = _online_features(records, mp)
        with timer("cdc"):
            cdc = _cdc(kinesis, spark, out, mp)
        result = Outcome(clickstream, delivery, online, cdc)
        print(json.dumps({**figures(result), "seconds": timer.seconds}, indent=2))
        yield result
        _clear_handler_caches()


@dataclass
class _StageTimer:
    """Wall-clock and CPU seconds of this process per stage (printed, never asserted)."""

    seconds: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.seconds[stage] = {
            "wall": round(time.perf_counter() - wall, 1),
            "cpu": round(time.process_time() - cpu, 1),
        }


def _clear_handler_caches() -> None:
    transform_settings.settings.cache_clear()
    transform_handler._ip_protector.cache_clear()
    transform_aws.s3_client.cache_clear()
    cdc_handler.reset()
    online_settings.cache_clear()
    online_handler.processor.cache_clear()
    for cached in (online_clients.dynamodb, online_clients.sqs):
        cached.cache_clear()


def _produce(kinesis: Any) -> Clickstream:
    """The events through the producer and the unreliable client; malformed records between batches."""
    events = clickstream_events(EVENTS, users=USERS, seed=SEED)
    bad = malformed_clickstream_records(BAD_RECORDS, seed=SEED)
    unreliable = UnreliableKinesis(
        kinesis, lost_ack_rate=LOST_ACK_RATE, throttle_rate=THROTTLE_RATE, lost_call_rate=LOST_CALL_RATE, seed=SEED
    )
    producer = ClickstreamProducer(
        NAMES.clickstream_stream,
        client=unreliable,
        aggregate=True,
        max_aggregate_bytes=AGGREGATE_BYTES,
        sleep=lambda _seconds: None,  # backoff is computed, not waited for
        rng=random.Random(SEED),
    )
    results = []
    per_call, bad_per_gap = EVENTS // PRODUCER_CALLS, BAD_RECORDS // PRODUCER_CALLS
    for call in range(PRODUCER_CALLS):
        results += producer.put_events(events[call * per_call : (call + 1) * per_call])
        gap = bad[call * bad_per_gap : (call + 1) * bad_per_gap]
        kinesis.put_records(
            StreamName=NAMES.clickstream_stream,
            Records=[{"Data": b.data, "PartitionKey": f"bad-{call}-{i}"} for i, b in enumerate(gap)],
        )
    assert len(results) == EVENTS
    return Clickstream(
        events=events,
        event_ids=[r.event_id for r in results],
        acknowledged={r.event_id for r in results if r.acknowledged and r.event_id},
        unacknowledged=sum(1 for r in results if not r.acknowledged),
        faults=unreliable.report,
        bad_records=BAD_RECORDS,
        stream_records=0,
        user_records_in_stream=0,
    )


@dataclass
class _DieAfterRejects:
    """Crash rule: die after the first ``limit`` invocations that wrote a rejects file."""

    limit: int
    crashed_invocations: set[str] = field(default_factory=set)

    def __call__(self, _number: int, event: dict[str, Any], answer: Any) -> bool:
        wrote_rejects = any(r["result"] == "ProcessingFailed" for r in answer["records"])
        if not wrote_rejects or len(self.crashed_invocations) >= self.limit:
            return False
        if event["invocationId"] in self.crashed_invocations:
            return False  # Firehose's retry of a crashed invocation goes through
        self.crashed_invocations.add(event["invocationId"])
        return True


def _deliver(records: Sequence[StreamRecord], out: Path, mp: pytest.MonkeyPatch) -> Delivery:
    s3 = boto3.client("s3", region_name=REGION)
    rejects_bucket = NAMES.bucket("raw", account=ACCOUNT, region=REGION)
    s3.create_bucket(Bucket=rejects_bucket)
    mp.setenv("IP_PROTECTION", "truncate")
    mp.setenv("REJECTS_BUCKET", rejects_bucket)
    mp.setenv("REJECTS_PREFIX", CLICKSTREAM_REJECTS_PREFIX)
    transform = CrashAfterReturn(transform_handler.handler, crash_when=_DieAfterRejects(FIREHOSE_CRASHES))
    retries = FirehoseInvocationRetries(LambdaRuntime(transform), attempts=3)
    firehose = LocalFirehose(
        name=NAMES.clickstream_firehose,
        stream_arn=_stream_arn(NAMES.clickstream_stream),
        handler=retries,
        schema=CLICKSTREAM_RAW,
        lake_dir=out / "lake" / "clickstream_raw",
        errors_dir=out / "errors" / "clickstream",
        backup_dir=out / "source-backup",
        buffer_bytes=int(CONFIG.clickstream.firehose.transform_buffer_size_mb * 1024 * 1024),
    )
    first = deliver_buffers(
        firehose, records, records_per_buffer=RECORDS_PER_BUFFER, die_after_buffers=DIE_AFTER_BUFFERS
    )
    replay = deliver_buffers(firehose, records, records_per_buffer=RECORDS_PER_BUFFER)
    rejects = {
        key: [json.loads(line) for line in body.splitlines() if line.strip()]
        for key, body in _objects(s3, rejects_bucket, CLICKSTREAM_REJECTS_PREFIX).items()
    }
    return Delivery(first=first, replay=replay, transform=transform, retries=retries, rejects=rejects)


def _curate(spark: Any, raw_path: Path, delivery: Delivery) -> None:
    """The Glue job's de-duplication (``dedupe_events``) over everything Firehose delivered.

    One Spark job (de-duplicate, collect the event ids); the raw lake is counted with DuckDB, which
    reads the same Parquet files and needs no shuffle.
    """
    from glue_jobs.transforms.clickstream import dedupe_events

    delivery.raw_files = sum(1 for _ in raw_path.rglob("*.parquet"))
    pattern = str(raw_path / "**" / "*.parquet")
    counts = duckdb.connect().execute(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet('{pattern}')")
    delivery.raw_rows, delivery.raw_distinct = counts.fetchone() or (0, 0)
    curated = dedupe_events(spark.read.parquet(str(raw_path))).select("event_id")
    ids: list[str] = curated.toArrow().column(0).to_pylist()
    delivery.curated_rows, delivery.curated_ids = len(ids), set(ids)
    delivery.curated_distinct = len(delivery.curated_ids)


# ---------------------------------------------------------------------------------------------
# Stream consumers
# ---------------------------------------------------------------------------------------------


def _mapping(name: str, stream: str, handler: Callable[..., Any], *, batch_size: int, retries: int) -> Any:
    return LocalEventSourceMapping(
        function_name=name,
        stream_arn=_stream_arn(stream),
        handler=handler,
        batch_size=batch_size,
        retry_attempts=retries,
        on_failure=lambda message: None,  # kept in the report's dlq_messages
    )


def _online_features(records: Sequence[StreamRecord], mp: pytest.MonkeyPatch) -> Online:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    settings = CONFIG.consumer

    def configure(table: str, client: Any, store: InMemoryFeatureStore) -> None:
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        queue = sqs.create_queue(QueueName=f"{table}-rejects")["QueueUrl"]
        mp.setenv("STATE_TABLE_NAME", table)
        mp.setenv("FEATURE_GROUP_NAME", FEATURE_GROUP)
        mp.setenv("REJECTS_QUEUE_URL", queue)
        mp.setattr(online_clients, "dynamodb", functools.cache(lambda: client))
        mp.setattr(online_handler, "feature_writer", lambda: store)
        online_settings.cache_clear()
        online_handler.processor.cache_clear()

    faulty_store, clean_store = InMemoryFeatureStore(), InMemoryFeatureStore()
    dying = DieAfterCall(dynamodb, "put_item", die_on=ONLINE_DIE_AFTER_PUTS)
    configure("online-state-faulty", dying, faulty_store)
    runtime = LambdaRuntime(online_handler.handler)
    name = NAMES.function("online-features")
    mapping = _mapping(
        name, NAMES.clickstream_stream, runtime, batch_size=ONLINE_BATCH_SIZE, retries=settings.retry_attempts
    )
    faulty = mapping.run(records)
    replay = mapping.run(records)  # the mapping reset to TRIM_HORIZON
    state = _state_event_ids(dynamodb, "online-state-faulty")

    configure("online-state-clean", dynamodb, clean_store)
    clean = _mapping(name, NAMES.clickstream_stream, online_handler.handler, batch_size=ONLINE_BATCH_SIZE, retries=0)
    return Online(
        faulty=faulty,
        replay=replay,
        clean=clean.run(records),
        deaths=dying.deaths,
        crashes_after_return=0,
        failed_invocations=runtime.failures,
        faulty_store=faulty_store,
        clean_store=clean_store,
        state_event_ids=state,
    )


def _state_event_ids(dynamodb: Any, table: str) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            ids[item["user_id"]["S"]] = {e.event_id for e in decode_events(item["events"]["B"])}
    return ids


def _cdc(kinesis: Any, spark: Any, out: Path, mp: pytest.MonkeyPatch) -> Cdc:
    lines = encode_lines(dms_records(users=CDC_USERS, changes_per_user=CDC_CHANGES_PER_USER, seed=SEED))
    resent = lines[-int(len(lines) * CDC_RESENT_SHARE) :]  # a DMS task restart publishes its last changes again
    published = lines + resent
    for start in range(0, len(published), 500):
        chunk = published[start : start + 500]
        kinesis.put_records(
            StreamName=NAMES.cdc_stream,
            Records=[{"Data": line, "PartitionKey": json.loads(line)["data"]["user_id"]} for line in chunk],
        )
    records = list(read_stream(kinesis, NAMES.cdc_stream))
    s3 = boto3.client("s3", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    settings = CONFIG.cdc.consumer

    def configure(name: str, client: Any) -> None:
        s3.create_bucket(Bucket=name)
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        mp.setenv("STATE_TABLE", name)
        mp.setenv("LAKE_BUCKET", name)
        mp.setenv("ERRORS_BUCKET", name)
        cdc_handler.reset()
        mp.setattr(cdc_handler, "s3_client", functools.cache(lambda: client))

    dying = DieAfterCall(s3, "put_object", die_on=CDC_DIE_AFTER_PUTS)
    configure("cdc-faulty", dying)
    crash_after_return = CrashAfterReturn(cdc_handler.handler, crash_when=on_invocations(*CDC_CRASH_AFTER_RETURN))
    runtime = LambdaRuntime(crash_after_return)
    name = NAMES.function("cdc-processor")
    mapping = _mapping(name, NAMES.cdc_stream, runtime, batch_size=settings.batch_size, retries=settings.retry_attempts)
    faulty = mapping.run(records)
    replay = mapping.run(records)
    configure("cdc-clean", s3)
    clean = _mapping(name, NAMES.cdc_stream, cdc_handler.handler, batch_size=settings.batch_size, retries=0).run(
        records
    )

    result = Cdc(
        faulty=faulty,
        replay=replay,
        clean=clean,
        deaths=dying.deaths,
        crashes_after_return=crash_after_return.crashes,
        failed_invocations=runtime.failures,
        input_records=len(lines),
        resent_records=len(resent),
    )
    result.faulty_transitions = _avro_rows(s3, "cdc-faulty", CDC_TRANSITIONS_PREFIX)
    result.clean_transitions = _avro_rows(s3, "cdc-clean", CDC_TRANSITIONS_PREFIX)
    result.faulty_history = _history(spark, _objects(s3, "cdc-faulty", CDC_SNAPSHOTS_PREFIX))
    result.clean_history = _history(spark, _objects(s3, "cdc-clean", CDC_SNAPSHOTS_PREFIX))
    return result


def _history(spark: Any, objects: dict[str, bytes]) -> list[tuple[Any, ...]]:
    """The history job (SCD2, with its de-duplication on event_id) over a snapshot log."""
    from glue_jobs.subscription_history import read_avro_files
    from glue_jobs.transforms.history import build_subscription_history

    history = build_subscription_history(read_avro_files(spark, list(objects.values())))
    return sorted(tuple(row) for row in history.collect())


def _objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def _avro_rows(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for body in _objects(s3, bucket, prefix).values():
        rows.extend(dict(r) for r in fastavro.reader(io.BytesIO(body)))  # type: ignore[arg-type]
    return rows


def _by_event_id(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The history job's de-duplication rule, on the change log: one row per event_id
    (``processed_at`` is when the processor ran, so it differs between runs and is left out)."""
    return {r["event_id"]: {k: v for k, v in r.items() if k != "processed_at"} for r in rows}


# ---------------------------------------------------------------------------------------------
# Figures (printed by the fixture; quoted in docs/reliability.md)
# ---------------------------------------------------------------------------------------------


def figures(o: Outcome) -> dict[str, Any]:
    c, d, online, cdc = o.clickstream, o.delivery, o.online, o.cdc
    return {
        "clickstream": {
            "events_sent": len(c.events),
            "acknowledged": len(c.acknowledged),
            "unacknowledged": c.unacknowledged,
            **c.faults.figures(),
            "kinesis_records_in_stream": c.stream_records,
            "user_records_in_stream": c.user_records_in_stream,
            "malformed_records_written": c.bad_records,
            "firehose_invocations": d.retries.invocations,
            "firehose_crashes_after_rejects_file": d.transform.crashes,
            "firehose_invocation_retries": d.retries.retries,
            "delivery_buffers_before_death": d.first.buffers,
            "rows_delivered_before_death": d.first.delivered,
            "rows_delivered_by_replay": d.replay.delivered,
            "raw_parquet_files": d.raw_files,
            "raw_rows": d.raw_rows,
            "raw_distinct_event_ids": d.raw_distinct,
            "raw_duplicates": d.raw_rows - d.raw_distinct,
            "curated_rows": d.curated_rows,
            "curated_duplicates": d.curated_rows - d.curated_distinct,
            "lost": len(c.acknowledged - d.curated_ids),
            "rejects_entries": sum(len(v) for v in d.rejects.values()),
            "rejected_records_distinct": len(_rejected_sources(d)),
        },
        "online_features": _consumer_figures(online) | {"users": len(online.clean_store.records)},
        "cdc": _consumer_figures(cdc)
        | {
            "dms_records": cdc.input_records,
            "dms_records_published_twice": cdc.resent_records,
            "transition_rows_written": len(cdc.faulty_transitions),
            "transition_duplicates_in_log": len(cdc.faulty_transitions) - len(_by_event_id(cdc.faulty_transitions)),
            "transitions_after_dedup": len(_by_event_id(cdc.faulty_transitions)),
            "transitions_clean_pass": len(_by_event_id(cdc.clean_transitions)),
            "history_rows": len(cdc.faulty_history),
        },
    }


def _consumer_figures(consumer: Consumer) -> dict[str, int]:
    return {
        "process_deaths_after_side_effect": consumer.deaths,
        "crashes_after_return": consumer.crashes_after_return,
        "failed_invocations_retried": consumer.failed_invocations,
        "invocations_faulty_run": consumer.faulty.invocations,
        "invocations_replay_from_trim_horizon": consumer.replay.invocations,
        "invocations_clean_pass": consumer.clean.invocations,
        "records_sent_to_dlq": consumer.faulty.sent_to_dlq + consumer.replay.sent_to_dlq,
    }


def _rejected_sources(delivery: Delivery) -> dict[tuple[str, str, Any], str]:
    """Distinct rejected records (by position in the stream) and their reason codes."""
    return {
        (e["source"]["shard_id"], e["source"]["sequence_number"], e["source"]["subsequence_number"]): e["reason_code"]
        for entries in delivery.rejects.values()
        for e in entries
    }


# ---------------------------------------------------------------------------------------------
# The guarantees
# ---------------------------------------------------------------------------------------------


def test_the_faults_were_injected(outcome: Outcome) -> None:
    # A run where nothing went wrong proves nothing: the faults must really have happened.
    c = outcome.clickstream
    assert 0.08 < c.faults.lost_acks / c.faults.entries < 0.12
    assert 0.04 < c.faults.throttled / c.faults.entries < 0.06
    assert c.faults.lost_calls > 0
    assert c.faults.copies_in_stream == c.faults.lost_acks + c.faults.lost_call_entries
    assert outcome.delivery.transform.crashes == FIREHOSE_CRASHES
    assert outcome.delivery.first.died and outcome.delivery.first.buffers == DIE_AFTER_BUFFERS
    assert outcome.online.deaths == len(ONLINE_DIE_AFTER_PUTS)
    assert outcome.cdc.deaths == len(CDC_DIE_AFTER_PUTS)
    assert outcome.cdc.crashes_after_return == len(CDC_CRASH_AFTER_RETURN)


def test_the_producer_acknowledges_every_event_despite_lost_acks_and_throttling(outcome: Outcome) -> None:
    assert outcome.clickstream.unacknowledged == 0
    assert len(outcome.clickstream.acknowledged) == EVENTS


def test_the_raw_lake_holds_duplicates_that_the_curated_lake_drops(outcome: Outcome) -> None:
    d = outcome.delivery
    # Lost acknowledgements and the replayed buffers are in the raw lake more than once...
    assert d.raw_rows - d.raw_distinct >= d.first.delivered
    # ...and dedupe_events keeps exactly one row per event_id.
    assert d.curated_rows == d.curated_distinct == d.raw_distinct


def test_the_curated_lake_holds_exactly_the_acknowledged_events(outcome: Outcome) -> None:
    acknowledged, curated = outcome.clickstream.acknowledged, outcome.delivery.curated_ids
    assert acknowledged - curated == set(), "acknowledged events lost"
    assert curated - acknowledged == set(), "events in the lake that nobody acknowledged"
    assert len(curated) == EVENTS


def test_every_malformed_record_is_rejected_once_with_its_reason(outcome: Outcome) -> None:
    d = outcome.delivery
    rejected = _rejected_sources(d)
    expected = Counter(b.reason_code for b in malformed_clickstream_records(BAD_RECORDS, seed=SEED))
    assert Counter(rejected.values()) == expected
    assert all(e["reason"] for entries in d.rejects.values() for e in entries)
    # No valid event was rejected: the rows delivered plus the rejections are every user record.
    assert d.replay.delivered + d.replay.processing_failed == outcome.clickstream.user_records_in_stream
    assert d.replay.processing_failed == BAD_RECORDS and d.replay.conversion_failed == 0


def test_a_retried_transform_invocation_overwrites_its_rejects_file(outcome: Outcome) -> None:
    # The crashed invocations had written their rejects file; Firehose's retry of the same records
    # wrote the same key again, so each crashed batch has exactly one rejects object.
    d = outcome.delivery
    for event, answer in d.transform.crashed:
        record_ids = {r["recordId"] for r in event["records"]}
        holding = [key for key, entries in d.rejects.items() if record_ids & {e["recordId"] for e in entries}]
        assert holding == [rejects_key(parse_event(event), prefix=CLICKSTREAM_REJECTS_PREFIX)]
        failed = sum(1 for r in answer["records"] if r["result"] == "ProcessingFailed")
        assert len(d.rejects[holding[0]]) == failed


def test_online_features_are_not_inflated_by_crashes_and_replays(outcome: Outcome) -> None:
    online = outcome.online
    # The same feature records as a clean single pass over the stream...
    assert online.faulty_store.records == online.clean_store.records
    assert len(online.clean_store.records) > 0
    # ...because each user's state holds each of their events exactly once, however often the
    # events reached the consumer (lost acknowledgements, crashes, the replay from TRIM_HORIZON).
    expected: dict[str, set[str | None]] = {}
    for event, event_id in zip(outcome.clickstream.events, outcome.clickstream.event_ids, strict=True):
        if event["user_id"] is not None:
            expected.setdefault(event["user_id"], set()).add(event_id)
    assert online.state_event_ids == expected
    assert online.faulty.sent_to_dlq == online.replay.sent_to_dlq == 0


def test_cdc_transitions_survive_crashes_and_replays_exactly_once_after_dedup(outcome: Outcome) -> None:
    cdc = outcome.cdc
    # The change log is at-least-once: crashes between the S3 write and the commit repeat rows...
    assert len(cdc.faulty_transitions) > len(_by_event_id(cdc.faulty_transitions))
    # ...the clean pass has none (DMS's own resends are recognised by the processor)...
    assert len(cdc.clean_transitions) == len(_by_event_id(cdc.clean_transitions))
    # ...and after the de-duplication on event_id both runs hold the same transitions and history.
    assert _by_event_id(cdc.faulty_transitions) == _by_event_id(cdc.clean_transitions)
    assert cdc.faulty_history == cdc.clean_history
    assert len(cdc.clean_history) > 0
    assert cdc.faulty.sent_to_dlq == cdc.replay.sent_to_dlq == 0


def test_decoded_rejects_hold_the_raw_bytes_for_a_replay(outcome: Outcome) -> None:
    bad = {b.data for b in malformed_clickstream_records(BAD_RECORDS, seed=SEED)}
    kept = {base64.b64decode(e["raw_base64"]) for entries in outcome.delivery.rejects.values() for e in entries}
    assert kept == bad
