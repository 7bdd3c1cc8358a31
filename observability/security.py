"""Fine-grained access control: who may read and who may write the clickstream indices.

Two roles of the OpenSearch security plugin, each mapped to exactly one IAM role (a backend role):

* ``clickstream_reader`` (dashboard users): read ``clickstream-*``, read-only on the global
  Dashboards tenant; also mapped to the built-in ``opensearch_dashboards_read_only`` role, which
  switches Dashboards into read-only mode (no edit or delete buttons).
* ``clickstream_writer`` (the search Firehose's role only): create and write ``clickstream-*``
  indices, nothing else.

The master user is the provisioning function's IAM role; it is the only principal that can change
this configuration, so every change goes through a deployment.
"""

from __future__ import annotations

from typing import Any

from platform_core.names import SEARCH_INDEX_PATTERN

READER_ROLE = "clickstream_reader"
WRITER_ROLE = "clickstream_writer"
# Built in: puts Dashboards into read-only mode for the users mapped to it.
DASHBOARDS_READ_ONLY_ROLE = "opensearch_dashboards_read_only"
GLOBAL_TENANT = "global_tenant"


def security_roles() -> dict[str, dict[str, Any]]:
    """Bodies of ``PUT _plugins/_security/api/roles/<name>``."""
    return {
        READER_ROLE: {
            "description": "Operators: read the clickstream indices and the shared dashboards",
            "cluster_permissions": ["cluster_composite_ops_ro"],
            "index_permissions": [
                {"index_patterns": [SEARCH_INDEX_PATTERN], "allowed_actions": ["read"]},
            ],
            "tenant_permissions": [{"tenant_patterns": [GLOBAL_TENANT], "allowed_actions": ["kibana_all_read"]}],
        },
        WRITER_ROLE: {
            "description": "The search Firehose: bulk-index into daily clickstream indices",
            # Firehose checks the cluster (health, nodes) before it writes with _bulk.
            "cluster_permissions": ["cluster_monitor", "cluster_composite_ops", "indices:admin/template/get"],
            "index_permissions": [
                {
                    "index_patterns": [SEARCH_INDEX_PATTERN],
                    "allowed_actions": ["create_index", "crud", "indices_monitor", "indices:admin/mapping/put"],
                }
            ],
        },
    }


def role_mappings(*, reader_role_arn: str, writer_role_arn: str) -> dict[str, dict[str, Any]]:
    """Bodies of ``PUT _plugins/_security/api/rolesmapping/<name>`` (IAM role ARNs as backend roles)."""
    return {
        READER_ROLE: {"backend_roles": [reader_role_arn]},
        DASHBOARDS_READ_ONLY_ROLE: {"backend_roles": [reader_role_arn]},
        WRITER_ROLE: {"backend_roles": [writer_role_arn]},
    }


def audit_config() -> dict[str, Any]:
    """Body of ``PUT _plugins/_security/api/audit/config`` (the API replaces the whole document).

    REST-layer events only, without the two high-volume categories (every successful login and
    every granted request, i.e. each Firehose bulk write): what remains is failed logins, missing
    privileges, bad headers and security configuration changes. Compliance logging records changes
    to the security configuration itself.
    """
    return {
        "enabled": True,
        "audit": {
            "enable_rest": True,
            "disabled_rest_categories": ["AUTHENTICATED", "GRANTED_PRIVILEGES"],
            "enable_transport": False,
            "disabled_transport_categories": ["AUTHENTICATED", "GRANTED_PRIVILEGES"],
            "resolve_bulk_requests": False,
            "log_request_body": False,
            "resolve_indices": True,
            "exclude_sensitive_headers": True,
            "ignore_users": [],
            "ignore_requests": [],
        },
        "compliance": {
            "enabled": True,
            "internal_config": True,
            "external_config": False,
            "read_metadata_only": True,
            "read_watched_fields": {},
            "read_ignore_users": [],
            "write_metadata_only": True,
            "write_log_diffs": False,
            "write_watched_indices": [],
            "write_ignore_users": [],
        },
    }
