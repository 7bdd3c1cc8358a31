"""Named Athena queries, kept as SQL files that run unchanged on Athena (Trino) and DuckDB.

Each file in ``queries/`` is one named query; its name is the file name without ``.sql``. The
only placeholder is ``{database}``: the Glue database holding the tables (``Names.glue_database``
in AWS; whatever schema the local runtime attaches the Parquet lake as in DuckDB). Tables read:
``clickstream_raw`` (Hive-partitioned by year/month/day/hour, string partition values),
``subscription_history`` and ``churn_labels``.
"""

from __future__ import annotations

import re
from pathlib import Path

QUERIES_DIR = Path(__file__).parent / "queries"

DESCRIPTIONS = {
    "daily_active_users": "Distinct signed-in users and events per UTC day.",
    "purchase_funnel": "Sessions reaching page_view -> add_to_cart -> purchase, and the step conversion rates.",
    "churn_by_plan": "Churn labels, churned count and churn rate by the plan held at each label's cutoff.",
}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def query_names() -> list[str]:
    return sorted(p.stem for p in QUERIES_DIR.glob("*.sql"))


def load_query(name: str) -> str:
    """The query's SQL text with its ``{database}`` placeholder."""
    path = QUERIES_DIR / f"{name}.sql"
    if name not in query_names():
        raise KeyError(f"no named query {name!r}; known: {', '.join(query_names())}")
    return path.read_text()


def render(name: str, database: str) -> str:
    """The query with the database filled in (an identifier only: it is pasted into SQL)."""
    if not _IDENTIFIER.fullmatch(database):
        raise ValueError(f"not a plain SQL identifier: {database!r}")
    return load_query(name).replace("{database}", database)
