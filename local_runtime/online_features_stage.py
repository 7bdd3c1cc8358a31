"""Online features: clickstream stream -> λ online_features (the real handler, via a local event
source mapping) -> the ``user-clickstream`` online store; then the online/offline parity check.

The function is one more consumer of the clickstream stream, fed like the CDC processor: every
record the stream holds, as Kinesis events shaped as AWS sends them, with the consumer settings the
stack deploys. Its state table and rejects queue are real DynamoDB and SQS on the embedded AWS; moto
has no ``sagemaker-featurestore-runtime``, so the handler's online-store writer (``feature_writer``,
the seam its tests use too) is the in-memory store, which keeps a record as ``PutRecord`` does (only
a later event time replaces the stored record), for the stage's duration.

**Parity, and at which instant.** The handler writes a user's features as of *that user's* newest
event (a few ms later when late events arrived: ``lambdas/online_features/state.py``), so every
online record has its own instant. A Spark snapshot at one common instant (a weekly ``as_of``, or the
newest event of all) could only agree with the user whose last event is the newest: everyone else's
windows have slid since their last event. So each record is compared with the Spark job's features
as of the record's own instant; but never earlier than the user's newest signed-in event in the lake
(after the job's de-duplication), so that a record that missed its user's newest events shows as a
mismatch instead of being checked at its own stale instant. A user with no online record is compared
as of their newest event in the lake (and differs: the record is missing).

One Spark job computes every user's instant at once: the transforms read time only as differences
(between one party's events, and from ``as_of``), so moving all of a user's events and the ``as_of``
by the same amount changes none of that user's features. Each user's events are moved so that their
instant lands on the latest instant of all, ``user_clickstream_features`` runs once there, and each
row gets its user's real instant back. (One job per instant would mean a job per user.) Nothing is
written to the lake's weekly snapshots: the offline side lives in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lambdas.online_features.feature_store import FeatureRecordWriter, InMemoryFeatureStore
from local_runtime.context import RunContext
from local_runtime.event_source import LocalEventSourceMapping, MappingReport, dlq_sender
from local_runtime.feature_parity import FeatureDifference, mismatches
from local_runtime.kinesis_reader import read_stream
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from platform_core.schemas.features import EVENT_TIME, USER_CLICKSTREAM, from_feature_record

FUNCTION = "online_features"  # lambdas/online_features
MISMATCHES_FILE = "online_offline_mismatches.jsonl"
_SHIFT = "_shift_us"  # how far a user's events move so that their instant lands on the common one
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class OnlineFeaturesLanding:
    mapping: MappingReport
    online_users: int = 0
    rejected: int = 0  # records the function sent to its rejects queue, with their reasons
    mismatched_users: int = 0
    differences: list[FeatureDifference] = field(default_factory=list)
    mismatch_file: Path | None = None


def provision(ctx: RunContext) -> tuple[str, str, str]:
    """The function's state table, rejects queue and on-failure queue, named as the stack names them."""
    names = ctx.names
    table = names.online_features_state_table
    ddb = ctx.aws.client("dynamodb")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = ctx.aws.client("sqs")
    rejects = sqs.create_queue(QueueName=names.online_features_rejects_queue)["QueueUrl"]
    dlq = sqs.create_queue(QueueName=names.dead_letter_queue(FUNCTION))["QueueUrl"]
    return table, rejects, dlq


def run(ctx: RunContext, spark: Any) -> OnlineFeaturesLanding:
    """Feed the stream to the function, then compare its online records with the Spark job's."""
    store = InMemoryFeatureStore()
    landing = consume_stream(ctx, store)
    group_name = USER_CLICKSTREAM.physical_name(ctx.config.resource_prefix)
    online = {
        user_id: from_feature_record(USER_CLICKSTREAM, record)
        for (group, user_id), record in store.records.items()
        if group == group_name
    }
    instants = {user_id: values[EVENT_TIME] for user_id, values in online.items()}
    offline = offline_features(spark, ctx.lake / "clickstream_raw", ctx.config.glue.session_gap_minutes, instants)
    found = mismatches(USER_CLICKSTREAM, online, offline)
    landing.online_users = len(online)
    landing.mismatched_users = len(found)
    landing.differences = [d for differences in found.values() for d in differences]
    if landing.differences:
        landing.mismatch_file = _write_differences(ctx.errors / "features" / MISMATCHES_FILE, landing.differences)
    ctx.progress.say(
        "online",
        f"{landing.online_users} users online, {landing.mismatched_users} differ from the Spark job "
        f"({len(offline)} offline), {landing.rejected} records rejected, "
        f"{landing.mapping.sent_to_dlq} sent to the on-failure queue, {landing.mapping.invocations} invocations",
    )
    return landing


