"""db/migrations applied to a throwaway local PostgreSQL (when its binaries are installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

MIGRATIONS = Path(__file__).resolve().parents[2] / "db" / "migrations"
BINARIES = {name: shutil.which(name) for name in ("initdb", "pg_ctl", "psql")}

pytestmark = pytest.mark.skipif(not all(BINARIES.values()), reason="PostgreSQL binaries are not installed")


def _version(path: Path) -> int:
    return int(path.name[1:].split("__")[0])


def _as_postgres_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI and sessions here are root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def psql() -> Iterator[list[str]]:
    """A psql command line connected to a fresh server on a private Unix socket (no TCP)."""
    root = Path(tempfile.mkdtemp(prefix="cdc-pg-"))
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
        command = run([str(BINARIES["psql"]), "-h", str(root), "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At"])
        for path in sorted(MIGRATIONS.glob("V*__*.sql"), key=_version):
            applied = subprocess.run(
                [*command, "-f", "-"], input=path.read_text(), capture_output=True, text=True, check=False
            )
            assert applied.returncode == 0, f"{path.name}: {applied.stderr}"
        yield command
    finally:
        subprocess.run(run([str(BINARIES["pg_ctl"]), "-D", str(data), "-m", "immediate", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


def sql(psql: list[str], statement: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*psql, "-c", statement], capture_output=True, text=True, check=False)


def test_migrations_are_numbered_from_one() -> None:
    versions = sorted(_version(p) for p in MIGRATIONS.glob("V*__*.sql"))
    assert versions == list(range(1, len(versions) + 1))


def test_migrated_table_matches_the_contract(psql: list[str]) -> None:
    # Given the migrations applied in version order (the fixture fails on any error)
    # Then the table logs full rows for DMS's before image
    assert sql(psql, "SELECT relreplident FROM pg_class WHERE relname = 'subscriptions'").stdout.strip() == "f"
    columns = sql(
        psql,
        "SELECT column_name || ':' || data_type || ':' || is_nullable FROM information_schema.columns "
        "WHERE table_name = 'subscriptions' ORDER BY ordinal_position",
    ).stdout.split()
    assert columns == [
        "user_id:text:NO",
        "is_active_subscribed:boolean:NO",
        "renewal_date:date:YES",
        "plan:text:YES",
        "price:numeric:YES",
    ]


def test_constraints_refuse_incomplete_rows(psql: list[str]) -> None:
    # Given two valid rows
    sql(psql, "DELETE FROM subscriptions")
    ok = sql(
        psql,
        "INSERT INTO subscriptions VALUES ('u1', true, '2026-12-01', 'basic', 9.99), ('u2', false, NULL, NULL, NULL)",
    )
    assert ok.returncode == 0, ok.stderr
    # When rows break the key, the completeness rule or the NOT NULL flag, Then they are refused
    duplicate = sql(psql, "INSERT INTO subscriptions (user_id) VALUES ('u1')")
    active_without_date = sql(psql, "INSERT INTO subscriptions VALUES ('u3', true, NULL, 'basic', 9.99)")
    null_flag = sql(psql, "INSERT INTO subscriptions VALUES ('u4', NULL)")
    assert "subscriptions_pkey" in duplicate.stderr
    assert "subscriptions_active_is_complete" in active_without_date.stderr
    assert null_flag.returncode != 0 and '"is_active_subscribed"' in null_flag.stderr
