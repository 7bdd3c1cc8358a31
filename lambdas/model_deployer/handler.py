"""Lambda entry point: EventBridge events (model package and endpoint state changes, the schedule).

Returns the outcome for the logs; raises only when a person must act (the endpoint failed, a model
archive lacks its transform), so that the error alarm and the on-failure queue see it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from typing import Any

from lambdas.model_deployer import clients
from lambdas.model_deployer.artifacts import ServingArtifactStore
from lambdas.model_deployer.deployer import Deployer
from lambdas.model_deployer.events import parse_event
from lambdas.model_deployer.registry import ModelRegistry
from lambdas.model_deployer.scaling import Autoscaling
from lambdas.model_deployer.settings import get_settings
from lambdas.model_deployer.state import StateStore

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


@functools.cache
def deployer() -> Deployer:
    settings = get_settings()
    return Deployer(
        settings=settings,
        sagemaker=clients.sagemaker,
        registry=ModelRegistry(clients.sagemaker, settings.model_package_group),
        artifacts=ServingArtifactStore(
            clients.s3, bucket=settings.artifacts_bucket, prefix=settings.serving_models_prefix
        ),
        autoscaling=Autoscaling(clients.autoscaling, settings),
        state=StateStore(clients.ssm, settings.manifest_parameter),
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = dataclasses.asdict(deployer().reconcile(parse_event(event)))
    logger.info("deployer: %s", json.dumps(outcome))
    return outcome
