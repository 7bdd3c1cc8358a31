"""Sequences of DMS records through the processor (in-memory store and sink): transitions, state,
duplicates, out-of-order changes, before images, bad records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from lambdas.cdc_processor.dms import SubscriptionState
from lambdas.cdc_processor.kinesis import records_from_messages
from lambdas.cdc_processor.processor import BatchResult
from lambdas.cdc_processor.store import InMemoryStateStore, UserCommit
from platform_core.kpl import UserRecord, aggregate
from tests.cdc.conftest import Pipeline
from tests.cdc.events import control, dms, row

T1 = "2026-11-30T10:00:00.000001Z"
T2 = "2026-11-30T11:00:00.000002Z"
T3 = "2026-11-30T12:00:00.000003Z"
T4 = "2026-12-01T09:00:00.000004Z"


def kinds(result: BatchResult) -> list[tuple[str, str]]:
    return [(t["user_id"], t["transition"]) for t in result.transitions]


def test_insert_of_an_active_row_is_a_subscription(pipeline: Pipeline) -> None:
    # Given a new active subscription
    # When DMS replicates its insert
    result = pipeline.run([dms("insert", row("u1", True), ts=T1, txid=10)])
    # Then it is one `subscribed` transition, read back from the Avro change log
    assert kinds(result) == [("u1", "subscribed")]
    [logged] = pipeline.logged("cdc/transitions/date=2026-11-30/")
    assert logged["after_is_active_subscribed"] is True
    assert logged["after_renewal_date"] == date(2026, 12, 1)
    assert logged["after_price"] == 9.99
    assert logged["before_origin"] == "absent"
    assert logged["before_plan"] is None
    assert logged["transaction_id"] == 10
    assert logged["change_time"].isoformat() == "2026-11-30T10:00:00+00:00"
    # And the state is the inserted row
    state = pipeline.store.states["u1"]
    assert state.row == SubscriptionState(True, date(2026, 12, 1), "basic", 9.99)


def test_renewal_with_a_pk_only_before_image_uses_the_stored_state(pipeline: Pipeline) -> None:
    # Given an applied insert
    pipeline.run([dms("insert", row("u1", True, renewal="2026-12-01"), ts=T1, txid=10)])
    # When the renewal date moves forward and the before image holds only the key (ColumnFilter pk-only)
    result = pipeline.run(
        [dms("update", row("u1", True, renewal="2027-01-01"), ts=T2, txid=11, before={"user_id": "u1"})]
    )
    # Then it is a renewal whose before fields come from the stored state
    assert kinds(result) == [("u1", "renewed")]
    [renewal] = result.transitions
    assert renewal["before_origin"] == "state"
    assert renewal["before_renewal_date"] == date(2026, 12, 1)
    assert renewal["after_renewal_date"] == date(2027, 1, 1)
    assert pipeline.store.states["u1"].row.renewal_date == date(2027, 1, 1)  # type: ignore[union-attr]


def test_update_without_before_image_uses_the_stored_state(pipeline: Pipeline) -> None:
    # Given an applied insert
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=10)])
    # When an update carries no before image at all
    result = pipeline.run([dms("update", row("u1", False), ts=T2, txid=11)])
    # Then the cancellation is still derived, from the stored state
    assert kinds(result) == [("u1", "cancelled")]
    assert result.transitions[0]["before_is_active_subscribed"] is True


def test_a_full_before_image_is_trusted_for_an_unknown_user(pipeline: Pipeline) -> None:
    # Given no state for u2 (its insert predates the stream)
    # When an update carries a complete before image (ColumnFilter all)
    result = pipeline.run(
        [dms("update", row("u2", False, plan="pro"), ts=T1, txid=10, before=row("u2", True, plan="pro"))]
    )
    # Then the transition comes from the image
    assert kinds(result) == [("u2", "cancelled")]
    assert result.transitions[0]["before_origin"] == "image"


def test_pk_only_update_of_an_unknown_user_is_a_baseline_without_transition(pipeline: Pipeline) -> None:
    # Given no state for u3, When an update arrives with a key-only before image
    result = pipeline.run([dms("update", row("u3", True), ts=T1, txid=10, before={"user_id": "u3"})])
    # Then nothing is claimed about what changed, but the state and a snapshot are recorded
    assert result.transitions == []
    assert result.outcomes["baseline"] == 1
    assert [s["user_id"] for s in result.snapshots] == ["u3"]
    assert pipeline.store.states["u3"].row is not None


def test_full_load_is_a_baseline_and_later_changes_derive_from_it(pipeline: Pipeline) -> None:
    # Given the full load of an active subscriber (no transaction id)
    first = pipeline.run([dms("load", row("u1", True, plan="basic"), ts=T1)])
    # When the plan changes later with a pk-only before image
    second = pipeline.run(
        [dms("update", row("u1", True, plan="pro", price=19.99), ts=T2, txid=20, before={"user_id": "u1"})]
    )
    # Then the load is no subscription event, and the change is a plan change
    assert first.transitions == [] and first.outcomes["baseline"] == 1
    assert kinds(second) == [("u1", "plan_changed")]
    assert second.transitions[0]["before_plan"] == "basic"


def test_cancel_then_reactivate_on_a_new_plan(pipeline: Pipeline) -> None:
    # Given an active subscriber
    pipeline.run([dms("insert", row("u1", True, plan="basic"), ts=T1, txid=1)])
    # When they cancel, then come back on another plan with a later renewal
    result = pipeline.run(
        [
            dms("update", row("u1", False, plan="basic"), ts=T2, txid=2),
            dms("update", row("u1", True, renewal="2027-01-15", plan="pro", price=19.99), ts=T3, txid=3),
        ]
    )
    # Then: cancelled; then reactivated and plan_changed (one change, two transitions, distinct ids)
    assert kinds(result) == [("u1", "cancelled"), ("u1", "reactivated"), ("u1", "plan_changed")]
    assert len({t["event_id"] for t in result.transitions}) == 3
    assert result.transitions[1]["event_id"] != result.transitions[2]["event_id"]


def test_delete_with_key_only_data_closes_the_user(pipeline: Pipeline) -> None:
    # Given an active subscriber
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=1)])
    # When the row is deleted and DMS sends only the key (REPLICA IDENTITY DEFAULT)
    result = pipeline.run([dms("delete", {"user_id": "u1"}, ts=T2, txid=2)])
    # Then a `deleted` transition carries the last known state, and the state is gone
    assert kinds(result) == [("u1", "deleted")]
    assert result.transitions[0]["before_is_active_subscribed"] is True
    assert result.transitions[0]["after_is_active_subscribed"] is None
    assert result.snapshots[0]["is_deleted"] is True
    assert pipeline.store.states["u1"].row is None


def test_reinsert_after_delete_is_a_new_subscription_and_a_second_delete_is_nothing(pipeline: Pipeline) -> None:
    # Given a subscriber whose row was deleted
    pipeline.run([dms("insert", row("u1", True, plan="basic"), ts=T1, txid=1)])
    pipeline.run([dms("delete", {"user_id": "u1"}, ts=T2, txid=2)])
    # When the row comes back (a new insert on another plan), and is then deleted twice
    back = pipeline.run([dms("insert", row("u1", True, plan="pro"), ts=T3, txid=3)])
    # Then the re-insert is `subscribed` from no row (not `reactivated` nor `plan_changed`)
    assert kinds(back) == [("u1", "subscribed")]
    assert back.transitions[0]["before_origin"] == "absent"
    assert pipeline.store.states["u1"].row == SubscriptionState(True, date(2026, 12, 1), "pro", 9.99)
    gone = pipeline.run([dms("delete", {"user_id": "u1"}, ts=T4, txid=4)])
    again = pipeline.run([dms("delete", {"user_id": "u1"}, ts="2026-12-01T10:00:00Z", txid=5)])
    # And only the first of the two deletes is a transition; the row stays deleted
    assert kinds(gone) == [("u1", "deleted")]
    assert again.transitions == [] and again.snapshots == [] and again.outcomes["noop"] == 1
    assert pipeline.store.states["u1"].row is None


def test_noop_update_yields_nothing_but_advances_the_position(pipeline: Pipeline) -> None:
    # Given an applied insert
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=1)])
    before = pipeline.store.states["u1"].position
    # When an update changes only a column outside the contract (schema evolution)
    result = pipeline.run([dms("update", row("u1", True, marketing_opt_in=True), ts=T2, txid=2)])
    # Then there is no transition and no snapshot, but the newer position is recorded
    assert result.transitions == [] and result.snapshots == []
    assert result.outcomes["noop"] == 1
    assert pipeline.store.states["u1"].position > before


def test_price_only_change_is_a_snapshot_without_transition(pipeline: Pipeline) -> None:
    pipeline.run([dms("insert", row("u1", True, price=9.99), ts=T1, txid=1)])
    result = pipeline.run([dms("update", row("u1", True, price="12.50"), ts=T2, txid=2)])
    assert result.transitions == []
    assert [s["price"] for s in result.snapshots] == [12.5]


def test_out_of_order_change_is_stale_and_does_not_move_state_back(pipeline: Pipeline) -> None:
    # Given the newest change (a cancellation at T3) already applied
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=1)])
    pipeline.run([dms("update", row("u1", False), ts=T3, txid=3)])
    # When an older change (a renewal at T2) arrives late
    result = pipeline.run([dms("update", row("u1", True, renewal="2027-01-01"), ts=T2, txid=2)])
    # Then it is logged as stale, and the state stays cancelled
    assert kinds(result) == [("u1", "stale")]
    assert result.snapshots == []
    assert pipeline.store.states["u1"].row.is_active_subscribed is False  # type: ignore[union-attr]
    assert pipeline.logged("cdc/transitions/")[-1]["transition"] == "stale"


def test_same_commit_time_orders_by_transaction_id(pipeline: Pipeline) -> None:
    # Given a change of transaction 8 applied
    pipeline.run([dms("insert", row("u1", True), ts=T2, txid=8)])
    # When a change with the same commit time but an earlier transaction arrives
    result = pipeline.run([dms("update", row("u1", False), ts=T2, txid=7)])
    # Then it is stale
    assert kinds(result) == [("u1", "stale")]


def test_two_changes_in_one_transaction_apply_in_stream_order(pipeline: Pipeline) -> None:
    # Given two updates of one row in the same transaction (same commit time and id)
    pipeline.run([dms("insert", row("u1", True, plan="basic"), ts=T1, txid=1)])
    result = pipeline.run(
        [
            dms("update", row("u1", True, plan="pro"), ts=T2, txid=2),
            dms("update", row("u1", True, plan="max"), ts=T2, txid=2),
        ]
    )
    # Then both apply, in order
    assert [(t["before_plan"], t["after_plan"]) for t in result.transitions] == [
        ("basic", "pro"),
        ("pro", "max"),
    ]
    assert pipeline.store.states["u1"].row.plan == "max"  # type: ignore[union-attr]


def test_duplicate_in_a_batch_and_replayed_batch_change_nothing(pipeline: Pipeline) -> None:
    # Given a batch with a record that appears twice
    insert = dms("insert", row("u1", True), ts=T1, txid=1)
    cancel = dms("update", row("u1", False), ts=T2, txid=2)
    first = pipeline.run([insert, insert, cancel], first_sequence=5_000)
    log_before = dict(pipeline.sink.log)
    state_before = pipeline.store.states["u1"]
    # When the same batch is replayed (a Lambda retry)
    replay = pipeline.run([insert, insert, cancel], first_sequence=5_000)
    # Then the duplicate counted once, and the replay changed nothing at all
    assert kinds(first) == [("u1", "subscribed"), ("u1", "cancelled")]
    assert first.outcomes["duplicate"] == 1
    assert replay.transitions == [] and replay.outcomes["duplicate"] == 3
    assert pipeline.sink.log == log_before
    assert pipeline.store.states["u1"] == state_before


def test_change_republished_by_dms_under_a_new_sequence_number_is_a_duplicate(pipeline: Pipeline) -> None:
    # Given a cancellation with a full before image applied
    cancel = dms("update", row("u1", False), ts=T2, txid=2, before=row("u1", True))
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=1), cancel])
    # When DMS publishes the same change again after a task restart (new Kinesis record)
    result = pipeline.run([cancel])
    # Then it is recognised by its source identity, not re-emitted
    assert result.transitions == [] and result.outcomes["duplicate"] == 1


def test_dms_stream_position_keys_identity_when_present(pipeline: Pipeline) -> None:
    # Given two changes with identical content but different DMS stream positions (IncludeTransactionDetails)
    a = dms(
        "update",
        row("u1", False),
        ts=T2,
        txid=2,
        stream_position="00000002/0A000B58.1",
        transaction_record_id=1,
    )
    b = dms(
        "update",
        row("u1", False),
        ts=T2,
        txid=2,
        stream_position="00000002/0A000B60.2",
        transaction_record_id=2,
    )
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=1)])
    # When both arrive
    result = pipeline.run([a, b])
    # Then neither is taken for the other: the first cancels, the second changes nothing
    assert result.outcomes["duplicate"] == 0
    assert kinds(result) == [("u1", "cancelled")] and result.outcomes["noop"] == 1


def test_bad_records_are_reported_with_reasons_and_good_ones_go_through(pipeline: Pipeline) -> None:
    # Given a batch mixing good records with every kind of bad one
    messages: list = [
        dms("insert", row("good1", True), ts=T1, txid=1),
        b"not json at all",
        b"\xff\xfe binary",
        "!!! not base64 !!!",
        json.dumps([1, 2]).encode(),
        {"data": row("x", True)},
        dms("insert", row("x", True), ts=T1, txid=1, table="invoices"),
        dms("truncate", row("x", True), ts=T1, txid=1),
        dms("insert", None, ts=T1, txid=1),
        dms("insert", {"is_active_subscribed": True}, ts=T1, txid=1),
        dms("insert", row("x", "yes"), ts=T1, txid=1),  # type: ignore[arg-type]
        dms("insert", row(42, True), ts=T1, txid=1),  # type: ignore[arg-type]
        dms("insert", row("x", True, renewal="2026-13-45"), ts=T1, txid=1),
        dms("insert", row("x", True, price="cheap"), ts=T1, txid=1),
        dms("insert", row("x", True), ts="yesterday", txid=1),
        dms("insert", row("x", True), ts=T1, txid=1, record_type="weird"),
        dms("insert", {"user_id": "x"}, ts=T1, txid=1),
        control(),
        dms("insert", row("good2", True), ts=T2, txid=2),
    ]
    # When the batch is processed
    result = pipeline.run(messages)
    # Then the good records are applied and nothing is retried
    assert kinds(result) == [("good1", "subscribed"), ("good2", "subscribed")]
    assert result.failed_sequence_numbers == []
    assert result.outcomes["control"] == 1
    # And each bad record has an error object with its reason, in stream order
    errors = [pipeline.sink.errors[k] for k in sorted(pipeline.sink.errors)]
    assert [e["reason"] for e in errors] == [
        "not_json",
        "not_json",
        "invalid_encoding",
        "not_an_object",
        "missing_metadata",
        "unknown_table",
        "unknown_operation",
        "missing_data",
        "missing_key",
        "invalid_field",
        "invalid_field",
        "invalid_field",
        "invalid_field",
        "invalid_metadata",
        "unknown_record_type",
        "invalid_field",
    ]
    yes = errors[9]
    assert "is_active_subscribed" in yes["detail"] and "'yes'" in yes["detail"]
    assert json.loads(yes["data_text"])["data"]["is_active_subscribed"] == "yes"
    assert errors[0]["data_text"] == "not json at all"
    assert errors[1]["data_text"] is None and errors[1]["data_base64"]
    assert all(e["event_source_arn"].endswith("stream/mlp-dev-cdc") for e in errors)


def test_extra_columns_do_not_break_the_processor(pipeline: Pipeline) -> None:
    result = pipeline.run([dms("insert", row("u1", True, region="eu", seats=3, meta={"a": 1}), ts=T1, txid=1)])
    assert kinds(result) == [("u1", "subscribed")]


def test_boolean_and_numeric_text_forms_are_read(pipeline: Pipeline) -> None:
    result = pipeline.run([dms("insert", row("u1", "true", price="9.90"), ts=T1, txid="7")])  # type: ignore[arg-type]
    assert kinds(result) == [("u1", "subscribed")]
    assert result.snapshots[0]["price"] == 9.9 and result.snapshots[0]["transaction_id"] == 7


def test_kpl_aggregated_records_are_deaggregated(pipeline: Pipeline) -> None:
    # Given two DMS messages packed into one Kinesis record by the KPL
    inner = [
        UserRecord("u1", json.dumps(dms("insert", row("u1", True), ts=T1, txid=1)).encode()),
        UserRecord("u2", json.dumps(dms("insert", row("u2", False), ts=T1, txid=1)).encode()),
    ]
    # When the record is processed
    result = pipeline.run([aggregate(inner)])
    # Then both changes apply
    assert kinds(result) == [("u1", "subscribed")]
    assert set(pipeline.store.states) == {"u1", "u2"}


def test_changes_on_two_dates_go_to_two_partitions(pipeline: Pipeline) -> None:
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=1), dms("update", row("u1", False), ts=T4, txid=2)])
    keys = sorted(k for k in pipeline.sink.log if k.startswith("cdc/transitions/"))
    assert [k.split("/")[2] for k in keys] == ["date=2026-11-30", "date=2026-12-01"]
    assert [t["transition"] for t in pipeline.logged("cdc/transitions/date=2026-12-01/")] == ["cancelled"]


class _RacingStore(InMemoryStateStore):
    """Another writer commits u1 between this batch's read and its commit."""

    def commit(self, commits: Sequence[UserCommit], expires_at: int) -> set[str]:
        racer = self.states.get("u1")
        if racer is not None:
            self.states["u1"] = type(racer)(
                racer.user_id,
                racer.row,
                racer.position + "~",
                racer.change_time,
                racer.transaction_id,
                racer.event_id,
            )
        return super().commit(commits, expires_at)


