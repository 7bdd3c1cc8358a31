"""The online features consumer: Kinesis events in, Feature Store records out, idempotent."""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.online_features import clients
from lambdas.online_features import handler as handler_module
from lambdas.online_features.events import FeatureEvent
from lambdas.online_features.feature_store import FeatureStoreRuntimeWriter, InMemoryFeatureStore
from lambdas.online_features.settings import Settings, get_settings
from lambdas.online_features.state import DynamoDBStateStore, UserState, decode_events, encode_events
from platform_core.kpl import UserRecord, aggregate
from platform_core.schemas.features import USER_CLICKSTREAM, from_feature_record
from tests.features.conftest import DESKTOP_UA, IPHONE_UA, T0
from tests.features.kinesis_events import kinesis_event, producer_event, sequence_numbers

GROUP = "mlp-dev-user-clickstream"
TABLE = "mlp-dev-online-feature-state"


@dataclass
class Online:
    store: InMemoryFeatureStore
    sqs: Any
    queue_url: str
    dynamodb: Any

    def features(self, user_id: str) -> dict[str, Any]:
        record = self.store.get_record(GROUP, user_id)
        assert record is not None, f"no online record for {user_id}"
        return from_feature_record(USER_CLICKSTREAM, record)

    def rejects(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def stored_event_ids(self, user_id: str) -> list[str]:
        item = self.dynamodb.get_item(TableName=TABLE, Key={"user_id": {"S": user_id}})["Item"]
        return sorted(e.event_id for e in decode_events(item["events"]["B"]))


def _clear_caches() -> None:
    for cached in (
        get_settings,
        handler_module.processor,
        handler_module.feature_writer,
        clients.dynamodb,
        clients.sqs,
        clients.featurestore_runtime,
    ):
        # feature_writer is replaced by a plain function while a test runs
        getattr(cached, "cache_clear", lambda: None)()


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> Iterator[Online]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="online-features-rejects")["QueueUrl"]
        monkeypatch.setenv("STATE_TABLE_NAME", TABLE)
        monkeypatch.setenv("FEATURE_GROUP_NAME", GROUP)
        monkeypatch.setenv("REJECTS_QUEUE_URL", queue_url)
        _clear_caches()
        store = InMemoryFeatureStore()
        monkeypatch.setattr(handler_module, "feature_writer", lambda: store)
        yield Online(store, sqs, queue_url, dynamodb)
        _clear_caches()


def _u1_session() -> list[dict[str, Any]]:
    return [
        producer_event("e1", T0, user_agent=IPHONE_UA, referrer="https://www.google.com/search?q=shoes"),
        producer_event("e2", T0 + timedelta(minutes=5), event_type="add_to_cart", user_agent=IPHONE_UA),
        producer_event("e3", T0 + timedelta(minutes=10), event_type="purchase", user_agent=IPHONE_UA),
    ]


def test_a_batch_becomes_one_record_per_user(online: Online) -> None:
    # Given a session of u1 on an iPhone from Google, one desktop page view of u2 without a
    # referrer, and an anonymous event
    event = kinesis_event(
        [
            *_u1_session(),
            producer_event("f1", T0 + timedelta(hours=1), user_id="u2", user_agent=DESKTOP_UA),
            producer_event("x1", T0, user_id=None, session_id="anon"),
        ]
    )
    # When
    response = handler_module.handler(event, None)
    # Then nothing is retried, and each signed-in user has features as of their latest event
    assert response == {"batchItemFailures": []}
    u1 = online.features("u1")
    assert u1["event_time"] == T0 + timedelta(minutes=10)
    assert (u1["sessions_7d"], u1["events_7d"], u1["add_to_cart_7d"], u1["purchases_7d"]) == (1, 3, 1, 1)
    assert (u1["mean_session_seconds_7d"], u1["mobile_share_7d"], u1["search_share_7d"]) == (600.0, 1.0, 1.0)
    assert (u1["cart_to_purchase_30d"], u1["days_since_last_event"]) == (1.0, 0.0)
    u2 = online.features("u2")
    assert (u2["sessions_30d"], u2["bounce_rate_30d"], u2["direct_share_30d"], u2["mobile_share_30d"]) == (
        1,
        1.0,
        1.0,
        0.0,
    )
    assert u2["cart_to_purchase_30d"] is None  # no carts: left out of the record, not zero
    assert online.store.get_record(GROUP, "anon") is None
    assert online.rejects() == []


