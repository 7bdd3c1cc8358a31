"""The provisioning custom resource, driven by the events CloudFormation sends, with the network
faked at its only boundary (the transport): every request it makes is asserted exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.dashboards_import import handler as handler_module
from lambdas.dashboards_import.cfn import response_request
from lambdas.dashboards_import.handler import handle, handler
from lambdas.dashboards_import.multipart import ndjson_upload
from lambdas.dashboards_import.settings import Settings, SettingsError, settings
from lambdas.dashboards_import.transport import HttpResponse
from platform_core.custom_resource import MAX_REASON_CHARS, Outcome, parse_request
from tests.observability.fakes import FakeContext, FakeNetwork, cfn_event, ok

ENDPOINT = "https://vpc-mlp-dev-search-4k2hx7bq3mlkq5nq2qjv3c4x3y.eu-west-1.es.amazonaws.com"
CONFIG = Settings(region="eu-west-1", http_timeout_seconds=30, max_attempts=4, safety_margin_seconds=15)

CREATE_CALLS = [
    ("PUT", "/_plugins/_security/api/roles/clickstream_reader"),
    ("PUT", "/_plugins/_security/api/rolesmapping/clickstream_reader"),
    ("PUT", "/_plugins/_security/api/rolesmapping/clickstream_writer"),
    ("PUT", "/_plugins/_security/api/audit/config"),
    ("PUT", "/_index_template/clickstream"),
    ("GET", "/_plugins/_ism/policies/clickstream-retention"),
    ("PUT", "/_plugins/_ism/policies/clickstream-retention"),
    ("POST", "/_dashboards/api/saved_objects/_import?overwrite=true"),
    ("POST", "/_dashboards/api/opensearch-dashboards/settings"),
    ("PUT", "<response>"),
]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNetwork]:
    fake = FakeNetwork()
    monkeypatch.setattr(handler_module, "_network", lambda: fake)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings.cache_clear()
    handler_module._signer.cache_clear()
    yield fake
    settings.cache_clear()
    handler_module._signer.cache_clear()


def _body(network: FakeNetwork, method: str, path: str) -> Any:
    return json.loads(network.request_to(method, path).body)


def test_create_provisions_in_dependency_order_and_answers_success(network):
    # Given the Create request CloudFormation sends
    event = cfn_event("create")

    # When the function handles it
    result = handler(event, FakeContext())

    # Then it applies security, data layout, retention and saved objects, in that order, then answers
    assert network.calls() == CREATE_CALLS
    assert all(r.url.startswith(ENDPOINT) for r in network.requests[:-1])
    answer = network.cfn_response()
    assert answer == {
        "Status": "SUCCESS",
        "Reason": "SUCCESS",
        "PhysicalResourceId": "vpc-mlp-dev-search-4k2hx7bq3mlkq5nq2qjv3c4x3y.eu-west-1.es.amazonaws.com/provisioning",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": {"Roles": "1", "RoleMappings": "2", "IndexTemplates": "1", "IsmPolicies": "1", "SavedObjects": "1"},
    }
    assert result == {"Status": "SUCCESS", "PhysicalResourceId": answer["PhysicalResourceId"]}


def test_create_sends_the_declared_documents_verbatim(network):
    event = cfn_event("create")
    properties = event["ResourceProperties"]

    handler(event, FakeContext())

    reader_arn = "arn:aws:iam::123456789012:role/mlp-dev-dashboards-reader"
    assert _body(network, "PUT", "/_plugins/_security/api/rolesmapping/clickstream_reader") == {
        "backend_roles": [reader_arn]
    }
    assert (
        _body(network, "PUT", "/_plugins/_security/api/roles/clickstream_reader")
        == json.loads(properties["SecurityRoles"])["clickstream_reader"]
    )
    assert (
        _body(network, "PUT", "/_index_template/clickstream") == json.loads(properties["IndexTemplates"])["clickstream"]
    )
    assert _body(network, "PUT", "/_plugins/_security/api/audit/config") == json.loads(properties["AuditConfig"])
    assert _body(network, "POST", "/_dashboards/api/opensearch-dashboards/settings") == {
        "changes": {"defaultIndex": "clickstream"}
    }
    # A new ISM policy is created without a version precondition.
    assert network.request_to("PUT", "/_plugins/_ism/policies/clickstream-retention").url.endswith(
        "/_plugins/_ism/policies/clickstream-retention"
    )


def test_saved_objects_are_uploaded_as_a_multipart_file_to_the_global_tenant(network):
    event = cfn_event("create")
    ndjson = event["ResourceProperties"]["SavedObjects"].encode()

    handler(event, FakeContext())

    upload = network.request_to("POST", "/_dashboards/api/saved_objects/_import")
    content_type, body = ndjson_upload(ndjson)
    assert upload.url == f"{ENDPOINT}/_dashboards/api/saved_objects/_import?overwrite=true"
    assert upload.body == body
    assert upload.headers["Content-Type"] == content_type
    assert content_type.startswith("multipart/form-data; boundary=osd-import-")
    assert upload.headers["osd-xsrf"] == "true"
    assert upload.headers["securitytenant"] == "global"
    assert b'Content-Disposition: form-data; name="file"; filename="saved_objects.ndjson"' in body


def test_opensearch_requests_are_sigv4_signed_for_es_and_the_answer_is_not(network):
    handler(cfn_event("create"), FakeContext())

    for request in network.requests[:-1]:
        authorization = request.headers["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/eu-west-1/es/aws4_request" in authorization
        assert "X-Amz-Date" in request.headers
        assert request.headers["X-Amz-Security-Token"] == "testing"
    answer = network.requests[-1]
    # The pre-signed URL carries its own signature, made without a content type.
    assert "Authorization" not in answer.headers
    assert answer.method == "PUT"
    assert answer.headers["Content-Type"] == ""
    assert answer.url == cfn_event("create")["ResponseURL"]


def test_update_replaces_an_existing_retention_policy_at_its_current_version(network):
    # Given a policy that already exists at seq_no 7 / primary_term 2
    network.script(
        "GET",
        "/_plugins/_ism/policies/clickstream-retention",
        [ok({"_id": "clickstream-retention", "_seq_no": 7, "_primary_term": 2, "policy": {}})],
    )

    handler(cfn_event("update"), FakeContext())

    # Then the PUT names that version, and the physical id stays what it was
    put = network.request_to("PUT", "/_plugins/_ism/policies/clickstream-retention")
    assert put.url == f"{ENDPOINT}/_plugins/_ism/policies/clickstream-retention?if_seq_no=7&if_primary_term=2"
    answer = network.cfn_response()
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == cfn_event("update")["PhysicalResourceId"]


def test_repeating_a_request_sends_the_same_requests(network):
    # Idempotent by construction: every step is a whole-document PUT or an overwrite import.
    handler(cfn_event("create"), FakeContext())
    first = [(r.method, r.url, r.body) for r in network.requests[:-1]]
    network.requests.clear()

    handler(cfn_event("create"), FakeContext())

    assert [(r.method, r.url, r.body) for r in network.requests[:-1]] == first


def test_delete_leaves_the_domain_alone_and_answers_success(network):
    event = cfn_event("delete")

    handler(event, FakeContext())

    assert network.calls() == [("PUT", "<response>")]
    answer = network.cfn_response()
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == event["PhysicalResourceId"]


def test_a_refused_step_fails_the_resource_with_the_domains_reason(network):
    # Given the security plugin refuses the role mapping (e.g. the function is not the master user)
    network.script(
        "PUT",
        "/_plugins/_security/api/rolesmapping/clickstream_reader",
        [HttpResponse(403, b'{"status":"FORBIDDEN","message":"no permissions for [] and User [name=x]"}')],
    )

    handler(cfn_event("create"), FakeContext())

    # Then nothing after it is attempted, and CloudFormation learns why
    assert network.calls() == [
        ("PUT", "/_plugins/_security/api/roles/clickstream_reader"),
        ("PUT", "/_plugins/_security/api/rolesmapping/clickstream_reader"),
        ("PUT", "<response>"),
    ]
    answer = network.cfn_response()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("role mapping clickstream_reader: HTTP 403: ")
    assert "FORBIDDEN" in answer["Reason"]
    # A failed Create still names a physical id, which the rollback's Delete will receive.
    assert answer["PhysicalResourceId"] == "SearchProvisionerProvisioning8B396A91/not-created"


def test_a_failed_update_keeps_the_physical_id(network):
    network.script("PUT", "/_index_template/clickstream", [HttpResponse(400, b'{"error":"mapper_parsing_exception"}')])

    handler(cfn_event("update"), FakeContext())

    answer = network.cfn_response()
    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == cfn_event("update")["PhysicalResourceId"]
    assert "index template clickstream: HTTP 400" in answer["Reason"]


def test_an_import_with_errors_fails_with_the_objects_named(network):
    network.script(
        "POST",
        "/_dashboards/api/saved_objects/_import",
        [
            ok(
                {
                    "success": False,
                    "successCount": 0,
                    "errors": [{"type": "visualization", "id": "top-pages", "error": {"type": "missing_references"}}],
                }
            )
        ],
    )

    handler(cfn_event("create"), FakeContext())

    answer = network.cfn_response()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "saved objects import: HTTP 200: rejected: visualization/top-pages: missing_references"


def test_a_domain_still_warming_up_is_retried_with_backoff():
    # Given a domain that answers 503 twice and drops one connection before it accepts
    network = FakeNetwork()
    path = "/_plugins/_security/api/roles/clickstream_reader"
    network.script("PUT", path, [HttpResponse(503, b"warming up"), ConnectionResetError("reset"), ok()])
    slept: list[float] = []
    request = parse_request(cfn_event("create"))

    outcome = handle(request, transport=network, config=CONFIG, deadline=1_000.0, clock=lambda: 0.0, sleep=slept.append)

    assert outcome.status == "SUCCESS"
    assert [c for c in network.calls() if c == ("PUT", path)] == [("PUT", path)] * 3
    assert slept == [2.0, 4.0]


def test_retries_stop_at_max_attempts_with_the_last_answer():
    network = FakeNetwork()
    path = "/_plugins/_security/api/roles/clickstream_reader"
    network.script("PUT", path, [HttpResponse(503, b"busy")] * 10)

    outcome = handle(
        parse_request(cfn_event("create")),
        transport=network,
        config=CONFIG,
        deadline=1_000.0,
        clock=lambda: 0.0,
        sleep=lambda _: None,
    )

    assert outcome.status == "FAILED"
    assert len(network.requests) == CONFIG.max_attempts
    assert outcome.reason == "security role clickstream_reader: gave up after retries; last answer: HTTP 503: busy"


def test_no_attempt_starts_after_the_deadline():
    # Given a clock already past the point where CloudFormation must have its answer
    network = FakeNetwork()

    outcome = handle(
        parse_request(cfn_event("create")),
        transport=network,
        config=CONFIG,
        deadline=100.0,
        clock=lambda: 100.0,
        sleep=lambda _: None,
    )

    assert network.requests == []
    assert outcome.status == "FAILED"
    assert "gave up" in outcome.reason


def test_request_timeouts_never_outlast_the_deadline():
    network = FakeNetwork()

    handle(
        parse_request(cfn_event("create")),
        transport=network,
        config=CONFIG,
        deadline=12.0,
        clock=lambda: 0.0,
        sleep=lambda _: None,
    )

    assert network.timeouts and max(network.timeouts) == 12.0


@pytest.mark.parametrize(
    ("prop", "value", "reason"),
    [
        ("DomainEndpoint", "https://example.com", "DomainEndpoint must be the domain's host name"),
        ("SecurityRoles", "{not json", "SecurityRoles is not JSON"),
        ("RoleMappings", '["a"]', "RoleMappings must be a JSON object of name -> document"),
    ],
)
def test_malformed_properties_fail_without_touching_the_domain(network, prop, value, reason):
    event = cfn_event("create")
    event["ResourceProperties"][prop] = value

    handler(event, FakeContext())

    assert network.calls() == [("PUT", "<response>")]
    answer = network.cfn_response()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(reason)


def test_an_unexpected_crash_is_still_answered(network, monkeypatch):
    def explode(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(handler_module, "provision", explode)

    handler(cfn_event("create"), FakeContext())

    answer = network.cfn_response()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "unexpected ZeroDivisionError: boom"


def test_an_event_that_is_not_a_custom_resource_request_is_refused(network):
    with pytest.raises(ValueError, match="ResponseURL"):
        handler({"RequestType": "Create", "StackId": "x"}, FakeContext())
    assert network.requests == []


def test_a_long_reason_is_cut_to_fit_the_response_limit():
    # CloudFormation refuses responses over 4 KiB; the reason is the only part that can grow.
    request = parse_request(cfn_event("create"))

    answer = response_request(request, Outcome(status="FAILED", physical_resource_id="p", reason="x" * 10_000))

    document = json.loads(answer.body)
    assert len(answer.body) < 4096
    assert document["Reason"] == "x" * (MAX_REASON_CHARS - 3) + "..."
    assert answer.headers["Content-Length"] == str(len(answer.body))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "AWS_REGION is not set"),
        ({"AWS_REGION": "eu-west-1", "MAX_ATTEMPTS": "many"}, "not a number"),
        ({"AWS_REGION": "eu-west-1", "HTTP_TIMEOUT_SECONDS": "0"}, "HTTP_TIMEOUT_SECONDS > 0"),
    ],
)
def test_settings_refuse_a_misconfigured_function(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