def test_refused_commit_reports_the_users_records_for_retry(pipeline: Pipeline) -> None:
    # Given u1 known, and a concurrent writer that will move u1's state before this batch commits
    pipeline.run([dms("insert", row("u1", True), ts=T1, txid=1)])
    racing = _RacingStore()
    racing.states, racing.markers = pipeline.store.states, pipeline.store.markers
    pipeline.processor.store = racing
    # When a batch changes u1 and u2
    result = pipeline.run(
        [dms("update", row("u1", False), ts=T2, txid=2), dms("insert", row("u2", True), ts=T2, txid=3)],
        first_sequence=9_000,
    )
    # Then u1's record is reported for retry, u2's is committed
    assert result.failed_sequence_numbers == ["9000"]
    assert "u2" in racing.states and racing.states["u1"].row.is_active_subscribed is True  # type: ignore[union-attr]


def test_in_memory_store_refuses_a_stale_expected_position() -> None:
    store = InMemoryStateStore()
    assert store.commit([UserCommit("u1", "some-position", ())], expires_at=0) == {"u1"}


def test_local_messages_run_without_kinesis() -> None:
    # Given lines of a --cdc file
    lines = [json.dumps(dms("insert", row(f"u{i}", True), ts=T1, txid=i)).encode() for i in range(3)]
    pipeline = Pipeline()
    # When run as one local batch
    records, key = records_from_messages(lines, first_sequence=10)
    result = pipeline.processor.process(records, key)
    # Then they apply like stream records, under a deterministic batch key
    assert key == "shardId-local-10-12"
    assert [u for u, _ in kinds(result)] == ["u0", "u1", "u2"]
    assert next(iter(pipeline.sink.log)).endswith(f"/{key}.avro")


def test_primary_key_change_is_rejected_not_applied_to_either_user(pipeline: Pipeline) -> None:
    # Given an update whose before image names another user (UPDATE ... SET user_id = ...)
    result = pipeline.run([dms("update", row("new", True), ts=T1, txid=1, before={"user_id": "old"})])
    # Then it is rejected with its own reason and no state is touched
    assert [r.reason.value for r in result.rejected] == ["key_changed"]
    assert pipeline.store.states == {}
