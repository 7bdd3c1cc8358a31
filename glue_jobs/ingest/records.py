"""A feature snapshot row -> a SageMaker Feature Store ``PutRecord`` record. Pure: no AWS, no Spark.

The conversion itself (types, nulls left out, non-finite numbers refused) is the schema package's
:func:`~platform_core.schemas.features.to_feature_record`, the same one the streaming writer uses;
this module adds what batch ingestion must check on top: the row's event time is the snapshot's
``as_of`` (it comes from the data, never from a clock), and a row that cannot become a record says
why instead of failing the run.

Which stores the batch path writes differs per group. ``user-subscription`` has no other writer:
both stores. ``user-clickstream``'s online store belongs to the stream consumer, whose records are
fresher: a daily snapshot as of 01:00 is computed from a raw lake that Firehose fills minutes late,
so its record (newer event time, fewer events) would replace a more complete streamed one. The
snapshot goes to the offline store only, which the stream never writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from platform_core.schemas.features import (
    USER_CLICKSTREAM,
    USER_SUBSCRIPTION,
    FeatureGroup,
    format_event_time,
    to_feature_record,
)

Record = list[dict[str, str]]

ONLINE_STORE = "OnlineStore"
OFFLINE_STORE = "OfflineStore"
BATCH_TARGET_STORES: Mapping[str, tuple[str, ...]] = {
    USER_CLICKSTREAM.name: (OFFLINE_STORE,),
    USER_SUBSCRIPTION.name: (ONLINE_STORE, OFFLINE_STORE),
}

# Rows the batch ingestion could not write, with their reasons (JSON lines, one partition per
# snapshot_date), under this prefix of the curated bucket.
INGEST_REJECTS_PREFIX = "errors/feature-store/"


def target_stores(group: FeatureGroup) -> tuple[str, ...]:
    """The stores a batch ``PutRecord`` of ``group`` writes (``TargetStores``)."""
    try:
        return BATCH_TARGET_STORES[group.name]
    except KeyError:
        raise KeyError(f"no batch target stores defined for feature group {group.name}") from None


def rejects_prefix(group: FeatureGroup) -> str:
    """Key prefix (curated bucket) of the rows of ``group`` that could not be ingested."""
    return f"{INGEST_REJECTS_PREFIX}{group.name.replace('-', '_')}/"


class UnusableRowError(ValueError):
    """A row that cannot become a record of its group; the message is the reason."""


def feature_record(group: FeatureGroup, row: Mapping[str, Any], *, as_of: datetime) -> Record:
    """The ``PutRecord`` ``Record`` of one snapshot row of ``group``.

    ``row`` holds the group's features by name (timestamps as aware datetimes). Its event time
    must be ``as_of``, the instant the snapshot was computed for: a row of another instant means
    the snapshot and the run disagree, and writing it would put a record at the wrong time.
    Raises :class:`UnusableRowError` with the reason for a row that cannot be written.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    event_time = row.get(group.event_time)
    if not isinstance(event_time, datetime) or event_time.tzinfo is None:
        raise UnusableRowError(f"{group.event_time} must be a timezone-aware timestamp, got {event_time!r}")
    if event_time != as_of:
        raise UnusableRowError(
            f"{group.event_time} {format_event_time(event_time)} is not the snapshot's as_of {format_event_time(as_of)}"
        )
    try:
        return to_feature_record(group, row)
    except (KeyError, TypeError, ValueError) as error:
        # The schema package's own reasons: unknown feature, missing key, non-finite number, bad type.
        raise UnusableRowError(f"{type(error).__name__}: {error}") from error
