"""The deployment state, as one JSON document in SSM (``Names.serving_manifest_parameter``).

``serving`` describes the release the endpoint serves (the inference API reads it);
``attempt`` remembers the release last asked for, so that a deployment SageMaker rolled back is
not retried on every trigger (it would roll back again): only a new approved version, or a
person removing ``attempt``, starts another one. The document is written only when it changes, so
replays leave it, and its SSM version, untouched. The deployer creates the parameter itself:
CloudFormation would reset its value on every stack update.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class DeploymentState:
    serving: dict[str, Any] | None = None
    attempt: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({**self.extra, "serving": self.serving, "attempt": self.attempt}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DeploymentState:
        document = json.loads(text)
        if not isinstance(document, dict):
            return cls()
        serving, attempt = document.pop("serving", None), document.pop("attempt", None)
        return cls(serving=serving, attempt=attempt, extra=document)

    def with_attempt(self, attempt: dict[str, Any]) -> DeploymentState:
        return replace(self, attempt=attempt)

    def with_serving(self, serving: dict[str, Any]) -> DeploymentState:
        return replace(self, serving=serving, attempt=None)


class StateStore:
    def __init__(self, client_factory: Callable[[], Any], parameter_name: str) -> None:
        self._client = client_factory
        self._name = parameter_name

    def load(self) -> DeploymentState:
        client = self._client()
        try:
            text = client.get_parameter(Name=self._name)["Parameter"]["Value"]
        except client.exceptions.ParameterNotFound:
            return DeploymentState()
        return DeploymentState.from_json(text)

    def save(self, old: DeploymentState, new: DeploymentState) -> bool:
        """Write ``new`` if it differs from ``old``; True when written."""
        if new.to_json() == old.to_json():
            return False
        self._client().put_parameter(
            Name=self._name,
            Value=new.to_json(),
            Type="String",
            Overwrite=True,
            Description="Model release the inference endpoint serves (written by the model deployer)",
        )
        return True
