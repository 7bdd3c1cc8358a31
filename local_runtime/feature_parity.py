"""Online/offline parity: do two sets of feature values (the streaming path's and the Spark job's)
agree, feature by feature?

One comparison for the parity test (``tests/features/test_online_offline_parity.py``) and the local
run's parity stage (:mod:`local_runtime.online_features_stage`), so that both hold the two paths to
the same rule: doubles agree to a relative 1e-9 (the paths add the same numbers in different orders),
everything else exactly; a null only equals a null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from platform_core.schema import FieldType, Primitive
from platform_core.schemas.features import FeatureGroup

REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-12


@dataclass(frozen=True)
class FeatureDifference:
    """One feature of one record on which the paths disagree. A record that only one path wrote
    is a difference on the record identifier (the missing side is None)."""

    user_id: str
    feature: str
    online: Any
    offline: Any


def same_value(kind: FieldType, online: Any, offline: Any) -> bool:
    if online is None or offline is None:
        return online is None and offline is None
    if kind is Primitive.DOUBLE:
        return math.isclose(online, offline, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    return bool(online == offline)


def feature_differences(
    group: FeatureGroup,
    user_id: str,
    online: Mapping[str, Any] | None,
    offline: Mapping[str, Any] | None,
    names: Iterable[str] | None = None,
) -> list[FeatureDifference]:
    """How one record differs between the paths (``names``: which features; by default the
    event time and every feature value, i.e. all but the record identifier)."""
    if online is None or offline is None:
        return [
            FeatureDifference(
                user_id,
                group.record_identifier,
                None if online is None else user_id,
                None if offline is None else user_id,
            )
        ]
    chosen = (group.event_time, *group.value_names) if names is None else tuple(names)
    return [
        FeatureDifference(user_id, name, online.get(name), offline.get(name))
        for name in chosen
        if not same_value(group.feature(name).type, online.get(name), offline.get(name))
    ]


def mismatches(
    group: FeatureGroup,
    online: Mapping[str, Mapping[str, Any]],
    offline: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[FeatureDifference]]:
    """The differences of every record either path wrote, keyed by the records that differ."""
    found: dict[str, list[FeatureDifference]] = {}
    for user_id in sorted(set(online) | set(offline)):
        differences = feature_differences(group, user_id, online.get(user_id), offline.get(user_id))
        if differences:
            found[user_id] = differences
    return found
