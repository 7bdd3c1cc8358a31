"""Where online feature records go: the Feature Store online store, or memory.

moto has no ``sagemaker-featurestore-runtime``, so the writer is a small interface: the Lambda
uses :class:`FeatureStoreRuntimeWriter`, tests and the local runtime :class:`InMemoryFeatureStore`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from platform_core.schemas.features import EVENT_TIME, RECORD_IDENTIFIER, parse_event_time

Record = Sequence[Mapping[str, str]]


class FeatureRecordWriter(Protocol):
    def put_record(self, feature_group_name: str, record: Record) -> None: ...


class FeatureStoreRuntimeWriter:
    """``PutRecord`` to the online store only: the offline store is fed by the Spark snapshots,
    so the stream must not add a second, differently-timed copy there."""

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._client = client_factory

    def put_record(self, feature_group_name: str, record: Record) -> None:
        self._client().put_record(
            FeatureGroupName=feature_group_name,
            Record=[dict(item) for item in record],
            TargetStores=["OnlineStore"],
        )


class InMemoryFeatureStore:
    """Keeps, per group and record identifier, the record with the latest event time, as the
    online store does: ``PutRecord`` replaces the stored record only with one whose event time is
    *greater*; an equal or older one is historic (offline store only, per the API reference), so a
    changed record needs a later event time to be seen online."""

    def __init__(self, record_identifier: str = RECORD_IDENTIFIER, event_time: str = EVENT_TIME) -> None:
        self._id = record_identifier
        self._time = event_time
        self.records: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.puts = 0

    @staticmethod
    def _value(record: Record, name: str) -> str:
        for item in record:
            if item["FeatureName"] == name:
                return item["ValueAsString"]
        raise KeyError(f"record has no {name}")

    def put_record(self, feature_group_name: str, record: Record) -> None:
        self.puts += 1
        key = (feature_group_name, self._value(record, self._id))
        current = self.records.get(key)
        new_time = parse_event_time(self._value(record, self._time))
        if current is None or parse_event_time(self._value(current, self._time)) < new_time:
            self.records[key] = [dict(item) for item in record]

    def get_record(self, feature_group_name: str, record_identifier: str) -> list[dict[str, str]] | None:
        return self.records.get((feature_group_name, record_identifier))
