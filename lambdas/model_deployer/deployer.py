"""Reconciliation: make the endpoint serve the latest approved model package, one step at a time.

Every trigger (a registry event, an endpoint state change, the schedule) runs the same steps:

1. ignore events of another model package group or endpoint;
2. read the registry: the release to serve is the latest *currently approved* version
   (``registry.py``), whatever the event said; nothing approved -> nothing to do;
3. look at the endpoint and take the one step its state allows:

   ========================================  ============================================================
   endpoint                                  step
   ========================================  ============================================================
   absent                                    create the model (from the package), the endpoint config and
                                             the endpoint
   Creating / Updating / RollingBack / ...   nothing now: the endpoint state change event (or the
                                             schedule) brings the deployer back
   InService, serving the release            attach autoscaling (instances), publish the release's
                                             transform/metadata and the serving manifest, where missing
   InService, serving another release        blue/green update to the release, unless this very release
                                             was already tried and rolled back (then nothing: a person or
                                             a newer approval decides)
   Failed / OutOfService / ...               raise :class:`EndpointNotServing` (a person must look)
   ========================================  ============================================================

Every step is keyed by the release's deterministic name (``plan.py``), so running it twice does
what running it once did: replays and duplicate events change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambdas.model_deployer.artifacts import ServingArtifactStore
from lambdas.model_deployer.events import EndpointChange, PackageChange, Trigger, Unrecognised
from lambdas.model_deployer.plan import (
    Release,
    create_model_request,
    deployment_config,
    endpoint_config_request,
    initial_instance_count,
    release_of,
)
from lambdas.model_deployer.registry import ModelRegistry
from lambdas.model_deployer.scaling import Autoscaling
from lambdas.model_deployer.settings import Settings
from lambdas.model_deployer.state import DeploymentState, StateStore

logger = logging.getLogger(__name__)

IN_SERVICE = "InService"
BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


class EndpointNotServing(RuntimeError):
    """The endpoint is Failed, OutOfService or stuck after a failed rollback."""


@dataclass(frozen=True)
class Outcome:
    action: str  # ignored | nothing_approved | creating | updating | busy | serving | rolled_back
    detail: str
    model_package_version: int | None = None
    release: str | None = None
    changes: list[str] = field(default_factory=list)


class Deployer:
    def __init__(
        self,
        *,
        settings: Settings,
        sagemaker: Callable[[], Any],
        registry: ModelRegistry,
        artifacts: ServingArtifactStore,
        autoscaling: Autoscaling,
        state: StateStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._sagemaker = sagemaker
        self._registry = registry
        self._artifacts = artifacts
        self._autoscaling = autoscaling
        self._state = state
        self._clock = clock

    # -- entry ---------------------------------------------------------------------------------
    def reconcile(self, trigger: Trigger) -> Outcome:
        ignored = self._ignored(trigger)
        if ignored is not None:
            return ignored
        package = self._registry.latest_approved()
        if package is None:
            return Outcome("nothing_approved", f"no approved package in {self._settings.model_package_group}")
        release = release_of(package, self._settings)
        endpoint = self._describe_endpoint()
        state = self._state.load()
        if endpoint is None:
            return self._create(release, state)
        status = endpoint["EndpointStatus"]
        if status in BUSY:
            return self._outcome("busy", f"endpoint is {status}; the next trigger continues", release)
        if status != IN_SERVICE:
            reason = endpoint.get("FailureReason", "no reason given")
            raise EndpointNotServing(f"endpoint {self._settings.endpoint_name} is {status}: {reason}")
        if endpoint["EndpointConfigName"] == release.name:
            return self._serving(release, state)
        if (state.attempt or {}).get("release") == release.name:
            logger.error("release %s was deployed and rolled back; not retrying it", release.name)
            return self._outcome(
                "rolled_back",
                f"{release.name} was tried and the endpoint is back on {endpoint['EndpointConfigName']}",
                release,
            )
        return self._update(release, endpoint, state)

    def _ignored(self, trigger: Trigger) -> Outcome | None:
        settings = self._settings
        if isinstance(trigger, Unrecognised):
            return Outcome("ignored", trigger.reason)
        if isinstance(trigger, PackageChange) and trigger.group != settings.model_package_group:
            return Outcome("ignored", f"model package group {trigger.group!r} is not {settings.model_package_group!r}")
        if isinstance(trigger, EndpointChange) and trigger.endpoint_name != settings.endpoint_name:
            return Outcome("ignored", f"endpoint {trigger.endpoint_name!r} is not {settings.endpoint_name!r}")
        return None

    # -- steps ---------------------------------------------------------------------------------
    def _create(self, release: Release, state: DeploymentState) -> Outcome:
        changes = self._ensure_release(release, initial_instances=self._initial_instances(None))
        self._artifacts.ensure(release.package)
        self._sagemaker().create_endpoint(
            EndpointName=self._settings.endpoint_name,
            EndpointConfigName=release.name,
            Tags=[{"Key": "model-package-group", "Value": release.package.group}],
        )
        self._state.save(state, state.with_attempt(self._attempt(release)))
        return self._outcome("creating", f"creating {self._settings.endpoint_name}", release, [*changes, "endpoint"])

    def _update(self, release: Release, endpoint: dict[str, Any], state: DeploymentState) -> Outcome:
        current_desired = _desired_instances(endpoint, self._settings.variant_name)
        changes = self._ensure_release(release, initial_instances=self._initial_instances(current_desired))
        self._artifacts.ensure(release.package)
        if self._instance_type_changes(endpoint) and self._autoscaling.release_for_instance_type_change():
            changes.append("scalable_target_deregistered")
        request: dict[str, Any] = {"EndpointName": self._settings.endpoint_name, "EndpointConfigName": release.name}
        policy = deployment_config(self._settings)
        if policy is not None:
            request["DeploymentConfig"] = policy
        self._sagemaker().update_endpoint(**request)
        self._state.save(state, state.with_attempt(self._attempt(release)))
        return self._outcome(
            "updating", f"{endpoint['EndpointConfigName']} -> {release.name}", release, [*changes, "endpoint_update"]
        )

    def _serving(self, release: Release, state: DeploymentState) -> Outcome:
        changes = self._autoscaling.ensure() if self._settings.instances is not None else []
        artifacts = self._artifacts.ensure(release.package)
        previous = state.serving or {}
        serving = {
            "endpoint_name": self._settings.endpoint_name,
            "endpoint_config_name": release.name,
            "model_package_arn": release.package.arn,
            "model_package_version": release.package.version,
            "model_data_url": release.package.model_data_url,
            "transform_uri": artifacts.transform_uri,
            "metadata_uri": artifacts.metadata_uri,
            # When this release started serving, as first seen; kept across replays.
            "since": previous.get("since")
            if previous.get("endpoint_config_name") == release.name
            else self._clock().isoformat(),
        }
        if self._state.save(state, state.with_serving(serving)):
            changes.append("manifest")
        detail = "in service" + (f"; updated {', '.join(changes)}" if changes else "; nothing to change")
        return self._outcome("serving", detail, release, changes)

    # -- helpers -------------------------------------------------------------------------------
    def _ensure_release(self, release: Release, *, initial_instances: int) -> list[str]:
        """The release's model and endpoint configuration, created where missing."""
        client = self._sagemaker()
        changes = []
        models = client.list_models(NameContains=release.name).get("Models", [])
        if not any(m["ModelName"] == release.name for m in models):
            client.create_model(**create_model_request(release, self._settings))
            changes.append("model")
        configs = client.list_endpoint_configs(NameContains=release.name).get("EndpointConfigs", [])
        if not any(c["EndpointConfigName"] == release.name for c in configs):
            client.create_endpoint_config(
                **endpoint_config_request(release, self._settings, initial_instances=initial_instances)
            )
            changes.append("endpoint_config")
        return changes

    def _describe_endpoint(self) -> dict[str, Any] | None:
        """The endpoint, or None when it does not exist (listed by name, not guessed from an error)."""
        client = self._sagemaker()
        name = self._settings.endpoint_name
        listed = client.list_endpoints(NameContains=name, MaxResults=100).get("Endpoints", [])
        if not any(e["EndpointName"] == name for e in listed):
            return None
        return dict(client.describe_endpoint(EndpointName=name))

    def _initial_instances(self, current_desired: int | None) -> int:
        return initial_instance_count(self._settings, current_desired) if self._settings.instances else 0

    def _instance_type_changes(self, endpoint: dict[str, Any]) -> bool:
        if self._settings.instances is None:
            return False
        current = self._sagemaker().describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        types = {v.get("InstanceType") for v in current.get("ProductionVariants", [])}
        return types != {self._settings.instances.instance_type}

    def _attempt(self, release: Release) -> dict[str, Any]:
        return {
            "release": release.name,
            "model_package_version": release.package.version,
            "requested_at": self._clock().isoformat(),
        }

    @staticmethod
    def _outcome(action: str, detail: str, release: Release, changes: list[str] | None = None) -> Outcome:
        return Outcome(action, detail, release.package.version, release.name, list(changes or []))


def _desired_instances(endpoint: dict[str, Any], variant_name: str) -> int | None:
    for variant in endpoint.get("ProductionVariants", []):
        if variant.get("VariantName") == variant_name and "DesiredInstanceCount" in variant:
            return int(variant["DesiredInstanceCount"])
    return None
