"""The deployer's settings, read once from its environment variables into typed specs."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from platform_core.config import PlatformConfig
from platform_core.names import SERVING_MODELS_PREFIX, Names


@dataclass(frozen=True)
class ServerlessSpec:
    memory_mb: int
    max_concurrency: int


@dataclass(frozen=True)
class InstanceSpec:
    instance_type: str
    min_instances: int
    max_instances: int
    invocations_per_instance: int  # target tracking: invocations per instance per minute
    scale_in_cooldown_seconds: int
    scale_out_cooldown_seconds: int


@dataclass(frozen=True)
class RolloutSpec:
    canary_percent: int
    canary_wait_seconds: int
    final_bake_seconds: int
    timeout_seconds: int
    rollback_alarms: tuple[str, ...]


@dataclass(frozen=True)
class CaptureSpec:
    destination_s3_uri: str
    sampling_percent: int


@dataclass(frozen=True)
class Settings:
    model_package_group: str  # MODEL_PACKAGE_GROUP
    endpoint_name: str  # ENDPOINT_NAME
    variant_name: str  # VARIANT_NAME
    execution_role_arn: str  # EXECUTION_ROLE_ARN: the role SageMaker runs the model with
    kms_key_arn: str  # KMS_KEY_ARN: instance volumes and captured data
    artifacts_bucket: str  # ARTIFACTS_BUCKET: where each version's transform and metadata go
    serving_models_prefix: str  # SERVING_MODELS_PREFIX
    manifest_parameter: str  # MANIFEST_PARAMETER
    serverless: ServerlessSpec | None  # SERVERLESS=true + SERVERLESS_MEMORY_MB, SERVERLESS_MAX_CONCURRENCY
    instances: InstanceSpec | None  # otherwise INSTANCE_TYPE, MIN_/MAX_INSTANCES, INVOCATIONS_PER_INSTANCE...
    rollout: RolloutSpec  # CANARY_PERCENT, CANARY_WAIT_SECONDS, FINAL_BAKE_SECONDS, ..., ROLLBACK_ALARMS
    capture: CaptureSpec | None  # CAPTURE_S3_URI (instances only), CAPTURE_PERCENT

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        required = (
            "MODEL_PACKAGE_GROUP",
            "ENDPOINT_NAME",
            "EXECUTION_ROLE_ARN",
            "KMS_KEY_ARN",
            "ARTIFACTS_BUCKET",
            "MANIFEST_PARAMETER",
        )
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        serverless = env.get("SERVERLESS", "false").lower() == "true"
        alarms = tuple(a for a in env.get("ROLLBACK_ALARMS", "").split(",") if a)
        return cls(
            model_package_group=env["MODEL_PACKAGE_GROUP"],
            endpoint_name=env["ENDPOINT_NAME"],
            variant_name=env.get("VARIANT_NAME") or "AllTraffic",
            execution_role_arn=env["EXECUTION_ROLE_ARN"],
            kms_key_arn=env["KMS_KEY_ARN"],
            artifacts_bucket=env["ARTIFACTS_BUCKET"],
            serving_models_prefix=env.get("SERVING_MODELS_PREFIX", "serving/models/"),
            manifest_parameter=env["MANIFEST_PARAMETER"],
            serverless=(
                ServerlessSpec(
                    int(env.get("SERVERLESS_MEMORY_MB", "2048")), int(env.get("SERVERLESS_MAX_CONCURRENCY", "5"))
                )
                if serverless
                else None
            ),
            instances=None
            if serverless
            else InstanceSpec(
                instance_type=env.get("INSTANCE_TYPE", "ml.m5.large"),
                min_instances=int(env.get("MIN_INSTANCES", "1")),
                max_instances=int(env.get("MAX_INSTANCES", "1")),
                invocations_per_instance=int(env.get("INVOCATIONS_PER_INSTANCE", "1000")),
                scale_in_cooldown_seconds=int(env.get("SCALE_IN_COOLDOWN_SECONDS", "600")),
                scale_out_cooldown_seconds=int(env.get("SCALE_OUT_COOLDOWN_SECONDS", "60")),
            ),
            rollout=RolloutSpec(
                canary_percent=int(env.get("CANARY_PERCENT", "10")),
                canary_wait_seconds=int(env.get("CANARY_WAIT_SECONDS", "600")),
                final_bake_seconds=int(env.get("FINAL_BAKE_SECONDS", "600")),
                timeout_seconds=int(env.get("DEPLOYMENT_TIMEOUT_SECONDS", "3600")),
                rollback_alarms=alarms,
            ),
            capture=(
                CaptureSpec(env["CAPTURE_S3_URI"], int(env.get("CAPTURE_PERCENT", "100")))
                if env.get("CAPTURE_S3_URI") and not serverless
                else None
            ),
        )


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env(os.environ)


def environment(
    config: PlatformConfig,
    *,
    execution_role_arn: str,
    kms_key_arn: str,
    artifacts_bucket: str,
    capture_s3_uri: str,
) -> dict[str, str]:
    """The function's environment for one platform configuration (the stack sets exactly this)."""
    names = Names(config)
    serving = config.serving
    env = {
        "MODEL_PACKAGE_GROUP": names.model_package_group,
        "ENDPOINT_NAME": names.inference_endpoint,
        "VARIANT_NAME": names.inference_variant,
        "EXECUTION_ROLE_ARN": execution_role_arn,
        "KMS_KEY_ARN": kms_key_arn,
        "ARTIFACTS_BUCKET": artifacts_bucket,
        "SERVING_MODELS_PREFIX": SERVING_MODELS_PREFIX,
        "MANIFEST_PARAMETER": names.serving_manifest_parameter,
        "SERVERLESS": "true" if serving.serverless else "false",
    }
    if serving.serverless:
        env.update(
            SERVERLESS_MEMORY_MB=str(serving.serverless_memory_mb),
            SERVERLESS_MAX_CONCURRENCY=str(serving.serverless_max_concurrency),
        )
        return env
    env.update(
        INSTANCE_TYPE=serving.instance_type,
        MIN_INSTANCES=str(serving.min_instances),
        MAX_INSTANCES=str(serving.max_instances),
        INVOCATIONS_PER_INSTANCE=str(serving.invocations_per_instance_target),
        SCALE_IN_COOLDOWN_SECONDS=str(serving.scale_in_cooldown_seconds),
        SCALE_OUT_COOLDOWN_SECONDS=str(serving.scale_out_cooldown_seconds),
        CANARY_PERCENT=str(serving.canary_percent),
        CANARY_WAIT_SECONDS=str(serving.canary_wait_seconds),
        FINAL_BAKE_SECONDS=str(serving.final_bake_seconds),
        DEPLOYMENT_TIMEOUT_SECONDS=str(serving.deployment_timeout_seconds),
        ROLLBACK_ALARMS=",".join(names.endpoint_rollback_alarms),
        CAPTURE_S3_URI=capture_s3_uri,
        CAPTURE_PERCENT=str(serving.data_capture_percent),
    )
    return env