def test_replaying_events_does_not_inflate_counts(online: Online) -> None:
    # Given u1's session already processed
    handler_module.handler(kinesis_event(_u1_session()), None)
    before = online.features("u1")
    puts = online.store.puts
    # When the same records are delivered again, and a producer retry duplicates e2 in a new batch
    assert handler_module.handler(kinesis_event(_u1_session()), None) == {"batchItemFailures": []}
    handler_module.handler(kinesis_event([_u1_session()[1]], first_sequence=50), None)
    # Then the features are exactly the same (and were rewritten, which repairs a failed put)
    assert online.features("u1") == before
    assert online.features("u1")["events_30d"] == 3
    assert online.store.puts == puts + 2
    assert online.stored_event_ids("u1") == ["e1", "e2", "e3"]


def test_out_of_order_events_land_in_their_session(online: Online) -> None:
    # Given u1's last event first, then the earlier ones
    session = _u1_session()
    handler_module.handler(kinesis_event([session[2]]), None)
    handler_module.handler(kinesis_event(session[:2], first_sequence=10), None)
    # Then the online store holds the same features as in order: one 10-minute session, as of
    # 2 ms after the latest event (each late event moves the instant on by 1 ms, because PutRecord
    # replaces the stored record only with a later one)
    u1 = online.features("u1")
    assert (u1["sessions_7d"], u1["events_7d"], u1["mean_session_seconds_7d"]) == (1, 3, 600.0)
    assert u1["event_time"] == T0 + timedelta(minutes=10, milliseconds=2)


def test_the_instant_depends_on_the_arrival_order_only_not_on_batches_or_replays() -> None:
    # Given u1's events, the last one first, merged in one batch, one by one, and replayed
    def event(event_id: str, minutes: int) -> FeatureEvent:
        return FeatureEvent(
            event_id, int((T0 + timedelta(minutes=minutes)).timestamp() * 1000), "page_view", False, "direct"
        )

    arrivals = [event("e3", 10), event("e1", 0), event("e2", 5)]
    horizon = 31 * 86_400_000
    whole, piecewise = UserState("u1"), UserState("u1")
    whole.merge(arrivals, horizon)
    for e in arrivals:
        piecewise.merge([e], horizon)
    piecewise.merge(arrivals, horizon)  # a replay
    # Then both are as of the latest event plus one millisecond per late event
    assert whole.as_of_ms == piecewise.as_of_ms == arrivals[0].time_ms + 2


def test_bad_events_go_to_the_rejects_queue_with_a_reason_and_the_rest_go_through(online: Online) -> None:
    good = producer_event("e1", T0)
    unknown_type = producer_event("e2", T0, event_type="teleport")
    no_zone = {**producer_event("e3", T0), "event_time": "2024-03-10T00:00:00"}
    event = kinesis_event([b"{not json", unknown_type, good, no_zone])
    # When
    response = handler_module.handler(event, None)
    # Then the bad ones are not retried (retrying cannot fix them) but kept with their reason
    assert response == {"batchItemFailures": []}
    rejects = online.rejects()
    assert sorted(r["code"] for r in rejects) == ["naive_timestamp", "not_json", "unknown_event_type"]
    assert all(r["reason"] for r in rejects)
    bad_sequences = [sequence_numbers(event)[i] for i in (0, 1, 3)]
    assert sorted(r["sequence_number"] for r in rejects) == sorted(bad_sequences)
    assert online.features("u1")["events_30d"] == 1


def test_kpl_aggregated_records_are_deaggregated(online: Online) -> None:
    # Given u1's three events packed into one KPL record
    packed = aggregate(UserRecord("s1", json.dumps(e).encode()) for e in _u1_session())
    # When
    assert handler_module.handler(kinesis_event([packed]), None) == {"batchItemFailures": []}
    # Then all three count
    assert online.features("u1")["events_7d"] == 3


