"""Bring an OpenSearch domain to the declared state: security roles and their mappings, index
templates, retention policies and the Dashboards saved objects.

Every step is a PUT of the whole desired document (or an import with ``overwrite=true``), so
running it again with the same specification changes nothing: the provisioning is idempotent by
construction, whichever step a previous attempt stopped at. Knows nothing of Lambda or
CloudFormation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from lambdas.dashboards_import.multipart import ndjson_upload
from lambdas.dashboards_import.transport import HttpRequest, HttpResponse, Transport

# Answers worth another attempt: throttling, and the gateway errors a domain gives while it is
# still coming up or rebalancing. Any other status is final.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_JSON = "application/json"


class SpecError(ValueError):
    """The resource properties do not describe a provisioning (a bug in the stack, not in the domain)."""


class ProvisioningError(RuntimeError):
    """The domain refused or never answered a step."""

    def __init__(self, step: str, detail: str, status: int | None = None) -> None:
        self.step = step
        self.status = status
        self.detail = detail
        where = f"{step}: HTTP {status}" if status is not None else step
        super().__init__(f"{where}: {detail}")


# ---------------------------------------------------------------------------------------------
# What to provision
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisioningSpec:
    endpoint: str  # the domain's host name, without scheme
    security_roles: Mapping[str, Any] = field(default_factory=dict)
    role_mappings: Mapping[str, Any] = field(default_factory=dict)
    audit_config: Mapping[str, Any] | None = None  # the security plugin's whole audit configuration
    index_templates: Mapping[str, Any] = field(default_factory=dict)
    ism_policies: Mapping[str, Any] = field(default_factory=dict)
    saved_objects: str = ""  # NDJSON
    tenant: str = "global"
    default_index_pattern: str | None = None

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> ProvisioningSpec:
        """The custom resource's properties; CloudFormation delivers each one as a string."""
        endpoint = properties.get("DomainEndpoint")
        if not isinstance(endpoint, str) or not endpoint or "/" in endpoint:
            raise SpecError("DomainEndpoint must be the domain's host name (no scheme, no path)")
        default_index = properties.get("DefaultIndexPattern") or None
        return cls(
            endpoint=endpoint,
            security_roles=_json_object(properties, "SecurityRoles"),
            role_mappings=_json_object(properties, "RoleMappings"),
            audit_config=_audit_config(properties),
            index_templates=_json_object(properties, "IndexTemplates"),
            ism_policies=_json_object(properties, "IsmPolicies"),
            saved_objects=str(properties.get("SavedObjects", "")),
            tenant=str(properties.get("Tenant") or "global"),
            default_index_pattern=str(default_index) if default_index else None,
        )


def _audit_config(properties: Mapping[str, Any]) -> Mapping[str, Any] | None:
    raw = properties.get("AuditConfig")
    if raw in (None, "", "{}"):
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise SpecError(f"AuditConfig is not JSON: {error.msg} at position {error.pos}") from None
    if not isinstance(value, dict):
        raise SpecError("AuditConfig must be a JSON object")
    return value


