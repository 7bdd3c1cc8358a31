"""CloudFormation custom resource: bring the source database's schema up to date on deploy.

Thin: parse the request, run the migrations (domain code in ``migrations``, Data API adapter in
``data_api``), answer CloudFormation on the pre-signed URL. Every path ends with an answer, success
or failure with its reason, so a stack never waits an hour for a function that gave up.

Delete changes nothing: the database is retained, and migrations are never undone (a stack
rollback after a successful migration leaves it applied; the next deploy sees it recorded).
"""

from __future__ import annotations

import functools
import logging
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.db_migrator.data_api import DataApiDatabase
from lambdas.db_migrator.migrations import MigrationError, migrate
from lambdas.db_migrator.properties import parse_properties
from lambdas.db_migrator.settings import Settings, SettingsError
from platform_core.custom_resource import (
    CustomResourceRequest,
    MalformedRequestError,
    Outcome,
    parse_request,
    response_body,
)

logger = logging.getLogger()
logger.setLevel(logging.INFO)

_RESPONSE_ATTEMPTS = 3


class Responder(Protocol):
    def put(self, url: str, body: bytes) -> None: ...


class UrllibResponder:
    """PUTs the response document; the pre-signed URL was signed without a content type."""

    def put(self, url: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 (the https URL CloudFormation signed)
            url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def rds_data_client() -> Any:
    import boto3

    return boto3.client("rds-data")


@functools.cache
def responder() -> Responder:
    return UrllibResponder()


def reset() -> None:
    """Forget settings and clients (tests change them between cases)."""
    for cached in (settings, rds_data_client, responder):
        cached.cache_clear()


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        request = parse_request(event)
    except MalformedRequestError:
        # Without a ResponseURL nobody can be answered; fail loudly in the function's log.
        logger.exception("not a CloudFormation custom resource request")
        raise
    outcome = handle(request, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    logger.info("%s %s: %s %s", request.request_type, request.logical_resource_id, outcome.status, outcome.reason)
    _answer(request, outcome)
    return {"Status": outcome.status, "PhysicalResourceId": outcome.physical_resource_id}


def handle(request: CustomResourceRequest, *, seconds_left: Callable[[], float]) -> Outcome:
    fallback_id = request.physical_resource_id or f"{request.logical_resource_id}-schema-migrations"
    if request.request_type == "Delete":
        return Outcome("SUCCESS", fallback_id, reason="the database keeps its schema: migrations are never undone")
    try:
        resource = parse_properties(request.properties)
    except MigrationError as error:
        return Outcome("FAILED", fallback_id, reason=str(error))
    physical_id = resource.physical_resource_id
    try:
        database = DataApiDatabase(
            rds_data_client,
            resource_arn=resource.cluster_arn,
            secret_arn=resource.secret_arn,
            database=resource.database,
        )
        report = migrate(
            database,
            resource.migrations,
            seconds_left=seconds_left,
            seconds_per_migration=settings().seconds_per_migration,
        )
    except (MigrationError, SettingsError) as error:
        return Outcome("FAILED", physical_id, reason=str(error))
    except (ClientError, BotoCoreError) as error:
        return Outcome("FAILED", physical_id, reason=f"the Data API refused a request: {error}")
    applied = ",".join(str(v) for v in report.applied)
    return Outcome(
        "SUCCESS",
        physical_id,
        reason=f"applied [{applied}], already applied {list(report.already_applied)}",
        data={"AppliedVersions": applied, "LatestVersion": str(report.latest_version)},
    )


def _answer(request: CustomResourceRequest, outcome: Outcome) -> None:
    body = response_body(request, outcome)
    for attempt in range(1, _RESPONSE_ATTEMPTS + 1):
        try:
            responder().put(request.response_url, body)
            return
        except OSError:
            if attempt == _RESPONSE_ATTEMPTS:
                raise
            logger.warning("answering CloudFormation failed (attempt %d), retrying", attempt, exc_info=True)
            time.sleep(attempt)
