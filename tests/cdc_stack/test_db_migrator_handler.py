"""db_migrator: CloudFormation custom resource events in, Data API calls and a response out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.db_migrator import handler as migrator
from lambdas.db_migrator.migrations import Migration
from lambdas.db_migrator.sql import split_statements
from tests.cdc_stack.migrator_fakes import (
    CLUSTER_ARN,
    DATABASE,
    MIGRATIONS_DIR,
    RESPONSE_URL,
    STACK_ID,
    FakeContext,
    FakeRdsData,
    FakeResponder,
    custom_resource_event,
    migration_properties,
    resource_properties,
)

PHYSICAL_ID = f"{CLUSTER_ARN}/{DATABASE}/schema-migrations"
V1 = next(MIGRATIONS_DIR.glob("V1__*.sql"))
V2 = {
    "Version": "2",
    "Description": "add_currency",
    "Sql": "ALTER TABLE public.subscriptions ADD COLUMN currency text;\n"
    "COMMENT ON COLUMN public.subscriptions.currency IS 'ISO 4217; added by V2';\n",
}


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> FakeRdsData:
    fake = FakeRdsData()
    migrator.reset()
    monkeypatch.delenv("SECONDS_PER_MIGRATION", raising=False)
    monkeypatch.setattr(migrator, "rds_data_client", lambda: fake)
    return fake


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> FakeResponder:
    fake = FakeResponder()
    monkeypatch.setattr(migrator, "responder", lambda: fake)
    monkeypatch.setattr(migrator.time, "sleep", lambda seconds: None)
    return fake


def answer(cloudformation: FakeResponder) -> dict[str, Any]:
    assert len(cloudformation.responses) == 1
    url, body = cloudformation.responses[0]
    assert url == RESPONSE_URL
    document: dict[str, Any] = json.loads(body)
    return document


def run(event: dict[str, Any], context: FakeContext | None = None) -> dict[str, str]:
    return migrator.handler(event, context or FakeContext())


def test_create_applies_every_migration_in_one_transaction_each(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    # Given a new cluster and the repository's migrations
    # When CloudFormation creates the resource
    result = run(custom_resource_event("Create"))

    # Then V1's statements ran inside a transaction that also recorded V1, and it was committed
    statements = split_statements(V1.read_text())
    assert len(statements) == 4  # CREATE TABLE, REPLICA IDENTITY, two comments
    in_transaction = [p for name, p in database.calls if name == "ExecuteStatement" and "transactionId" in p]
    assert [p["sql"] for p in in_transaction][:-1] == statements
    assert in_transaction[-1]["sql"].startswith("INSERT INTO public.schema_migrations")
    assert {p["transactionId"] for p in in_transaction} == {"tx-1"}
    assert [name for name, _ in database.calls if name.endswith("Transaction")] == [
        "BeginTransaction",
        "CommitTransaction",
    ]
    assert database.history == {1: ("create_subscriptions", Migration(1, "x", V1.read_text()).checksum)}
    # And CloudFormation hears of it
    document = answer(cloudformation)
    assert document["Status"] == "SUCCESS"
    assert document["PhysicalResourceId"] == PHYSICAL_ID
    assert document["StackId"] == STACK_ID
    assert document["LogicalResourceId"] == "SubscriptionsDatabaseMigrations4C1D2E3F"
    assert document["Data"] == {"AppliedVersions": "1", "LatestVersion": "1"}
    assert result == {"Status": "SUCCESS", "PhysicalResourceId": PHYSICAL_ID}


def test_the_history_table_is_created_before_it_is_read(database: FakeRdsData, cloudformation: FakeResponder) -> None:
    run(custom_resource_event("Create"))

    executed = database.statements_of("ExecuteStatement")
    assert executed[0].startswith("CREATE TABLE IF NOT EXISTS public.schema_migrations")
    assert executed[1].startswith("SELECT version, checksum FROM public.schema_migrations")


def test_a_replayed_create_changes_nothing(database: FakeRdsData, cloudformation: FakeResponder) -> None:
    # Given the migrations were applied (e.g. the function ran, but its answer was lost)
    run(custom_resource_event("Create"))
    executed_before = len(database.committed)

    # When the same request arrives again
    run(custom_resource_event("Create"))

    # Then no migration statement ran a second time, and the answer is still a success
    assert database.committed[executed_before:] == [database.committed[0]]  # only CREATE TABLE IF NOT EXISTS
    assert [name for name, _ in database.calls].count("BeginTransaction") == 1
    second = json.loads(cloudformation.responses[1][1])
    assert second["Status"] == "SUCCESS"
    assert second["Data"] == {"AppliedVersions": "", "LatestVersion": "1"}


def test_update_with_a_new_file_applies_only_the_new_version(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    # Given V1 was applied on create
    run(custom_resource_event("Create"))
    old = resource_properties()

    # When a deploy adds V2
    new = resource_properties([*migration_properties(), V2])
    run(custom_resource_event("Update", new, physical_resource_id=PHYSICAL_ID, old_properties=old))

    # Then only V2's statements ran, in a second transaction
    second = json.loads(cloudformation.responses[1][1])
    assert second["Status"] == "SUCCESS"
    assert second["Data"] == {"AppliedVersions": "2", "LatestVersion": "2"}
    assert sorted(database.history) == [1, 2]
    v2_statements = [
        p["sql"] for name, p in database.calls if name == "ExecuteStatement" and p.get("transactionId") == "tx-2"
    ]
    assert v2_statements[:2] == split_statements(V2["Sql"])


def test_a_failing_statement_rolls_its_migration_back_and_fails_the_deploy(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    # Given the database refuses a statement of V1
    database.refuse = "REPLICA IDENTITY FULL"

    # When CloudFormation creates the resource
    result = run(custom_resource_event("Create"))

    # Then the transaction was rolled back and nothing was recorded
    assert [name for name, _ in database.calls if name.endswith("Transaction")] == [
        "BeginTransaction",
        "RollbackTransaction",
    ]
    assert database.history == {}
    assert database.open_transactions == {}
    # And CloudFormation is told which migration and which statement failed, and why
    document = answer(cloudformation)
    assert document["Status"] == "FAILED"
    assert "V1 failed and was rolled back: statement 2 of 4" in document["Reason"]
    assert "REPLICA IDENTITY FULL" in document["Reason"]
    assert result["Status"] == "FAILED"


def test_an_edited_applied_migration_is_refused_before_anything_runs(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    # Given V1 was applied, and then its file was edited
    run(custom_resource_event("Create"))
    edited = migration_properties()
    edited[0] = {**edited[0], "Sql": edited[0]["Sql"] + "\nCREATE INDEX ON public.subscriptions (plan);\n"}

    # When the deploy sends the edited file
    run(custom_resource_event("Update", resource_properties(edited), physical_resource_id=PHYSICAL_ID))

    # Then nothing ran and the reason names the version
    assert [name for name, _ in database.calls].count("BeginTransaction") == 1
    document = json.loads(cloudformation.responses[1][1])
    assert document["Status"] == "FAILED"
    assert "applied migrations were edited: V1" in document["Reason"]


def test_a_version_older_than_the_newest_applied_one_is_refused(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    # Given the database recorded V2 but not V1 (a file numbered below what already ran)
    database.history_exists = True
    database.history[2] = ("add_currency", Migration(2, "add_currency", V2["Sql"]).checksum)

    run(custom_resource_event("Create", resource_properties([*migration_properties(), V2])))

    document = answer(cloudformation)
    assert document["Status"] == "FAILED"
    assert "V1 never ran but V2 did" in document["Reason"]
    assert database.statements_of("BeginTransaction") == []


@pytest.mark.parametrize(
    ("migrations", "reason"),
    [
        ([], "non-empty list"),
        ([{"Version": "2", "Description": "late", "Sql": "SELECT 1;"}], "without gaps"),
        ([{"Version": "one", "Description": "x", "Sql": "SELECT 1;"}], "positive integer"),
        ([{"Version": "1", "Description": "has space", "Sql": "SELECT 1;"}], "letters, digits and underscores"),
        ([{"Version": "1", "Description": "quote", "Sql": "SELECT 'never closed;"}], "unterminated string"),
    ],
)
def test_malformed_migrations_fail_with_a_reason_and_touch_nothing(
    database: FakeRdsData, cloudformation: FakeResponder, migrations: list[dict[str, str]], reason: str
) -> None:
    run(custom_resource_event("Create", resource_properties(migrations)))

    document = answer(cloudformation)
    assert document["Status"] == "FAILED"
    assert reason in document["Reason"]
    assert database.calls == []


def test_missing_target_properties_fail_the_create(database: FakeRdsData, cloudformation: FakeResponder) -> None:
    properties = resource_properties()
    del properties["SecretArn"]

    run(custom_resource_event("Create", properties))

    document = answer(cloudformation)
    assert document["Status"] == "FAILED"
    assert "SecretArn" in document["Reason"]
    assert document["PhysicalResourceId"] == "SubscriptionsDatabaseMigrations4C1D2E3F-schema-migrations"


def test_delete_keeps_the_schema(database: FakeRdsData, cloudformation: FakeResponder) -> None:
    # When the resource is deleted (stack deletion, or replaced by a new cluster)
    run(custom_resource_event("Delete", physical_resource_id=PHYSICAL_ID))

    # Then the database is not touched and CloudFormation may go on
    assert database.calls == []
    document = answer(cloudformation)
    assert document["Status"] == "SUCCESS"
    assert document["PhysicalResourceId"] == PHYSICAL_ID


def test_delete_after_a_failed_create_succeeds_without_touching_anything(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    # A create that failed before a target was known is deleted by CloudFormation on rollback.
    run(
        custom_resource_event(
            "Delete", physical_resource_id="SubscriptionsDatabaseMigrations4C1D2E3F-schema-migrations"
        )
    )

    assert database.calls == []
    assert answer(cloudformation)["Status"] == "SUCCESS"


def test_no_migration_starts_without_time_to_finish_it(database: FakeRdsData, cloudformation: FakeResponder) -> None:
    # Given only 30 s are left (a migration needs 60 s by default)
    run(custom_resource_event("Create"), FakeContext(remaining_ms=30_000))

    # Then nothing started and CloudFormation is asked to deploy again
    assert database.statements_of("BeginTransaction") == []
    document = answer(cloudformation)
    assert document["Status"] == "FAILED"
    assert "applied nothing before running out of time; deploy again" in document["Reason"]


def test_data_api_errors_outside_a_migration_fail_the_deploy(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    database.refuse = "CREATE TABLE IF NOT EXISTS public.schema_migrations"

    run(custom_resource_event("Create"))

    document = answer(cloudformation)
    assert document["Status"] == "FAILED"
    assert document["Reason"].startswith("the Data API refused a request")


def test_the_answer_is_retried_when_the_response_url_is_unreachable(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    cloudformation.failures_before_success = 2

    run(custom_resource_event("Create"))

    assert cloudformation.attempts == 3
    assert answer(cloudformation)["Status"] == "SUCCESS"


def test_an_event_that_is_not_a_custom_resource_request_raises(
    database: FakeRdsData, cloudformation: FakeResponder
) -> None:
    event = custom_resource_event("Create")
    del event["ResponseURL"]

    with pytest.raises(ValueError, match="ResponseURL"):
        run(event)
    assert cloudformation.responses == []