def _json_object(properties: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    raw = properties.get(name, "{}")
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as error:
        raise SpecError(f"{name} is not JSON: {error.msg} at position {error.pos}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise SpecError(f"{name} must be a JSON object of name -> document")
    return value


# ---------------------------------------------------------------------------------------------
# How to talk to the domain
# ---------------------------------------------------------------------------------------------


class OpenSearchClient:
    """JSON over HTTPS to one domain, with bounded retries and a hard deadline.

    The deadline is the point after which CloudFormation must already have its answer; no attempt
    starts that could end after it.
    """

    def __init__(
        self,
        endpoint: str,
        transport: Transport,
        *,
        timeout: float,
        max_attempts: int,
        deadline: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self._base = f"https://{endpoint}"
        self._transport = transport
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._deadline = deadline
        self._clock = clock
        self._sleep = sleep

    def request(
        self,
        step: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        accept: frozenset[int] = frozenset({200, 201}),
    ) -> HttpResponse:
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), sort_keys=True).encode("utf-8")
            all_headers.setdefault("Content-Type", _JSON)
        url = f"{self._base}{path}" + (f"?{urlencode(query)}" if query else "")
        request = HttpRequest(method=method, url=url, headers=all_headers, body=body)
        response = self._send_with_retries(step, request)
        if response.status not in accept:
            raise ProvisioningError(step, response.excerpt(), status=response.status)
        return response

    def _send_with_retries(self, step: str, request: HttpRequest) -> HttpResponse:
        last: str = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            remaining = self._deadline - self._clock()
            if remaining <= 1:
                break
            try:
                response = self._transport.send(request, timeout=min(self._timeout, remaining))
            except OSError as error:  # DNS, connection refused, TLS, timeout: the domain may be coming up
                last = f"network error ({type(error).__name__}: {error})"
            else:
                if response.status not in RETRYABLE_STATUSES:
                    return response
                last = f"HTTP {response.status}: {response.excerpt(200)}"
            if attempt < self._max_attempts:
                self._sleep(min(2.0**attempt, 30.0, max(self._deadline - self._clock() - 1, 0)))
        raise ProvisioningError(step, f"gave up after retries; last answer: {last}")


# ---------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisioningReport:
    roles: int
    role_mappings: int
    index_templates: int
    ism_policies: int
    saved_objects: int

    def as_data(self) -> dict[str, str]:
        """CloudFormation attributes (``Fn::GetAtt``) are strings."""
        return {
            "Roles": str(self.roles),
            "RoleMappings": str(self.role_mappings),
            "IndexTemplates": str(self.index_templates),
            "IsmPolicies": str(self.ism_policies),
            "SavedObjects": str(self.saved_objects),
        }


def provision(spec: ProvisioningSpec, client: OpenSearchClient) -> ProvisioningReport:
    """Apply the specification in dependency order: who may do what, then what the data looks
    like, then what the operators see. Names are applied in sorted order (reproducible requests).
    """
    for name, role in sorted(spec.security_roles.items()):
        client.request(
            f"security role {name}", "PUT", f"/_plugins/_security/api/roles/{_segment(name)}", json_body=role
        )
    for name, mapping in sorted(spec.role_mappings.items()):
        client.request(
            f"role mapping {name}", "PUT", f"/_plugins/_security/api/rolesmapping/{_segment(name)}", json_body=mapping
        )
    if spec.audit_config is not None:
        # Publishing audit logs to CloudWatch is a domain setting; what gets audited is this one.
        client.request(
            "audit configuration", "PUT", "/_plugins/_security/api/audit/config", json_body=spec.audit_config
        )
    for name, template in sorted(spec.index_templates.items()):
        client.request(f"index template {name}", "PUT", f"/_index_template/{_segment(name)}", json_body=template)
    for policy_id, policy in sorted(spec.ism_policies.items()):
        _put_ism_policy(client, policy_id, policy)
    imported = _import_saved_objects(client, spec) if spec.saved_objects.strip() else 0
    if spec.default_index_pattern:
        client.request(
            "default index pattern",
            "POST",
            "/_dashboards/api/opensearch-dashboards/settings",
            json_body={"changes": {"defaultIndex": spec.default_index_pattern}},
            headers=_dashboards_headers(spec.tenant),
        )
    return ProvisioningReport(
        roles=len(spec.security_roles),
        role_mappings=len(spec.role_mappings),
        index_templates=len(spec.index_templates),
        ism_policies=len(spec.ism_policies),
        saved_objects=imported,
    )


def _put_ism_policy(client: OpenSearchClient, policy_id: str, policy: Mapping[str, Any]) -> None:
    """ISM refuses a plain PUT over an existing policy: an update names the version it replaces."""
    step = f"ISM policy {policy_id}"
    path = f"/_plugins/_ism/policies/{_segment(policy_id)}"
    current = client.request(step, "GET", path, accept=frozenset({200, 404}))
    query = None
    if current.status == 200:
        try:
            document = json.loads(current.body)
            query = {"if_seq_no": str(int(document["_seq_no"])), "if_primary_term": str(int(document["_primary_term"]))}
        except (ValueError, KeyError, TypeError):
            raise ProvisioningError(step, "the existing policy has no _seq_no/_primary_term", status=200) from None
    client.request(step, "PUT", path, json_body=policy, query=query)


def _import_saved_objects(client: OpenSearchClient, spec: ProvisioningSpec) -> int:
    """Import with ``overwrite=true``: objects keep their ids, so a re-import replaces, never duplicates."""
    content_type, body = ndjson_upload(spec.saved_objects.encode("utf-8"))
    response = client.request(
        "saved objects import",
        "POST",
        "/_dashboards/api/saved_objects/_import",
        query={"overwrite": "true"},
        body=body,
        headers={**_dashboards_headers(spec.tenant), "Content-Type": content_type},
    )
    try:
        result = json.loads(response.body)
    except json.JSONDecodeError:
        raise ProvisioningError("saved objects import", "the answer is not JSON", status=response.status) from None
    if not isinstance(result, dict) or result.get("success") is not True:
        errors = result.get("errors", []) if isinstance(result, dict) else []
        summary = "; ".join(_import_error(e) for e in errors[:10]) or response.excerpt()
        raise ProvisioningError("saved objects import", f"rejected: {summary}", status=response.status)
    return int(result.get("successCount", 0))


def _import_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    detail = error.get("error", {})
    kind = detail.get("type", "error") if isinstance(detail, dict) else "error"
    return f"{error.get('type')}/{error.get('id')}: {kind}"


def _dashboards_headers(tenant: str) -> dict[str, str]:
    # osd-xsrf: Dashboards refuses API writes without it; securitytenant: which tenant gets the objects.
    return {"osd-xsrf": "true", "securitytenant": tenant}


def _segment(name: str) -> str:
    return quote(name, safe="")
