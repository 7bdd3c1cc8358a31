"""Index State Management: daily ``clickstream-*`` indices are deleted after the retention period.

Observability data is a disposable copy (the lake keeps everything), so the domain's disk holds a
bounded window instead of filling up and turning the cluster read-only.
"""

from __future__ import annotations

from typing import Any

from platform_core.config import PlatformConfig
from platform_core.names import SEARCH_INDEX_PATTERN

POLICY_ID = "clickstream-retention"


def retention_policy(config: PlatformConfig) -> dict[str, Any]:
    """Body of ``PUT _plugins/_ism/policies/clickstream-retention``."""
    days = config.observability.opensearch_retention_days
    return {
        "policy": {
            "description": f"Delete clickstream indices {days} days after their creation",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [],
                    "transitions": [{"state_name": "delete", "conditions": {"min_index_age": f"{days}d"}}],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            "ism_template": [{"index_patterns": [SEARCH_INDEX_PATTERN], "priority": 100}],
        }
    }
