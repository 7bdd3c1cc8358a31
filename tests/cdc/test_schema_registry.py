"""The checked-in registry (platform_core/schemas/registry/<Name>/v<N>.avsc) against the code:
every version reads the one before (BACKWARD), and the schema the code derives is the latest
registered one, so a careless change to platform_core/schemas/cdc.py fails `make test`."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, date, datetime
from typing import Any, cast

import fastavro
import pytest

from platform_core.avro_compat import (
    Mode,
    check,
    normalized,
    reader_incompatibilities,
    registered_schema_names,
    registered_versions,
)
from platform_core.schema import avro_schema
from platform_core.schemas.cdc import REGISTERED_SCHEMAS, STATE_SNAPSHOT

CURRENT = {s.name: avro_schema(s) for s in REGISTERED_SCHEMAS}
NAMES = registered_schema_names()


def test_every_schema_of_the_code_is_registered() -> None:
    assert sorted(CURRENT) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_versions_are_numbered_from_one_without_gaps(name: str) -> None:
    assert [v.version for v in registered_versions(name)] == list(range(1, len(registered_versions(name)) + 1))


@pytest.mark.parametrize("name", NAMES)
def test_consecutive_versions_are_backward_compatible(name: str) -> None:
    versions = registered_versions(name)
    problems = {
        f"v{newer.version}": [str(p) for p in check(newer.schema, [older.schema], Mode.BACKWARD)]
        for older, newer in itertools.pairwise(versions)
    }
    assert {v: p for v, p in problems.items() if p} == {}


@pytest.mark.parametrize("name", NAMES)
def test_code_schema_can_read_the_latest_registered_version(name: str) -> None:
    latest = registered_versions(name)[-1]
    problems = reader_incompatibilities(CURRENT[name], latest.schema)
    assert problems == [], f"{name} in code cannot read v{latest.version}: " + "; ".join(map(str, problems))


@pytest.mark.parametrize("name", NAMES)
def test_code_schema_is_the_latest_registered_version(name: str) -> None:
    latest = registered_versions(name)[-1]
    assert normalized(CURRENT[name]) == normalized(latest.schema), (
        f"{name} changed in code: register it as v{latest.version + 1}.avsc "
        "(see platform_core/schemas/registry/README.md)"
    )


def test_a_careless_change_would_fail() -> None:
    # Given the snapshot schema with a new required field and no default
    careless = avro_schema(STATE_SNAPSHOT)
    careless["fields"].append({"name": "churn_risk", "type": "double"})
    latest = registered_versions(STATE_SNAPSHOT.name)[-1]
    # Then the registry check refuses it
    assert [p.problem.value for p in check(careless, [latest.schema])] == ["reader_field_missing_default"]


def test_data_written_with_an_old_version_reads_with_the_new_schema() -> None:
    # Given a snapshot written with v1 as registered, and a "v2" that adds an optional field
    v1 = registered_versions(STATE_SNAPSHOT.name)[0].schema
    v2 = avro_schema(STATE_SNAPSHOT)
    v2["fields"].append({"name": "currency", "type": ["null", "string"], "default": None})
    assert check(v2, [v1]) == []
    datum = {
        "event_id": "e1",
        "user_id": "u1",
        "is_active_subscribed": True,
        "renewal_date": date(2026, 12, 1),
        "plan": "basic",
        "price": 9.99,
        "is_deleted": False,
        "operation": "insert",
        "change_time": datetime(2026, 11, 30, 10, tzinfo=UTC),
        "transaction_id": 12,
        "source_position": "p",
        "processed_at": datetime(2026, 11, 30, 10, 1, tzinfo=UTC),
    }
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(v1), [datum])
    buffer.seek(0)
    # When read with the newer schema
    [read] = [cast(dict[str, Any], r) for r in fastavro.reader(buffer, reader_schema=fastavro.parse_schema(v2))]
    # Then every old field survives and the new one takes its default
    assert read["currency"] is None
    assert {k: read[k] for k in datum} == datum
