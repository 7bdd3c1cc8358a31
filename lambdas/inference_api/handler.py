"""Lambda entry point: API Gateway REST proxy event in, proxy response out.

Status codes: 200 scored; 400 bad input (reason in ``error``); 404 unknown user; 503 the features
or the model did not answer in time, with the fallback score (``fallback: true``, see
``scoring.py``) and ``Retry-After``.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import timedelta
from typing import Any

from lambdas.inference_api import clients
from lambdas.inference_api.capture import S3CaptureWriter
from lambdas.inference_api.deployed_model import DeployedModelSource
from lambdas.inference_api.endpoint import EndpointScorer
from lambdas.inference_api.features import FeatureStoreReader, OnlineStore
from lambdas.inference_api.scoring import ChurnScorer, Fallback, UnknownUser
from lambdas.inference_api.settings import get_settings
from lambdas.inference_api.user_request import BadRequest, user_id_from_event
from platform_core.schemas.features import FEATURE_GROUPS

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

RETRY_AFTER_SECONDS = 5


@functools.cache
def online_store() -> OnlineStore:
    """The online store reader (tests and the local runtime swap in an in-memory store)."""
    return FeatureStoreReader(clients.featurestore_runtime)


@functools.cache
def scorer() -> ChurnScorer:
    settings = get_settings()
    capture = (
        S3CaptureWriter(
            clients.s3,
            bucket=settings.capture_bucket,
            endpoint_name=settings.endpoint_name,
            variant_name=settings.variant_name,
        )
        if settings.capture_bucket
        else None
    )
    return ChurnScorer(
        store=online_store(),
        groups={group: settings.feature_groups[group.name] for group in FEATURE_GROUPS},
        endpoint=EndpointScorer(clients.sagemaker_runtime, settings.endpoint_name),
        deployed=DeployedModelSource(
            ssm=clients.ssm,
            s3=clients.s3,
            parameter_name=settings.manifest_parameter,
            cache_seconds=settings.manifest_cache_seconds,
        ),
        capture=capture,
        max_feature_age=timedelta(days=settings.max_feature_age_days),
    )


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _request_id(event: dict[str, Any], context: Any) -> str:
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id or getattr(context, "aws_request_id", "unknown"))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = _request_id(event, context)
    try:
        user_id = user_id_from_event(event)
    except BadRequest as error:
        return _response(400, {"error": str(error), "inference_id": request_id})
    try:
        outcome = scorer().score(user_id, request_id)
    except UnknownUser as error:
        return _response(404, {"error": str(error), "inference_id": request_id})
    if isinstance(outcome, Fallback):
        logger.warning("fallback for %s: %s", request_id, outcome.reason)
        return _response(503, outcome.body(), {"Retry-After": str(RETRY_AFTER_SECONDS)})
    return _response(200, outcome.body())
