"""The CloudFormation custom resource protocol: the request CloudFormation sends, and the response
document it waits for on the pre-signed ``ResponseURL``.

Shared by every custom resource function (database migrations, OpenSearch Dashboards import): how
each one PUTs the document is its own business (urllib, a signed transport...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

RequestType = Literal["Create", "Update", "Delete"]
Status = Literal["SUCCESS", "FAILED"]
_REQUEST_TYPES: tuple[RequestType, ...] = ("Create", "Update", "Delete")
# The whole response must stay under 4 KiB; the reason is the only part that can grow.
MAX_REASON_CHARS = 2000


class MalformedRequestError(ValueError):
    """The event is not a CloudFormation custom resource request (nobody can be answered)."""


@dataclass(frozen=True)
class CustomResourceRequest:
    request_type: RequestType
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    resource_type: str
    physical_resource_id: str | None  # absent on Create
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class Outcome:
    status: Status
    physical_resource_id: str
    reason: str = ""
    data: Mapping[str, str] = field(default_factory=dict)


def parse_request(event: Mapping[str, Any]) -> CustomResourceRequest:
    """The request as CloudFormation sends it (every property value arrives as a string)."""
    try:
        request_type = event["RequestType"]
        if request_type not in _REQUEST_TYPES:
            raise MalformedRequestError(f"unknown RequestType {request_type!r}")
        return CustomResourceRequest(
            request_type=request_type,
            response_url=event["ResponseURL"],
            stack_id=event["StackId"],
            request_id=event["RequestId"],
            logical_resource_id=event["LogicalResourceId"],
            resource_type=event.get("ResourceType", ""),
            physical_resource_id=event.get("PhysicalResourceId"),
            properties=event.get("ResourceProperties") or {},
        )
    except KeyError as missing:
        raise MalformedRequestError(f"not a custom resource request: {missing} is missing") from None


def response_body(request: CustomResourceRequest, outcome: Outcome) -> bytes:
    """The JSON document that tells CloudFormation how the request ended (under its 4 KiB limit)."""
    reason = outcome.reason or outcome.status
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    document = {
        "Status": outcome.status,
        "Reason": reason,
        "PhysicalResourceId": outcome.physical_resource_id,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": False,
        "Data": dict(outcome.data),
    }
    return json.dumps(document).encode("utf-8")
