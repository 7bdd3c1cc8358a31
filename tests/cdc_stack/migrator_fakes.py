"""Test doubles at the db_migrator's boundaries: the ``rds-data`` client and CloudFormation.

``FakeRdsData`` behaves like a PostgreSQL database behind the Data API for the statements the
migrator sends: transactions buffer their effects until commit, the history table has a primary
key on ``version``, and a statement containing ``refuse`` fails like a database error. Every call
is validated against the real ``rds-data`` API model from botocore, so a misspelt parameter fails.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "db" / "migrations"

ACCOUNT = "123456789012"
REGION = "eu-west-1"
CLUSTER_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:mlp-dev-subscriptions"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mlp-dev-subscriptions-admin-AbCdEf"
DATABASE = "subscriptions"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/MlpDevCdc/5b1e7f40-aa55-11f0-9c3e-0a1b2c3d4e5f"
SERVICE_TOKEN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mlp-dev-db-migrator"
RESPONSE_URL = (
    "https://cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com/"
    "arn%3Aaws%3Acloudformation%3Aeu-west-1%3A123456789012%3Astack/MlpDevCdc/5b1e7f40%7CMigrations%7C"
    "1f2e3d4c?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261201T080000Z&X-Amz-SignedHeaders=host"
    "&X-Amz-Expires=7200&X-Amz-Credential=AKIAEXAMPLE%2F20261201%2Feu-west-1%2Fs3%2Faws4_request"
    "&X-Amz-Signature=0123456789abcdef"
)

_MODEL = boto3.session.Session(region_name=REGION).client("rds-data").meta.service_model


def database_error(message: str, operation: str = "ExecuteStatement") -> ClientError:
    return ClientError({"Error": {"Code": "DatabaseErrorException", "Message": message}}, operation)


@dataclass
class FakeRdsData:
    """A database behind the Data API (see the module doc)."""

    refuse: str | None = None
    history_exists: bool = False
    history: dict[int, tuple[str, str]] = field(default_factory=dict)  # version -> description, checksum
    committed: list[str] = field(default_factory=list)  # statements whose effects are visible
    open_transactions: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _call(self, operation: str, params: dict[str, Any]) -> None:
        validate_parameters(params, _MODEL.operation_model(operation).input_shape)
        assert params["resourceArn"] == CLUSTER_ARN
        assert params["secretArn"] == SECRET_ARN
        self.calls.append((operation, params))

    def begin_transaction(self, **params: Any) -> dict[str, Any]:
        self._call("BeginTransaction", params)
        transaction = f"tx-{next(self._ids)}"
        self.open_transactions[transaction] = []
        return {"transactionId": transaction}

    def execute_statement(self, **params: Any) -> dict[str, Any]:
        self._call("ExecuteStatement", params)
        assert params["database"] == DATABASE
        sql: str = params["sql"]
        if self.refuse and self.refuse in sql:
            raise database_error(f'ERROR: syntax error at or near "{self.refuse}"')
        if sql.startswith("SELECT version, checksum FROM public.schema_migrations"):
            if not self.history_exists:
                raise database_error('ERROR: relation "public.schema_migrations" does not exist')
            return {
                "records": [
                    [{"longValue": version}, {"stringValue": checksum}]
                    for version, (_, checksum) in sorted(self.history.items())
                ],
                "numberOfRecordsUpdated": 0,
            }
        transaction = params.get("transactionId")
        if transaction is None:
            self._apply(sql, params)
        else:
            self.open_transactions[transaction].append((sql, params))
        return {"numberOfRecordsUpdated": 0}

    def commit_transaction(self, **params: Any) -> dict[str, Any]:
        self._call("CommitTransaction", params)
        for sql, statement_params in self.open_transactions.pop(params["transactionId"]):
            self._apply(sql, statement_params)
        return {"transactionStatus": "Transaction Committed"}

    def rollback_transaction(self, **params: Any) -> dict[str, Any]:
        self._call("RollbackTransaction", params)
        self.open_transactions.pop(params["transactionId"])
        return {"transactionStatus": "Rollback Complete"}

    def _apply(self, sql: str, params: dict[str, Any]) -> None:
        if sql.startswith("CREATE TABLE IF NOT EXISTS public.schema_migrations"):
            self.history_exists = True
        elif sql.startswith("INSERT INTO public.schema_migrations"):
            values = {p["name"]: next(iter(p["value"].values())) for p in params["parameters"]}
            if values["version"] in self.history:
                raise database_error("ERROR: duplicate key value violates unique constraint")
            self.history[values["version"]] = (values["description"], values["checksum"])
        self.committed.append(sql)

    def statements_of(self, operation: str) -> list[str]:
        return [params["sql"] for name, params in self.calls if name == operation]


@dataclass
class FakeResponder:
    """Receives the PUTs CloudFormation would receive on its pre-signed URL."""

    failures_before_success: int = 0
    responses: list[tuple[str, bytes]] = field(default_factory=list)
    attempts: int = 0

    def put(self, url: str, body: bytes) -> None:
        self.attempts += 1
        if self.attempts <= self.failures_before_success:
            raise OSError("connection reset by peer")
        self.responses.append((url, body))


@dataclass
class FakeContext:
    """The Lambda context's one method the migrator uses."""

    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def migration_properties(directory: Path = MIGRATIONS_DIR) -> list[dict[str, str]]:
    """The ``Migrations`` property as CloudFormation delivers it (every scalar a string)."""
    files = sorted(directory.glob("V*__*.sql"), key=lambda p: int(p.name[1:].split("__")[0]))
    return [
        {
            "Version": path.name[1:].split("__")[0],
            "Description": path.stem.split("__", 1)[1],
            "Sql": path.read_text(encoding="utf-8"),
        }
        for path in files
    ]


def resource_properties(migrations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "ServiceToken": SERVICE_TOKEN,
        "ClusterArn": CLUSTER_ARN,
        "SecretArn": SECRET_ARN,
        "Database": DATABASE,
        "Migrations": migration_properties() if migrations is None else migrations,
    }


def custom_resource_event(
    request_type: str,
    properties: dict[str, Any] | None = None,
    *,
    physical_resource_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CloudFormation custom resource request, shaped as CloudFormation sends it to Lambda."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": SERVICE_TOKEN,
        "ResponseURL": RESPONSE_URL,
        "StackId": STACK_ID,
        "RequestId": "8d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09",
        "LogicalResourceId": "SubscriptionsDatabaseMigrations4C1D2E3F",
        "ResourceType": "Custom::DatabaseMigrations",
        "ResourceProperties": resource_properties() if properties is None else properties,
    }
    if physical_resource_id is not None:
        event["PhysicalResourceId"] = physical_resource_id
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    return event
