"""CloudFormation custom resource: provision the OpenSearch domain (security roles and mappings,
index template, retention, Dashboards saved objects).

Thin: parse the request, run the provisioning (domain code in ``provisioning``), answer
CloudFormation on the pre-signed URL. Every path ends with an answer, success or failure with its
reason, so a stack never waits an hour for a function that gave up.

Delete leaves the domain as it is. The domain is retained on stack deletion, and when the resource
is replaced (new physical id) CloudFormation deletes the *old* resource after the new one was
created: a Delete that removed saved objects or roles would remove what the update just wrote.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.session import get_session

from lambdas.dashboards_import.cfn import response_request
from lambdas.dashboards_import.provisioning import (
    OpenSearchClient,
    ProvisioningError,
    ProvisioningSpec,
    SpecError,
    provision,
)
from lambdas.dashboards_import.settings import Settings, settings
from lambdas.dashboards_import.signing import SignedTransport, SigV4Signer
from lambdas.dashboards_import.transport import Transport, UrllibTransport
from platform_core.custom_resource import CustomResourceRequest, MalformedRequestError, Outcome, parse_request

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

_RESPONSE_ATTEMPTS = 3


@functools.cache
def _network() -> Transport:
    """The only object that opens connections (replaced by a recording fake in tests)."""
    return UrllibTransport()


@functools.cache
def _signer(region: str) -> SigV4Signer:
    # Refreshable credentials of the function's role (the domain's master user).
    credentials = get_session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials in the environment")
    return SigV4Signer(credentials, region)


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    config = settings()
    try:
        request = parse_request(event)
    except MalformedRequestError:
        # Without a ResponseURL nobody can be answered; fail loudly in the function's log.
        logger.exception("not a CloudFormation custom resource request")
        raise
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - config.safety_margin_seconds
    opensearch = SignedTransport(_network(), _signer(config.region))
    outcome = handle(request, transport=opensearch, config=config, deadline=deadline)
    _answer(request, outcome, config)
    return {"Status": outcome.status, "PhysicalResourceId": outcome.physical_resource_id}


def handle(
    request: CustomResourceRequest,
    *,
    transport: Transport,
    config: Settings,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """What to answer CloudFormation; never raises."""
    if request.request_type == "Delete":
        return Outcome(
            status="SUCCESS",
            physical_resource_id=request.physical_resource_id or request.logical_resource_id,
            reason="Left in place: the domain is retained and a replacement must not undo its successor",
        )
    try:
        spec = ProvisioningSpec.from_properties(request.properties)
        client = OpenSearchClient(
            spec.endpoint,
            transport,
            timeout=config.http_timeout_seconds,
            max_attempts=config.max_attempts,
            deadline=deadline,
            clock=clock,
            sleep=sleep,
        )
        report = provision(spec, client)
    except (SpecError, ProvisioningError) as error:
        logger.error("provisioning failed", extra={"request_type": request.request_type, "reason": str(error)})
        return _failed(request, str(error))
    except Exception as error:  # anything unexpected still gets an answer instead of a one-hour hang
        logger.exception("provisioning crashed")
        return _failed(request, f"unexpected {type(error).__name__}: {error}")
    logger.info("provisioned", extra={"request_type": request.request_type, **report.as_data()})
    return Outcome(status="SUCCESS", physical_resource_id=physical_id(spec), data=report.as_data())


def physical_id(spec: ProvisioningSpec) -> str:
    """Stable per domain: updates of the content keep the resource, a new domain replaces it."""
    return f"{spec.endpoint}/provisioning"


def _failed(request: CustomResourceRequest, reason: str) -> Outcome:
    # An Update that fails keeps the current id: a new id would make CloudFormation believe the
    # resource was replaced and send a Delete for the old one.
    return Outcome(
        status="FAILED",
        physical_resource_id=request.physical_resource_id or f"{request.logical_resource_id}/not-created",
        reason=reason,
    )


def _answer(request: CustomResourceRequest, outcome: Outcome, config: Settings) -> None:
    answer = response_request(request, outcome)
    for attempt in range(1, _RESPONSE_ATTEMPTS + 1):
        try:
            response = _network().send(answer, timeout=config.http_timeout_seconds)
        except OSError:
            logger.exception("could not reach the CloudFormation response URL", extra={"attempt": attempt})
        else:
            if response.ok:
                return
            logger.error(
                "CloudFormation refused the response",
                extra={"attempt": attempt, "status": response.status, "body": response.excerpt()},
            )
        time.sleep(attempt)
    raise RuntimeError("CloudFormation was not told the outcome; the stack waits for its timeout")
