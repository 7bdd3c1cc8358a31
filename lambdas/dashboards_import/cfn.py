"""The CloudFormation custom resource protocol: the request CloudFormation sends and the answer
it waits for (a PUT of a JSON document to the pre-signed ``ResponseURL``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lambdas.dashboards_import.transport import HttpRequest

RequestType = Literal["Create", "Update", "Delete"]
Status = Literal["SUCCESS", "FAILED"]
_REQUEST_TYPES = ("Create", "Update", "Delete")
# The whole response must stay under 4 KiB; the reason is the only part that can grow.
MAX_REASON_CHARS = 2000


class MalformedRequestError(ValueError):
    """The event is not a CloudFormation custom resource request."""


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


def response_request(request: CustomResourceRequest, outcome: Outcome) -> HttpRequest:
    """The PUT that tells CloudFormation how the request ended.

    The pre-signed URL was signed without a content type, so the request must send an empty one.
    """
    reason = outcome.reason
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    document = {
        "Status": outcome.status,
        "Reason": reason or outcome.status,
        "PhysicalResourceId": outcome.physical_resource_id,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": False,
        "Data": dict(outcome.data),
    }
    body = json.dumps(document).encode("utf-8")
    return HttpRequest(
        method="PUT",
        url=request.response_url,
        headers={"Content-Type": "", "Content-Length": str(len(body))},
        body=body,
    )
