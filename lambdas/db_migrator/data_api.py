"""The :class:`~lambdas.db_migrator.migrations.Database` on the RDS Data API.

The Data API is an HTTPS endpoint of the service, so the function needs no VPC, no driver and no
network path to the cluster: IAM (``rds-data:*`` on the cluster, ``GetSecretValue`` on the secret)
is the only way in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.db_migrator.migrations import Migration, MigrationFailedError

logger = logging.getLogger(__name__)

HISTORY_TABLE = "public.schema_migrations"

CREATE_HISTORY = f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    version     integer     PRIMARY KEY,
    description text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""
SELECT_APPLIED = f"SELECT version, checksum FROM {HISTORY_TABLE} ORDER BY version"  # noqa: S608 (constant)
INSERT_APPLIED = (
    f"INSERT INTO {HISTORY_TABLE} (version, description, checksum) "  # noqa: S608 (constant)
    "VALUES (:version, :description, :checksum)"
)


class DataApiDatabase:
    """Runs statements through ``rds-data`` with the cluster ARN and the credentials' secret."""

    def __init__(self, client: Callable[[], Any], *, resource_arn: str, secret_arn: str, database: str) -> None:
        self._client = client  # a cached factory: the client is created on first use
        self._target = {"resourceArn": resource_arn, "secretArn": secret_arn}
        self.database = database

    def ensure_history(self) -> None:
        self._execute(CREATE_HISTORY)

    def applied_checksums(self) -> dict[int, str]:
        records = self._execute(SELECT_APPLIED).get("records", [])
        return {int(row[0]["longValue"]): str(row[1]["stringValue"]) for row in records}

    def apply(self, migration: Migration) -> None:
        statements = migration.statements
        transaction = self._client().begin_transaction(**self._target, database=self.database)["transactionId"]
        step = "begin"
        try:
            for number, statement in enumerate(statements, start=1):
                step = f"statement {number} of {len(statements)}"
                self._execute(statement, transaction_id=transaction)
            step = "recording the migration"
            self._execute(
                INSERT_APPLIED,
                parameters=[
                    {"name": "version", "value": {"longValue": migration.version}},
                    {"name": "description", "value": {"stringValue": migration.description}},
                    {"name": "checksum", "value": {"stringValue": migration.checksum}},
                ],
                transaction_id=transaction,
            )
            step = "commit"
            self._client().commit_transaction(**self._target, transactionId=transaction)
        except (ClientError, BotoCoreError) as error:
            self._rollback(transaction)
            raise MigrationFailedError(migration.version, f"{step}: {error}") from error
        logger.info("applied V%d (%s): %d statements", migration.version, migration.description, len(statements))

    def _rollback(self, transaction: str) -> None:
        try:
            self._client().rollback_transaction(**self._target, transactionId=transaction)
        except (ClientError, BotoCoreError):
            # The transaction may already be gone (a failed statement can end it); the Data API
            # also rolls back abandoned transactions after a timeout, so nothing stays half-done.
            logger.warning("rollback of transaction %s failed", transaction, exc_info=True)

    def _execute(
        self, sql: str, *, parameters: Sequence[dict[str, Any]] = (), transaction_id: str | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {**self._target, "database": self.database, "sql": sql}
        if parameters:
            request["parameters"] = list(parameters)
        if transaction_id is not None:
            request["transactionId"] = transaction_id
        response: dict[str, Any] = self._client().execute_statement(**request)
        return response