def test_without_the_kpl_module_aggregated_records_are_retried_not_lost(
    online: Online, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = aggregate(UserRecord("s1", json.dumps(e).encode()) for e in _u1_session())
    event = kinesis_event([packed, producer_event("f1", T0, user_id="u2")])
    monkeypatch.setitem(sys.modules, "platform_core.kpl", None)  # import now raises ImportError
    response = handler_module.handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": sequence_numbers(event)[0]}]}
    assert online.features("u2")["events_30d"] == 1


class _FlakyStore(InMemoryFeatureStore):
    def __init__(self, failing_user: str) -> None:
        super().__init__()
        self.failing_user = failing_user

    def put_record(self, feature_group_name: str, record: Any) -> None:
        if any(i["FeatureName"] == "user_id" and i["ValueAsString"] == self.failing_user for i in record):
            raise ConnectionError("feature store unavailable")
        super().put_record(feature_group_name, record)


def test_a_failed_write_fails_only_that_users_records_and_the_retry_repairs_it(
    online: Online, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the feature store refuses u1's record
    flaky = _FlakyStore("u1")
    monkeypatch.setattr(handler_module, "feature_writer", lambda: flaky)
    handler_module.processor.cache_clear()
    event = kinesis_event([*_u1_session(), producer_event("f1", T0, user_id="u2")])
    # When
    response = handler_module.handler(event, None)
    # Then only u1's records are retried, u2 is written
    assert response["batchItemFailures"] == [{"itemIdentifier": s} for s in sequence_numbers(event)[:3]]
    assert flaky.get_record(GROUP, "u2") is not None
    # When the store recovers and Lambda retries the batch
    flaky.failing_user = ""
    assert handler_module.handler(event, None) == {"batchItemFailures": []}
    # Then u1's record is there, counted once
    assert from_feature_record(USER_CLICKSTREAM, flaky.get_record(GROUP, "u1") or [])["events_7d"] == 3


def test_the_state_refuses_a_stale_write(online: Online) -> None:
    # Given two writers that read the same version of u1's state
    store = DynamoDBStateStore(TABLE, clients.dynamodb, horizon_ms=31 * 86_400_000)
    first, second = store.load("u1"), store.load("u1")
    event = FeatureEvent("e1", 1_710_028_800_000, "page_view", False, "direct")
    first.merge([event], 10**12)
    second.merge([FeatureEvent("e2", 1_710_028_900_000, "page_view", False, "direct")], 10**12)
    # When both save, then the second loses the race and a reload sees the first's event
    assert store.save(first) is True
    assert store.save(second) is False
    assert [e.event_id for e in store.load("u1").events] == ["e1"]
    assert store.load("u1").version == 1


def test_a_batch_read_returns_every_users_state_and_rereads_what_dynamodb_left_unprocessed(
    online: Online, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 150 users with a saved state (two BatchGetItem pages) and one user without any
    store = DynamoDBStateStore(TABLE, clients.dynamodb, horizon_ms=31 * 86_400_000)
    for n in range(150):
        state = store.load(f"u{n}")
        state.merge([FeatureEvent(f"e{n}", 1_710_028_800_000 + n, "page_view", False, "direct")], 10**12)
        assert store.save(state)
    # And a DynamoDB that leaves the first page's last key unprocessed once (throttling)
    real = clients.dynamodb()
    calls: list[int] = []

    class Throttled:
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 (the API's name)
            response = real.batch_get_item(RequestItems=RequestItems)
            calls.append(len(RequestItems[TABLE]["Keys"]))
            if len(calls) == 1:
                kept = response["Responses"][TABLE]
                left = kept.pop()
                response["UnprocessedKeys"] = {TABLE: {"Keys": [{"user_id": left["user_id"]}], "ConsistentRead": True}}
            return response

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr("lambdas.online_features.state.time.sleep", lambda seconds: None)
    throttled = DynamoDBStateStore(TABLE, Throttled, horizon_ms=31 * 86_400_000)
    # When all of them are read at once
    states = throttled.load_many([f"u{n}" for n in range(150)] + ["nobody"])
    # Then every saved state comes back (the unprocessed key asked again), and a new one for the rest
    assert calls == [100, 1, 51]
    assert [states[f"u{n}"].events[0].event_id for n in range(150)] == [f"e{n}" for n in range(150)]
    assert {states[f"u{n}"].version for n in range(150)} == {1}
    assert (states["nobody"].version, states["nobody"].events) == (0, [])


def test_a_user_whose_batch_read_state_went_stale_reloads_and_counts_once(online: Online) -> None:
    # Given u1's state read for the batch, then changed by another writer before this one saves
    handler_module.handler(kinesis_event(_u1_session()[:1]), None)
    store = handler_module.processor()._store
    real_load_many = store.load_many

    def load_many_then_race(user_ids: Any) -> Any:
        states = real_load_many(user_ids)
        other = store.load("u1")
        other.merge([FeatureEvent("e9", (other.latest_ms or 0) + 1, "page_view", False, "direct")], 10**12)
        assert store.save(other)
        return states

    store.load_many = load_many_then_race  # type: ignore[method-assign]
    # When the batch with u1's next events is processed
    assert handler_module.handler(kinesis_event(_u1_session()[1:]), None) == {"batchItemFailures": []}
    # Then the lost race was retried on a fresh read: every event is kept once
    assert online.stored_event_ids("u1") == ["e1", "e2", "e3", "e9"]


def test_state_forgets_what_fell_out_of_the_horizon_and_ignores_its_replay() -> None:
    day = 86_400_000
    state = UserState("u1")
    old = FeatureEvent("old", 0, "page_view", False, "direct")
    state.merge([old], horizon_ms=31 * day)
    assert state.merge([FeatureEvent("new", 40 * day, "purchase", True, "search")], horizon_ms=31 * day) == 1
    assert [e.event_id for e in state.events] == ["new"]
    # A replay of the forgotten event is outside the horizon again: dropped, count unchanged
    state.merge([old], horizon_ms=31 * day)
    assert [e.event_id for e in state.events] == ["new"]
    assert decode_events(encode_events(state.events)) == state.events


def test_the_runtime_writer_sends_a_valid_put_record_to_the_online_store() -> None:
    # Given a real Feature Store runtime client whose calls are checked against the API model
    client = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1")
    record = [{"FeatureName": "user_id", "ValueAsString": "u1"}, {"FeatureName": "event_time", "ValueAsString": "x"}]
    with Stubber(client) as stub:
        stub.add_response(
            "put_record",
            {},
            {"FeatureGroupName": GROUP, "Record": record, "TargetStores": ["OnlineStore"]},
        )
        # When
        FeatureStoreRuntimeWriter(lambda: client).put_record(GROUP, record)
        # Then exactly that request was made
        stub.assert_no_pending_responses()


def test_settings_need_the_table_and_the_group() -> None:
    with pytest.raises(ValueError, match="STATE_TABLE_NAME, FEATURE_GROUP_NAME"):
        Settings.from_env({})
    settings = Settings.from_env({"STATE_TABLE_NAME": "t", "FEATURE_GROUP_NAME": "g", "SESSION_GAP_MINUTES": "20"})
    assert (settings.session_gap_minutes, settings.rejects_queue_url) == (20, None)


def test_stored_events_keep_their_page_class_and_old_items_still_read() -> None:
    # Given events of each page class
    events = [
        FeatureEvent("e-1", 1_000, "page_view", False, "direct", page="support"),
        FeatureEvent("e-2", 2_000, "page_view", True, "search", page="plans"),
        FeatureEvent("e-3", 3_000, "click", False, "other"),
    ]
    # Then they round-trip through the stored form with their page class
    assert decode_events(encode_events(events)) == events
    # And an item written before the page class existed (five columns) reads as "no such page"
    old = zlib.compress(json.dumps([["e-9", 9_000, "page_view", 1, "social"]]).encode())
    assert decode_events(old) == [FeatureEvent("e-9", 9_000, "page_view", True, "social", page=None)]
