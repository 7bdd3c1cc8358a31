"""Versioned migrations and how a database is brought up to date with them.

A migration is ``db/migrations/V<version>__<description>.sql`` (Flyway naming). The stack hands
every file to the custom resource; the database remembers what it applied in a history table
(version, checksum, when). Applying is idempotent by construction:

- each migration runs in one transaction together with the insert of its history row, so a
  migration is either applied and recorded, or neither (the row's primary key also refuses a
  second, concurrent application);
- a version already recorded is skipped, so re-running after a partial failure or a stack
  rollback continues where it stopped and changes nothing that was applied;
- an applied migration whose text changed is refused (never edit an applied file, add the next
  version), and so is a new version older than the newest applied one (out of order).

Pure: the database is a :class:`Database` protocol (the Data API adapter lives in ``data_api``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lambdas.db_migrator.sql import SqlSyntaxError, split_statements

_DESCRIPTION = re.compile(r"[A-Za-z0-9_]+")


class MigrationError(Exception):
    """A migration run that cannot succeed as requested; the message says why, for people."""


class InvalidMigrationsError(MigrationError):
    """The migrations handed to the function are malformed."""


class ChecksumMismatchError(MigrationError):
    """An applied migration's text differs from the one the database recorded."""


class OutOfOrderError(MigrationError):
    """A version that was never applied is older than the newest applied version."""


class MigrationFailedError(MigrationError):
    """The database refused a statement; the migration was rolled back."""

    def __init__(self, version: int, detail: str) -> None:
        super().__init__(f"V{version} failed and was rolled back: {detail}")
        self.version = version


class OutOfTimeError(MigrationError):
    """Too little time was left to start the next migration safely."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def statements(self) -> list[str]:
        try:
            return split_statements(self.sql)
        except SqlSyntaxError as error:
            raise InvalidMigrationsError(f"V{self.version}: {error}") from None


@dataclass(frozen=True)
class MigrationReport:
    """What a run did: versions applied now, and versions found already applied."""

    applied: tuple[int, ...]
    already_applied: tuple[int, ...]

    @property
    def latest_version(self) -> int:
        return max((*self.applied, *self.already_applied), default=0)


class Database(Protocol):
    def ensure_history(self) -> None:
        """Create the history table if it does not exist."""
        ...

    def applied_checksums(self) -> dict[int, str]:
        """Checksum of every recorded migration by version."""
        ...

    def apply(self, migration: Migration) -> None:
        """Run the statements and record the migration in one transaction (or raise, rolled back)."""
        ...


def parse_migrations(raw: Any) -> tuple[Migration, ...]:
    """The ``Migrations`` property of the custom resource, in version order.

    CloudFormation hands every scalar to the function as a string, so ``Version`` arrives as
    ``"1"``. Versions must be unique and start at 1 without gaps (a gap is a lost file).
    """
    if not isinstance(raw, list) or not raw:
        raise InvalidMigrationsError("the Migrations property must be a non-empty list")
    migrations = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidMigrationsError(f"migration #{index} is not an object")
        version_text, description, sql = (str(item.get(k, "")) for k in ("Version", "Description", "Sql"))
        # isdecimal() and ASCII: '²'.isdigit() is True, yet int('²') raises.
        if not (version_text.isascii() and version_text.isdecimal()) or int(version_text) < 1:
            raise InvalidMigrationsError(
                f"migration #{index}: Version must be a positive integer, got {version_text!r}"
            )
        if not _DESCRIPTION.fullmatch(description):
            raise InvalidMigrationsError(f"V{version_text}: Description must be letters, digits and underscores")
        if not sql.strip():
            raise InvalidMigrationsError(f"V{version_text}: Sql is empty")
        migrations.append(Migration(int(version_text), description, sql))
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise InvalidMigrationsError(f"versions must be 1..N without gaps or duplicates, got {versions}")
    for migration in migrations:
        _ = migration.statements  # refuse unsplittable SQL before anything runs
    return tuple(migrations)


def pending(migrations: Sequence[Migration], applied: Mapping[int, str]) -> list[Migration]:
    """The migrations still to apply, in order; refuses edited or out-of-order migrations."""
    edited = [m.version for m in migrations if m.version in applied and applied[m.version] != m.checksum]
    if edited:
        raise ChecksumMismatchError(
            f"applied migrations were edited: {', '.join(f'V{v}' for v in edited)}; "
            "restore them and add the change as a new version"
        )
    todo = [m for m in migrations if m.version not in applied]
    newest_applied = max(applied, default=0)
    late = [m.version for m in todo if m.version < newest_applied]
    if late:
        raise OutOfOrderError(
            f"{', '.join(f'V{v}' for v in late)} never ran but V{newest_applied} did; "
            "renumber them after the newest applied version"
        )
    return todo


def migrate(
    database: Database,
    migrations: Sequence[Migration],
    *,
    seconds_left: Callable[[], float] = lambda: float("inf"),
    seconds_per_migration: float = 60.0,
) -> MigrationReport:
    """Apply every pending migration in order; stop before one that might not finish in time.

    ``seconds_left`` tells how long the caller may still run: a migration is only started with at
    least ``seconds_per_migration`` left, so the caller can always answer before it is killed.
    """
    database.ensure_history()
    applied = database.applied_checksums()
    todo = pending(migrations, applied)
    done: list[int] = []
    for migration in todo:
        if seconds_left() < seconds_per_migration:
            finished = ", ".join(f"V{v}" for v in done) or "nothing"
            raise OutOfTimeError(f"applied {finished} before running out of time; deploy again to continue")
        database.apply(migration)
        done.append(migration.version)
    return MigrationReport(
        applied=tuple(done), already_applied=tuple(sorted(v for v in applied if v in {m.version for m in migrations}))
    )
