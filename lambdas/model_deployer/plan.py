"""What a release of a model package looks like in SageMaker: names and request bodies (pure).

A release is one approved package version served with one set of serving settings. Its model
and its endpoint configuration share one deterministic name::

    <endpoint>-v<package version>-<fingerprint of the serving settings>

so a replayed event computes the same name and finds everything in place, while a change of
settings (instance type, serverless size, capture, role, key) makes a new release of the same
version. Instance counts are not part of the name: they only seed a new fleet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from lambdas.model_deployer.settings import Settings

JSON = "application/json"


@dataclass(frozen=True)
class ApprovedPackage:
    arn: str
    group: str
    version: int
    model_data_url: str | None  # the model.tar.gz of the package's (first) container


@dataclass(frozen=True)
class Release:
    package: ApprovedPackage
    name: str  # of both the SageMaker model and the endpoint configuration


def fingerprint(settings: Settings) -> str:
    """Eight hex digits over every setting that changes what a release deploys."""
    material = {
        "role": settings.execution_role_arn,
        "key": settings.kms_key_arn,
        "variant": settings.variant_name,
        "serverless": asdict(settings.serverless) if settings.serverless else None,
        "instance_type": settings.instances.instance_type if settings.instances else None,
        "capture": asdict(settings.capture) if settings.capture else None,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:8]


def release_of(package: ApprovedPackage, settings: Settings) -> Release:
    return Release(package=package, name=f"{settings.endpoint_name}-v{package.version}-{fingerprint(settings)}")


def _tags(release: Release) -> list[dict[str, str]]:
    return [
        {"Key": "model-package-group", "Value": release.package.group},
        {"Key": "model-package-version", "Value": str(release.package.version)},
    ]


def create_model_request(release: Release, settings: Settings) -> dict[str, Any]:
    """The model *from the package*: SageMaker takes image and artifact from the registry entry."""
    return {
        "ModelName": release.name,
        "ExecutionRoleArn": settings.execution_role_arn,
        "Containers": [{"ModelPackageName": release.package.arn}],
        "Tags": _tags(release),
    }


def endpoint_config_request(release: Release, settings: Settings, *, initial_instances: int) -> dict[str, Any]:
    """Serverless (no capture, no volume key: neither exists for serverless) or instances with data
    capture to the raw bucket, encrypted with the lake key."""
    variant: dict[str, Any] = {"VariantName": settings.variant_name, "ModelName": release.name}
    request: dict[str, Any] = {"EndpointConfigName": release.name, "Tags": _tags(release)}
    if settings.serverless is not None:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": settings.serverless.memory_mb,
            "MaxConcurrency": settings.serverless.max_concurrency,
        }
    else:
        assert settings.instances is not None
        variant.update(
            InstanceType=settings.instances.instance_type,
            InitialInstanceCount=initial_instances,
            InitialVariantWeight=1.0,
        )
        request["KmsKeyId"] = settings.kms_key_arn
        if settings.capture is not None:
            request["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": settings.capture.sampling_percent,
                "DestinationS3Uri": settings.capture.destination_s3_uri,
                "KmsKeyId": settings.kms_key_arn,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                # JSON bodies are captured as text (encoding JSON), readable without decoding.
                "CaptureContentTypeHeader": {"JsonContentTypes": [JSON]},
            }
    request["ProductionVariants"] = [variant]
    return request


def initial_instance_count(settings: Settings, current_desired: int | None) -> int:
    """A new fleet starts as large as the one it replaces (autoscaling may have grown it), within
    the configured bounds, so a deployment at peak traffic does not shrink capacity."""
    assert settings.instances is not None
    wanted = current_desired if current_desired is not None else settings.instances.min_instances
    return max(settings.instances.min_instances, min(settings.instances.max_instances, wanted))


def deployment_config(settings: Settings) -> dict[str, Any] | None:
    """Blue/green with a canary and alarm-based rollback, for instance endpoints.

    Serverless variants have no fleet to size a canary or a linear step in, so they get no policy:
    SageMaker then swaps all traffic at once to the new capacity once it is ready (still without
    downtime), with no baking period and no alarm rollback.
    """
    if settings.serverless is not None:
        return None
    rollout = settings.rollout
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent},
                "WaitIntervalInSeconds": rollout.canary_wait_seconds,
            },
            "TerminationWaitInSeconds": rollout.final_bake_seconds,
            "MaximumExecutionTimeoutInSeconds": rollout.timeout_seconds,
        }
    }
    if rollout.rollback_alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in rollout.rollback_alarms]}
    return config


def scaling_resource_id(settings: Settings) -> str:
    return f"endpoint/{settings.endpoint_name}/variant/{settings.variant_name}"


def scaling_policy_name(settings: Settings) -> str:
    return f"{settings.endpoint_name}-invocations-per-instance"