def consume_stream(ctx: RunContext, store: FeatureRecordWriter) -> OnlineFeaturesLanding:
    """Every record of the clickstream stream through the real handler, writing to ``store``."""
    table, rejects_url, dlq_url = provision(ctx)
    os.environ.update(
        {
            "STATE_TABLE_NAME": table,
            "FEATURE_GROUP_NAME": USER_CLICKSTREAM.physical_name(ctx.config.resource_prefix),
            "REJECTS_QUEUE_URL": rejects_url,
            "SESSION_GAP_MINUTES": str(ctx.config.glue.session_gap_minutes),
        }
    )
    from lambdas.online_features import handler

    stream = ctx.names.clickstream_stream
    consumer = ctx.config.consumer
    with _online_store(store):
        mapping = LocalEventSourceMapping(
            function_name=ctx.names.function(FUNCTION),
            stream_arn=ctx.stream_arn(stream),
            handler=handler.handler,
            batch_size=consumer.batch_size,
            retry_attempts=consumer.retry_attempts,
            on_failure=dlq_sender(ctx.aws.client("sqs"), dlq_url),
        ).run(list(read_stream(ctx.aws.client("kinesis"), stream)))
    rejected = _drain(ctx, rejects_url, ctx.errors / "online_features" / "rejected.jsonl")
    return OnlineFeaturesLanding(mapping=mapping, rejected=rejected)


@contextmanager
def _online_store(store: FeatureRecordWriter) -> Iterator[None]:
    """The handler's online-store writer is ``store`` while the stage runs; its settings and
    clients are built afresh (against this run's environment and embedded AWS) and forgotten after."""
    from lambdas.online_features import clients, handler, settings

    def forget() -> None:
        cached = (handler.processor, settings.get_settings, clients.dynamodb, clients.sqs, clients.featurestore_runtime)
        for factory in cached:
            factory.cache_clear()

    original = handler.feature_writer
    forget()
    setattr(handler, "feature_writer", lambda: store)  # noqa: B010 (a module attribute is the seam)
    try:
        yield
    finally:
        setattr(handler, "feature_writer", original)  # noqa: B010
        forget()


def _drain(ctx: RunContext, queue_url: str, target: Path) -> int:
    """The rejects queue's messages (one rejected record each, with its reason) into a file: the
    queue dies with the embedded AWS, the file stays for the person who reads the run."""
    sqs = ctx.aws.client("sqs")
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    if bodies:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(body + "\n" for body in bodies))
    return len(bodies)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _micros(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def offline_features(
    spark: Any, raw_path: Path, gap_minutes: int, instants: Mapping[str, datetime]
) -> dict[str, dict[str, Any]]:
    """The Spark job's ``user-clickstream`` features of every signed-in user of the raw lake, each as
    of ``instants[user]`` or the user's newest event, whichever is later (module docstring: the
    instants, and the one-job translation)."""
    from pyspark.sql import functions as F  # noqa: N812

    from glue_jobs.transforms.clickstream import dedupe_events, sessionize, user_clickstream_features

    raw = spark.read.parquet(str(raw_path)).select(*CLICKSTREAM_RAW.field_names)
    events = dedupe_events(raw).filter(F.col("user_id").isNotNull()).cache()
    try:
        t = F.unix_micros(F.col("event_time"))
        newest = {
            str(r["user_id"]): int(r["newest"])
            for r in events.groupBy("user_id").agg(F.max(t).alias("newest")).collect()
        }
        chosen = {u: max(n, _micros(instants[u])) if u in instants else n for u, n in newest.items()}
        if not chosen:
            return {}
        common = max(chosen.values())
        shifts = spark.createDataFrame([(u, common - us) for u, us in chosen.items()], f"user_id string, {_SHIFT} long")
        moved = (
            events.join(F.broadcast(shifts), "user_id")
            .withColumn("event_time", F.timestamp_micros(t + F.col(_SHIFT)))
            .drop(_SHIFT)
        )
        rows = user_clickstream_features(sessionize(moved, gap_minutes), _from_micros(common)).collect()
    finally:
        events.unpersist()
    return {str(r["user_id"]): {**r.asDict(), EVENT_TIME: _from_micros(chosen[str(r["user_id"])])} for r in rows}


def _write_differences(path: Path, differences: list[FeatureDifference]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for d in differences:
            row = {"user_id": d.user_id, "feature": d.feature, "online": d.online, "offline": d.offline}
            out.write(json.dumps(row, default=str) + "\n")
    return path
