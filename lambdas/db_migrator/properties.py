"""The custom resource's properties: which database to migrate, and with which migrations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.db_migrator.migrations import InvalidMigrationsError, Migration, parse_migrations


@dataclass(frozen=True)
class MigrationsResource:
    """``ClusterArn``, ``SecretArn``, ``Database`` and ``Migrations`` (see ``parse_migrations``)."""

    cluster_arn: str
    secret_arn: str
    database: str
    migrations: tuple[Migration, ...]

    @property
    def physical_resource_id(self) -> str:
        # A new cluster or database is a new resource: CloudFormation then replaces it (and sends
        # a Delete for the old one, which changes nothing), so the new target gets every migration.
        return f"{self.cluster_arn}/{self.database}/schema-migrations"


def parse_properties(properties: Mapping[str, Any]) -> MigrationsResource:
    values = {key: properties.get(key) for key in ("ClusterArn", "SecretArn", "Database")}
    missing = [key for key, value in values.items() if not isinstance(value, str) or not value]
    if missing:
        raise InvalidMigrationsError(f"missing resource properties: {', '.join(missing)}")
    return MigrationsResource(
        cluster_arn=str(values["ClusterArn"]),
        secret_arn=str(values["SecretArn"]),
        database=str(values["Database"]),
        migrations=parse_migrations(properties.get("Migrations")),
    )
