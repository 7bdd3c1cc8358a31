"""Feature Store on the local run: the feature snapshots go into the feature groups as in AWS.

moto has no ``sagemaker-featurestore-runtime``, so :class:`LocalFeatureStore` stands in for it,
with its semantics: ``PutRecord`` appends to the offline store, and replaces a record of the online
store only when its event time is later. Everything else is the code the Glue jobs run after their
snapshot (``glue_jobs.ingest``): the same partition read, the same row -> record mapping, the same
put loop and stores per group (user-subscription online and offline, user-clickstream offline only:
its online store belongs to the stream). The rows are put from the driver, because the in-memory
store lives there; in Glue the executors put them. Rejects land, with their reasons, in
``errors/feature-store/<group>/snapshot_date=<day>/rejects.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from local_runtime.context import RunContext
from platform_core.schemas.features import (
    EVENT_TIME,
    FEATURE_GROUPS,
    RECORD_IDENTIFIER,
    FeatureGroup,
    parse_event_time,
)

SNAPSHOTS = Path("features")  # under the local lake, as the glue jobs stage writes them
STORES = ("OnlineStore", "OfflineStore")


@dataclass
class LocalFeatureStore:
    """PutRecord's semantics in memory (``put_record`` takes exactly the boto3 call's arguments)."""

    online: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    offline: dict[str, list[list[dict[str, str]]]] = field(default_factory=dict)

    def put_record(
        self,
        *,
        FeatureGroupName: str,  # noqa: N803 (boto3's parameter names)
        Record: list[dict[str, str]],  # noqa: N803
        TargetStores: Sequence[str] = STORES,  # noqa: N803
    ) -> dict[str, Any]:
        unknown = set(TargetStores) - set(STORES)
        if unknown:
            raise ValueError(f"unknown target stores {sorted(unknown)}")
        if "OfflineStore" in TargetStores:
            self.offline.setdefault(FeatureGroupName, []).append([dict(item) for item in Record])
        if "OnlineStore" in TargetStores:
            key = (FeatureGroupName, _value(Record, RECORD_IDENTIFIER))
            current = self.online.get(key)
            # A record with an earlier or equal event time is historic: offline only.
            if current is None or _event_time(Record) > _event_time(current):
                self.online[key] = [dict(item) for item in Record]
        return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    def online_records(self, feature_group_name: str) -> int:
        return sum(1 for group, _ in self.online if group == feature_group_name)

    def offline_rows(self, feature_group_name: str) -> int:
        return len(self.offline.get(feature_group_name, []))


def _value(record: list[dict[str, str]], name: str) -> str:
    return next(item["ValueAsString"] for item in record if item["FeatureName"] == name)


def _event_time(record: list[dict[str, str]]) -> datetime:
    return parse_event_time(_value(record, EVENT_TIME))


@dataclass
class FeatureStoreLanding:
    store: LocalFeatureStore
    summary: dict[str, dict[str, int]]


def run(ctx: RunContext, spark: Any) -> FeatureStoreLanding:
    """Put every snapshot of every group (oldest first, as the daily runs would have)."""
    store = LocalFeatureStore()
    summary = {group.name: _ingest_group(ctx, spark, group, store) for group in FEATURE_GROUPS}
    ctx.progress.say(
        "feature store",
        ", ".join(
            f"{name}: {s['records_written']} put, {s['records_rejected']} rejected" for name, s in summary.items()
        ),
    )
    return FeatureStoreLanding(store=store, summary=summary)


def _ingest_group(ctx: RunContext, spark: Any, group: FeatureGroup, store: LocalFeatureStore) -> dict[str, int]:
    from glue_jobs.ingest.put import REJECTED, IngestTarget, RetryPolicy, ingest_rows
    from glue_jobs.ingest.records import rejects_prefix, target_stores
    from glue_jobs.ingest.snapshot import read_snapshot, typed_row

    name = group.physical_name(ctx.config.resource_prefix)
    counts = {"records_written": 0, "records_rejected": 0}
    for partition in sorted((ctx.lake / SNAPSHOTS / group.name.replace("-", "_")).glob("snapshot_date=*")):
        rows = [typed_row(group, r.asDict()) for r in read_snapshot(spark, group, str(partition)).collect()]
        if not rows:
            continue
        # The snapshot's instant, from the data: every row of a partition carries it.
        as_of = max(row[group.event_time] for row in rows if row.get(group.event_time) is not None)
        target = IngestTarget(group, name, target_stores(group), as_of)
        outcomes = list(
            ingest_rows(rows, put_record=store.put_record, target=target, policy=RetryPolicy(max_attempts=1))
        )
        rejects = [dataclasses.asdict(o) for o in outcomes if o.status == REJECTED]
        counts["records_written"] += len(outcomes) - len(rejects)
        counts["records_rejected"] += len(rejects)
        if rejects:
            folder = ctx.errors / rejects_prefix(group).removeprefix("errors/") / partition.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "rejects.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejects))
    return {**counts, "online_records": store.online_records(name), "offline_rows": store.offline_rows(name)}
