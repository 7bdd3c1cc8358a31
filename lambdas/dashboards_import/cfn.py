"""The answer to CloudFormation as this function sends it: a PUT through its own HTTP transport."""

from __future__ import annotations

from lambdas.dashboards_import.transport import HttpRequest
from platform_core.custom_resource import CustomResourceRequest, Outcome, response_body


def response_request(request: CustomResourceRequest, outcome: Outcome) -> HttpRequest:
    """The PUT that tells CloudFormation how the request ended.

    The pre-signed URL was signed without a content type, so the request must send an empty one.
    """
    body = response_body(request, outcome)
    return HttpRequest(
        method="PUT",
        url=request.response_url,
        headers={"Content-Type": "", "Content-Length": str(len(body))},
        body=body,
    )
