"""Target-tracking autoscaling of an instance endpoint's variant (Application Auto Scaling).

Attached by the deployer, not by CloudFormation: the endpoint exists only after the first
approved model is deployed (RegisterScalableTarget fails for a variant that does not exist), and
its variant comes back on every deployment. Registering is idempotent (an upsert), and the calls
are made only when the registered bounds or policy differ from the settings, so a replay
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdas.model_deployer.plan import scaling_policy_name, scaling_resource_id
from lambdas.model_deployer.settings import Settings

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"


class Autoscaling:
    def __init__(self, client_factory: Callable[[], Any], settings: Settings) -> None:
        self._client = client_factory
        self._settings = settings

    def _target(self) -> dict[str, Any] | None:
        targets = self._client().describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[scaling_resource_id(self._settings)], ScalableDimension=DIMENSION
        )["ScalableTargets"]
        return targets[0] if targets else None

    def policy_configuration(self) -> dict[str, Any]:
        spec = self._settings.instances
        assert spec is not None
        return {
            "TargetValue": float(spec.invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": spec.scale_in_cooldown_seconds,
            "ScaleOutCooldown": spec.scale_out_cooldown_seconds,
        }

    def ensure(self) -> list[str]:
        """Register the variant (min/max) and its policy where they differ; returns what changed."""
        spec = self._settings.instances
        assert spec is not None
        resource_id = scaling_resource_id(self._settings)
        changes: list[str] = []
        target = self._target()
        if target is None or (target["MinCapacity"], target["MaxCapacity"]) != (spec.min_instances, spec.max_instances):
            self._client().register_scalable_target(
                ServiceNamespace=NAMESPACE,
                ResourceId=resource_id,
                ScalableDimension=DIMENSION,
                MinCapacity=spec.min_instances,
                MaxCapacity=spec.max_instances,
            )
            changes.append("scalable_target")
        name = scaling_policy_name(self._settings)
        policies = self._client().describe_scaling_policies(
            ServiceNamespace=NAMESPACE, ResourceId=resource_id, ScalableDimension=DIMENSION, PolicyNames=[name]
        )["ScalingPolicies"]
        wanted = self.policy_configuration()
        current = policies[0].get("TargetTrackingScalingPolicyConfiguration", {}) if policies else {}
        if {key: current.get(key) for key in wanted} != wanted:
            self._client().put_scaling_policy(
                PolicyName=name,
                ServiceNamespace=NAMESPACE,
                ResourceId=resource_id,
                ScalableDimension=DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration=wanted,
            )
            changes.append("scaling_policy")
        return changes

    def release_for_instance_type_change(self) -> bool:
        """SageMaker refuses an update that changes the instance type of a variant registered for
        autoscaling; deregister first (the next run registers again once in service)."""
        if self._target() is None:
            return False
        self._client().deregister_scalable_target(
            ServiceNamespace=NAMESPACE, ResourceId=scaling_resource_id(self._settings), ScalableDimension=DIMENSION
        )
        return True
