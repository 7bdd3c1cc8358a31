"""The online features stage: the stream through the real handler, then parity with the Spark job.

A small generated clickstream (with its injected duplicates and bad records) goes through the
clickstream stage into the raw lake, as in the demo. One event is then added to the lake only, for
one user, a minute after all of theirs: it stands for an event the online path never saw. Every other
user must agree with the Spark job feature by feature; that one must be found, and written down.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from local_runtime import clickstream_stage, online_features_stage
from local_runtime.clickstream_stage import ClickstreamInput
from local_runtime.context import Progress, RunContext
from local_runtime.embedded_aws import embedded_aws
from local_runtime.feature_parity import FeatureDifference, feature_differences, mismatches
from local_runtime.inputs import generated_world, inject_faults
from local_runtime.online_features_stage import MISMATCHES_FILE, OnlineFeaturesLanding
from local_runtime.provision import provision
from local_runtime.run import _forget_cached_clients
from platform_core.config import load_config
from platform_core.schemas.features import USER_CLICKSTREAM

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]


@dataclass(frozen=True)
class Outcome:
    out: Path
    source: ClickstreamInput
    stream_users: set[str]  # signed-in users of the events that went through the stream
    lake_only_user: str
    landing: OnlineFeaturesLanding


def _add_lake_only_event(lake: Path) -> str:
    """A copy of a signed-in event, one minute after the newest event of its user, under a new id,
    written straight into the raw lake. Returns its user."""
    files = sorted((lake / "clickstream_raw").rglob("*.parquet"))
    rows = [row for path in files for row in pq.read_table(path).to_pylist() if row["user_id"] is not None]
    user = rows[0]["user_id"]
    newest = max(row["event_time"] for row in rows if row["user_id"] == user)
    source = next(path for path in files if any(r["user_id"] == user for r in pq.read_table(path).to_pylist()))
    table = pq.read_table(source)
    first = next(i for i, r in enumerate(table.to_pylist()) if r["user_id"] == user)
    extra = table.slice(first, 1).to_pylist()[0] | {
        "event_id": "lake-only-1",
        "event_time": newest + timedelta(minutes=1),
    }
    pq.write_table(type(table).from_pylist([extra], schema=table.schema), source.with_name("lake-only.parquet"))
    return str(user)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> Iterator[Outcome]:
    out = tmp_path_factory.mktemp("online")
    events = generated_world(20, 5, 1).clickstream()
    source = inject_faults(events, seed=5)
    _forget_cached_clients()
    with embedded_aws() as aws:
        ctx = RunContext(aws=aws, config=load_config("dev"), out=out, progress=Progress(quiet=True))
        provision(ctx)
        clickstream_stage.run(ctx, source)
        lake_only_user = _add_lake_only_event(ctx.lake)
        landing = online_features_stage.run(ctx, spark)
    _forget_cached_clients()
    stream_users = {str(e["user_id"]) for e in events if e.get("user_id") is not None}
    yield Outcome(out, source, stream_users, lake_only_user, landing)


def test_every_signed_in_user_gets_an_online_record_and_bad_records_keep_their_reason(outcome: Outcome) -> None:
    landing = outcome.landing
    assert landing.online_users == len(outcome.stream_users) > 5
    assert landing.mapping.records == len(outcome.source.lines)
    assert landing.mapping.sent_to_dlq == 0
    # The handler rejects exactly the injected bad records (the validator the transform uses), and
    # their reasons land in a file
    assert landing.rejected == outcome.source.injected_bad > 0
    rejected = (outcome.out / "errors" / "online_features" / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == outcome.source.injected_bad
    assert all('"reason": "' in line for line in rejected)


def test_online_records_agree_with_the_spark_job_except_where_the_lake_holds_more(outcome: Outcome) -> None:
    landing = outcome.landing
    # Then every user but the one with a lake-only event agrees feature by feature
    assert landing.mismatched_users == 1
    assert {d.user_id for d in landing.differences} == {outcome.lake_only_user}
    by_feature = {d.feature: d for d in landing.differences}
    # that user is compared as of their newest lake event (a minute after the online record's
    # instant, which is at most a few ms after the user's last streamed event), where the Spark job
    # counts one more event
    instant = by_feature["event_time"]
    assert timedelta(seconds=59) < instant.offline - instant.online <= timedelta(minutes=1)
    assert by_feature["events_30d"].offline == by_feature["events_30d"].online + 1


def test_the_differences_are_written_for_a_person_to_read(outcome: Outcome) -> None:
    path = outcome.out / "errors" / "features" / MISMATCHES_FILE
    assert outcome.landing.mismatch_file == path
    lines = path.read_text().splitlines()
    assert len(lines) == len(outcome.landing.differences) > 1
    assert all(f'"user_id": "{outcome.lake_only_user}"' in line for line in lines)
    assert any('"feature": "events_30d"' in line for line in lines)


T = datetime(2024, 3, 10, 12, tzinfo=UTC)


def _values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(USER_CLICKSTREAM.feature_names)
    values.update(user_id="u1", event_time=T, sessions_7d=2, events_7d=5, bounce_rate_7d=0.5)
    return values | changes


def test_doubles_agree_within_a_relative_1e_9_and_nulls_only_with_nulls() -> None:
    base = _values()
    assert feature_differences(USER_CLICKSTREAM, "u1", base, _values(bounce_rate_7d=0.5 * (1 + 1e-12))) == []
    assert feature_differences(USER_CLICKSTREAM, "u1", base, _values(bounce_rate_7d=0.5001)) == [
        FeatureDifference("u1", "bounce_rate_7d", 0.5, 0.5001)
    ]
    assert feature_differences(USER_CLICKSTREAM, "u1", base, _values(bounce_rate_7d=None)) == [
        FeatureDifference("u1", "bounce_rate_7d", 0.5, None)
    ]
    assert feature_differences(USER_CLICKSTREAM, "u1", base, _values(sessions_7d=3, event_time=T.replace(hour=13))) == [
        FeatureDifference("u1", "event_time", T, T.replace(hour=13)),
        FeatureDifference("u1", "sessions_7d", 2, 3),
    ]


def test_a_record_only_one_path_wrote_is_a_mismatch() -> None:
    found = mismatches(USER_CLICKSTREAM, {"u1": _values(), "u2": _values(user_id="u2")}, {"u1": _values()})
    assert found == {"u2": [FeatureDifference("u2", "user_id", "u2", None)]}
