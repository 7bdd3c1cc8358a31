"""Subscription changes as AWS DMS records for a Kinesis target."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime
from typing import Any

import pandas as pd

from datagen.cdc import kinesis_entries
from datagen.world import SyntheticWorld

DMS_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
COLUMNS = {"user_id", "is_active_subscribed", "renewal_date", "plan", "price"}


def test_records_have_the_dms_shape(cdc: list[dict[str, Any]]) -> None:
    for record in cdc:
        metadata = record["metadata"]
        assert set(record) <= {"data", "metadata", "before-image"}
        assert set(record["data"]) == COLUMNS
        assert isinstance(record["data"]["user_id"], str)
        assert isinstance(record["data"]["is_active_subscribed"], bool)
        assert isinstance(record["data"]["price"], float)
        date.fromisoformat(record["data"]["renewal_date"])  # YYYY-MM-DD
        assert DMS_TIMESTAMP.match(metadata["timestamp"])
        assert metadata["record-type"] == "data"
        assert metadata["partition-key-type"] == "primary-key"
        assert (metadata["schema-name"], metadata["table-name"]) == ("public", "subscriptions")
        # full-load records carry no transaction id, change records do
        assert ("transaction-id" in metadata) == (metadata["operation"] != "load")
        # the before image appears on updates only
        assert ("before-image" in record) == (metadata["operation"] == "update")
    assert {r["metadata"]["operation"] for r in cdc} == {"load", "insert", "update", "delete"}


def test_the_full_load_comes_first_and_changes_follow_in_commit_order(cdc: list[dict[str, Any]]) -> None:
    operations = [r["metadata"]["operation"] for r in cdc]
    loads = operations.count("load")
    assert operations[:loads] == ["load"] * loads
    timestamps = [r["metadata"]["timestamp"] for r in cdc]
    assert timestamps == sorted(timestamps)
    transactions = [r["metadata"]["transaction-id"] for r in cdc[loads:]]
    assert transactions == sorted(transactions) and len(set(transactions)) == len(transactions)


def test_before_images_are_the_previous_rows(cdc: list[dict[str, Any]]) -> None:
    # Replaying the stream, each update's before image is the row as the previous record left it
    state: dict[str, dict[str, Any]] = {}
    for record in cdc:
        user = record["data"]["user_id"]
        operation = record["metadata"]["operation"]
        if operation == "update":
            assert record["before-image"] == state[user]
        if operation == "delete":
            assert record["data"] == state.pop(user)
        else:
            state[user] = record["data"]


def test_cancellations_come_after_the_cutoff_so_features_cannot_see_them(world: SyntheticWorld) -> None:
    # Given each churned renewal and the moment its row was switched off
    cancelled: dict[str, list[datetime]] = {}
    for change in world.history.changes:
        switched_off = change.before is not None and change.before["is_active_subscribed"]
        if change.operation == "update" and switched_off and not change.row["is_active_subscribed"]:
            cancelled.setdefault(change.user_id, []).append(change.time)
    churned = world.history.renewals[world.history.renewals["churned"]]
    assert len(churned) > 10
    for row in churned.itertuples():
        renewal = pd.Timestamp(row.renewal_date, tz="UTC")
        # Then exactly one switch-off falls between the cutoff and the renewal date
        moments = [t for t in cancelled[row.user_id] if row.cutoff_time < t <= renewal]
        assert len(moments) == 1


def test_churned_users_transition_from_active_to_inactive(cdc: list[dict[str, Any]]) -> None:
    transitions = Counter(
        (r["before-image"]["is_active_subscribed"], r["data"]["is_active_subscribed"])
        for r in cdc
        if r["metadata"]["operation"] == "update"
    )
    assert transitions[(True, False)] > 0  # cancellations
    assert transitions[(False, True)] > 0  # win-backs
    assert transitions[(True, True)] > transitions[(True, False)]  # renewals and price rises dominate


def test_price_rise_updates_only_the_price(world: SyntheticWorld, cdc: list[dict[str, Any]]) -> None:
    rises = [
        r
        for r in cdc
        if r["metadata"]["operation"] == "update"
        and r["data"]["price"] > r["before-image"]["price"]
        and r["data"]["plan"] == r["before-image"]["plan"]
    ]
    assert rises
    for r in rises:
        assert r["data"]["plan"] in world.config.price_change
        assert r["data"]["price"] == world.config.price_change[r["data"]["plan"]]


def test_before_image_can_be_primary_key_only_or_absent(world: SyntheticWorld) -> None:
    pk_only = world.cdc_records(before_image="pk-only")
    updates = [r for r in pk_only if r["metadata"]["operation"] == "update"]
    assert updates and all(r["before-image"] == {"user_id": r["data"]["user_id"]} for r in updates)
    assert all("before-image" not in r for r in world.cdc_records(before_image="none"))


def test_schema_evolution_adds_a_column_from_a_moment_on(world: SyntheticWorld) -> None:
    moment = world.config.start_time + (world.config.end_time - world.config.start_time) / 2
    records = world.cdc_records(extra_columns_from=moment)
    evolved = [r for r in records if "currency" in r["data"]]
    assert evolved and len(evolved) < len(records)
    assert all(r["metadata"]["timestamp"] >= moment.strftime("%Y-%m-%dT%H:%M:%S") for r in evolved)


def test_kinesis_entries_use_the_primary_key_as_partition_key(cdc: list[dict[str, Any]]) -> None:
    entries = kinesis_entries(cdc[:20])
    for entry, record in zip(entries, cdc[:20], strict=True):
        assert entry["PartitionKey"] == record["data"]["user_id"]
        assert json.loads(entry["Data"]) == record
