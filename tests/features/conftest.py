"""Builders of the input tables the feature transforms read (shapes from the shared schemas)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from platform_core.schema import Schema, glue_type
from platform_core.schemas.cdc import CHURN_LABEL, SUBSCRIPTION_HISTORY
from platform_core.schemas.clickstream import CLICKSTREAM_RAW

T0 = datetime(2024, 3, 10, tzinfo=UTC)

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)


def ddl(schema: Schema) -> str:
    """A Spark DDL schema string derived from a dataset schema."""
    return ", ".join(f"`{f.name}` {glue_type(f.type)}" for f in schema.fields)


HISTORY_DDL = ddl(SUBSCRIPTION_HISTORY)
LABELS_DDL = ddl(CHURN_LABEL)
RAW_DDL = ddl(CLICKSTREAM_RAW)


def at(minutes: float = 0, *, days: float = 0, base: datetime = T0) -> datetime:
    return base + timedelta(days=days, minutes=minutes)


def raw_row(
    event_id: str,
    event_time: datetime,
    *,
    user_id: str | None = "u1",
    session_id: str = "s1",
    event_type: str = "page_view",
    ua_os: str | None = "Windows",
    referrer_host: str | None = None,
    ingested_at: datetime | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A clickstream_raw row with every column of the lake schema (unset ones null)."""
    row: dict[str, Any] = dict.fromkeys(CLICKSTREAM_RAW.field_names)
    row.update(
        event_id=event_id,
        event_time=event_time,
        event_type=event_type,
        session_id=session_id,
        user_id=user_id,
        ua_os=ua_os,
        referrer_host=referrer_host,
        ingested_at=ingested_at or event_time + timedelta(seconds=2),
    )
    row.update(overrides)
    return row


def raw_df(spark: Any, rows: Iterable[Mapping[str, Any]]) -> Any:
    names = CLICKSTREAM_RAW.field_names
    return spark.createDataFrame([tuple(r[n] for n in names) for r in rows], RAW_DDL)


def history_row(
    user_id: str,
    valid_from: datetime,
    valid_to: datetime | None,
    *,
    active: bool,
    plan: str = "basic",
    price: float = 9.99,
    renewal_date: date = date(2024, 4, 15),
) -> tuple[Any, ...]:
    return (user_id, active, renewal_date, plan, price, valid_from, valid_to, valid_to is None)
