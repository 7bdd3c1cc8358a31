"""The statements the migrator sends for db/migrations, run one by one on a real PostgreSQL.

The Data API takes one statement per call, so this checks that the split of every checked-in
migration is exactly what PostgreSQL accepts (skipped when the PostgreSQL binaries are missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdas.db_migrator.migrations import parse_migrations
from tests.cdc_stack.migrator_fakes import migration_properties

BINARIES = {name: shutil.which(name) for name in ("initdb", "pg_ctl", "psql")}

pytestmark = pytest.mark.skipif(not all(BINARIES.values()), reason="PostgreSQL binaries are not installed")


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def psql() -> Iterator[list[str]]:
    """psql connected to a fresh server on a private Unix socket (no TCP)."""
    root = Path(tempfile.mkdtemp(prefix="migrator-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "data"
    run = _as_postgres_user
    subprocess.run(
        run([str(BINARIES["initdb"]), "-D", str(data), "-A", "trust", "--no-sync"]), check=True, capture_output=True
    )
    options = f"-k {root} -c listen_addresses='' -c fsync=off"
    start = [str(BINARIES["pg_ctl"]), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
    subprocess.run(run(start), check=True, capture_output=True)
    try:
        yield run([str(BINARIES["psql"]), "-h", str(root), "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At"])
    finally:
        subprocess.run(run([str(BINARIES["pg_ctl"]), "-D", str(data), "-m", "immediate", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_each_split_statement_of_every_migration_runs_on_its_own(psql: list[str]) -> None:
    # Given the migrations as the stack hands them to the custom resource
    migrations = parse_migrations(migration_properties())

    # When each statement is sent alone, as the Data API would
    for migration in migrations:
        for statement in migration.statements:
            result = subprocess.run([*psql, "-c", statement], capture_output=True, text=True, check=False)
            # Then PostgreSQL accepts every one of them
            assert result.returncode == 0, f"V{migration.version}: {statement[:80]!r}: {result.stderr}"

    # And the result is the table of the contract, logging full rows for DMS
    replica = subprocess.run(
        [*psql, "-c", "SELECT relreplident FROM pg_class WHERE relname = 'subscriptions'"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert replica.stdout.strip() == "f"
