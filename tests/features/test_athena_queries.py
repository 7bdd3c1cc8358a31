"""The named Athena queries, run on DuckDB over real Hive-partitioned Parquet, hand-checked."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from athena import DESCRIPTIONS, query_names, render
from platform_core.arrow_schema import arrow_schema
from platform_core.schema import Schema
from platform_core.schemas.cdc import CHURN_LABEL, SUBSCRIPTION_HISTORY
from platform_core.schemas.clickstream import CLICKSTREAM_RAW
from tests.features.conftest import raw_row


def _table(schema: Schema, rows: Sequence[dict[str, Any]], *, with_partition_keys: bool = False) -> pa.Table:
    arrow = arrow_schema(schema, with_partition_keys=with_partition_keys)
    return pa.Table.from_pylist([{n: r.get(n) for n in arrow.names} for r in rows], schema=arrow)


def _click(event_id: str, t: datetime, session: str, event_type: str, user: str | None = "u1") -> dict[str, Any]:
    row = raw_row(event_id, t, user_id=user, session_id=session, event_type=event_type)
    row.update(year=f"{t:%Y}", month=f"{t:%m}", day=f"{t:%d}", hour=f"{t:%H}")
    return row


D9 = datetime(2024, 3, 9, 10, tzinfo=UTC)
D10 = datetime(2024, 3, 10, 10, tzinfo=UTC)


def _clickstream_rows() -> list[dict[str, Any]]:
    m = timedelta(minutes=1)
    return [
        # March 9th: u1 (its purchase delivered twice) and u2 active, plus anonymous traffic
        _click("s1-v", D9, "s1", "page_view"),
        _click("s1-c", D9 + m, "s1", "add_to_cart"),
        _click("s1-p", D9 + 2 * m, "s1", "purchase"),
        _click("s1-p", D9 + 2 * m, "s1", "purchase"),
        _click("s2-v", D9, "s2", "page_view", user="u2"),
        _click("s2-c", D9 + m, "s2", "add_to_cart", user="u2"),
        _click("s3-v", D9, "s3", "page_view", user=None),
        # March 10th: u1 again, and u3 in the last millisecond of the day
        _click("s4-c", D10, "s4", "add_to_cart"),  # cart before any page view: not a funnel cart
        _click("s4-v", D10 + m, "s4", "page_view"),
        _click("s4-p", D10 + 2 * m, "s4", "purchase"),
        _click("s5-v", D10, "s5", "page_view", user="u3"),
        _click("s5-s", D10 + m, "s5", "search", user="u3"),
        _click("s5-c", D10 + 2 * m, "s5", "add_to_cart", user="u3"),
        _click("s5-p", D10 + 3 * m, "s5", "purchase", user="u3"),
        _click("s6-v", datetime(2024, 3, 10, 23, 59, 59, 999000, tzinfo=UTC), "s6", "page_view", user="u4"),
    ]


def _ts(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def _history_rows() -> list[dict[str, Any]]:
    def version(user: str, plan: str, start: datetime, end: datetime | None) -> dict[str, Any]:
        return {
            "user_id": user,
            "is_active_subscribed": True,
            "renewal_date": date(2024, 3, 15),
            "plan": plan,
            "price": 9.99,
            "valid_from": start,
            "valid_to": end,
            "is_current": end is None,
        }

    return [
        version("u1", "basic", _ts(2024, 1, 1), _ts(2024, 3, 1)),
        version("u1", "premium", _ts(2024, 3, 1), None),
        version("u2", "basic", _ts(2024, 1, 1), None),
        version("u3", "premium", _ts(2024, 1, 1), None),
        version("u5", "premium", _ts(2024, 1, 1), None),
    ]


def _label_rows() -> list[dict[str, Any]]:
    def label(user: str, renewal: date, churned: bool) -> dict[str, Any]:
        return {"user_id": user, "renewal_date": renewal, "churned": churned, "label_time": _ts(2024, 5, 1)}

    return [
        label("u1", date(2024, 2, 15), False),  # on basic then
        label("u1", date(2024, 3, 15), True),  # on premium then
        label("u2", date(2024, 3, 15), True),
        label("u3", date(2024, 3, 15), False),
        label("u5", date(2024, 3, 15), False),
        label("u4", date(2024, 3, 15), True),  # no history: 'unknown'
    ]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    root: Path = tmp_path_factory.mktemp("lake")
    partitions = [f.name for f in CLICKSTREAM_RAW.partition_keys]
    pq.write_to_dataset(
        _table(CLICKSTREAM_RAW, _clickstream_rows(), with_partition_keys=True),
        str(root / "clickstream"),
        partition_cols=partitions,
    )
    pq.write_table(_table(SUBSCRIPTION_HISTORY, _history_rows()), str(root / "history.parquet"))
    pq.write_table(_table(CHURN_LABEL, _label_rows()), str(root / "labels.parquet"))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # as Athena: dates become instants at 00:00 UTC
    # The Glue table's partition columns are strings ("03"), so DuckDB must not infer integers.
    hive_types = ", ".join(f"'{p}': VARCHAR" for p in partitions)
    con.execute("CREATE SCHEMA lake")
    con.execute(
        f"CREATE VIEW lake.clickstream_raw AS SELECT * FROM read_parquet('{root}/clickstream/**/*.parquet', "
        f"hive_partitioning = true, hive_types = {{{hive_types}}})"
    )
    con.execute(f"CREATE VIEW lake.subscription_history AS SELECT * FROM read_parquet('{root}/history.parquet')")
    con.execute(f"CREATE VIEW lake.churn_labels AS SELECT * FROM read_parquet('{root}/labels.parquet')")
    yield con
    con.close()


def _run(con: duckdb.DuckDBPyConnection, name: str) -> list[dict[str, Any]]:
    cursor = con.execute(render(name, "lake"))
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def test_every_query_file_is_described() -> None:
    assert query_names() == sorted(DESCRIPTIONS) == ["churn_by_plan", "daily_active_users", "purchase_funnel"]


def test_daily_active_users(lake: duckdb.DuckDBPyConnection) -> None:
    assert _run(lake, "daily_active_users") == [
        {"activity_date": "2024-03-09", "active_users": 2, "events": 5},
        {"activity_date": "2024-03-10", "active_users": 3, "events": 8},
    ]


def test_purchase_funnel(lake: duckdb.DuckDBPyConnection) -> None:
    # All six sessions viewed; carts after a view in s1, s2, s5 (s4's came first); purchases in s1, s5
    [row] = _run(lake, "purchase_funnel")
    assert (row["page_view_sessions"], row["add_to_cart_sessions"], row["purchase_sessions"]) == (6, 3, 2)
    assert row["view_to_cart_rate"] == pytest.approx(3 / 6)
    assert row["cart_to_purchase_rate"] == pytest.approx(2 / 3)
    assert row["view_to_purchase_rate"] == pytest.approx(2 / 6)


def test_churn_by_plan(lake: duckdb.DuckDBPyConnection) -> None:
    rows = _run(lake, "churn_by_plan")
    assert [(r["plan"], r["labels"], r["churned"]) for r in rows] == [
        ("basic", 2, 1),
        ("premium", 3, 1),
        ("unknown", 1, 1),
    ]
    assert [r["churn_rate"] for r in rows] == pytest.approx([0.5, 1 / 3, 1.0])


def test_partition_filters_prune_the_lake(lake: duckdb.DuckDBPyConnection) -> None:
    # A caller narrows a query by partition; the string partitions compare as in Athena
    sql = render("daily_active_users", "lake").replace(
        "WHERE user_id IS NOT NULL", "WHERE user_id IS NOT NULL AND year = '2024' AND month = '03' AND day = '10'"
    )
    assert lake.execute(sql).fetchall() == [("2024-03-10", 3, 8)]


def test_render_refuses_anything_but_an_identifier() -> None:
    with pytest.raises(ValueError, match="identifier"):
        render("churn_by_plan", "lake; DROP TABLE x")
    with pytest.raises(KeyError, match="no named query"):
        render("nope", "lake")
