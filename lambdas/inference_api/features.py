"""A user's online features: one ``GetRecord`` per feature group, typed by the group's schema.

moto has no ``sagemaker-featurestore-runtime``, so the store is a one-method interface: the
Lambda uses :class:`FeatureStoreReader`; tests and the local runtime use any object with the same
``get_record`` (``lambdas.online_features.feature_store.InMemoryFeatureStore`` has it, so the
records the online writer puts are exactly the records read here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from platform_core.schemas.features import FeatureGroup, from_feature_record

Record = list[dict[str, str]]


class OnlineStore(Protocol):
    def get_record(self, feature_group_name: str, record_identifier: str) -> Record | None: ...


class FeatureStoreReader:
    """``GetRecord`` from the online store; an unknown identifier answers without a ``Record``."""

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._client = client_factory

    def get_record(self, feature_group_name: str, record_identifier: str) -> Record | None:
        response = self._client().get_record(
            FeatureGroupName=feature_group_name, RecordIdentifierValueAsString=record_identifier
        )
        record = response.get("Record")
        return list(record) if record else None


@dataclass(frozen=True)
class UserFeatures:
    """The features of every group the user has a record in, as the model's input record."""

    user_id: str
    values: dict[str, Any]  # feature name -> JSON-ready value (None when absent)
    as_of: dict[str, datetime | None]  # group name -> its record's event_time (None: no record)

    @property
    def known(self) -> bool:
        return any(t is not None for t in self.as_of.values())

    def ages_seconds(self, now: datetime) -> dict[str, float | None]:
        return {group: (None if t is None else round((now - t).total_seconds(), 3)) for group, t in self.as_of.items()}

    def model_input(self) -> dict[str, Any]:
        """What the endpoint receives: ``user_id`` (echoed back) and every feature value."""
        return {"user_id": self.user_id, **self.values}


def read_user_features(
    store: OnlineStore,
    groups: Mapping[FeatureGroup, str],
    user_id: str,
    *,
    now: datetime,
    max_age: timedelta,
) -> UserFeatures:
    """Read every group; a group without a record, or with a record older than ``max_age`` at
    ``now`` (``FeaturesConfig.max_feature_age_days``), contributes absent (None) features, exactly
    as a label without an eligible snapshot does in the training set."""
    values: dict[str, Any] = {}
    as_of: dict[str, datetime | None] = {}
    for group, physical_name in groups.items():
        record = store.get_record(physical_name, user_id)
        typed = from_feature_record(group, record) if record else {}
        instant = as_of[group.name] = typed.get(group.event_time)
        if instant is not None and instant < now - max_age:
            typed = {}  # too old to describe the user now
        for name in group.value_names:
            values[name] = _json_ready(typed.get(name))
    return UserFeatures(user_id=user_id, values=values, as_of=as_of)


def _json_ready(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
