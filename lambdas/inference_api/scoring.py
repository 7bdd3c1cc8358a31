"""Scoring one user: online features -> the endpoint -> a churn score, or a documented fallback.

Outcomes:

- :class:`Scored`: the model's churn probability, the version of the model that computed it (from
  the container's own answer, so it is right during a blue/green rollout too), and how old each
  feature group's record was;
- :class:`UnknownUser` (raised): the user has no record in any feature group;
- :class:`Fallback`: the features or the model could not be reached in time. The answer carries
  the *prior*, the churn rate the deployed model was trained on, flagged ``fallback: true``. The
  prior ranks nobody above anybody and lies below the retention offer's break-even probability,
  so a client that acts on it makes no offer: the cheapest mistake while the model is away.

Nothing here knows about Lambda or API Gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.inference_api.capture import CaptureSink
from lambdas.inference_api.deployed_model import DeployedModel, DeployedModelSource
from lambdas.inference_api.endpoint import EndpointScorer, EndpointUnavailable
from lambdas.inference_api.features import OnlineStore, UserFeatures, read_user_features
from platform_core.schemas.features import FeatureGroup

logger = logging.getLogger(__name__)


class UnknownUser(LookupError):
    pass


@dataclass(frozen=True)
class Scored:
    user_id: str
    score: float
    model_version: str
    model_package_version: int | None
    features_age_seconds: dict[str, float | None]
    missing_features: list[str]
    inference_id: str

    def body(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "score": self.score,
            "fallback": False,
            "model_version": self.model_version,
            "model_package_version": self.model_package_version,
            "features_age_seconds": self.features_age_seconds,
            "missing_features": self.missing_features,
            "inference_id": self.inference_id,
        }


@dataclass(frozen=True)
class Fallback:
    user_id: str
    score: float | None  # None when the deployed model's prior is unknown too
    reason: str
    model_package_version: int | None
    features_age_seconds: dict[str, float | None]
    inference_id: str

    def body(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "score": self.score,
            "fallback": True,
            "reason": self.reason,
            "model_version": None,
            "model_package_version": self.model_package_version,
            "features_age_seconds": self.features_age_seconds,
            "inference_id": self.inference_id,
        }


class ChurnScorer:
    def __init__(
        self,
        *,
        store: OnlineStore,
        groups: Mapping[FeatureGroup, str],
        endpoint: EndpointScorer,
        deployed: DeployedModelSource,
        capture: CaptureSink | None = None,
        max_feature_age: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._max_feature_age = max_feature_age
        self._store = store
        self._groups = groups
        self._endpoint = endpoint
        self._deployed = deployed
        self._capture = capture
        self._clock = clock

    def score(self, user_id: str, inference_id: str) -> Scored | Fallback:
        model = self._deployed_model()
        now = self._clock()
        try:
            features = read_user_features(self._store, self._groups, user_id, now=now, max_age=self._max_feature_age)
        except (BotoCoreError, ClientError) as error:
            logger.warning("online features unavailable for %s: %s", inference_id, type(error).__name__)
            return self._fallback(user_id, "features_unavailable", model, {}, inference_id)
        if not features.known:
            raise UnknownUser(f"user {user_id!r} has no features in the online store")
        ages = features.ages_seconds(now)
        record = features.model_input()
        try:
            answer = self._endpoint.score(record, inference_id)
        except EndpointUnavailable as error:
            logger.warning("endpoint unavailable for %s: %s", inference_id, error.reason)
            return self._fallback(user_id, f"endpoint_{error.reason}", model, ages, inference_id)
        self._record(answer.request_body, answer.response_body, inference_id, now)
        return Scored(
            user_id=user_id,
            score=answer.score,
            model_version=answer.model_version,
            model_package_version=model.model_package_version if model else None,
            features_age_seconds=ages,
            missing_features=self._missing(model, record, features),
            inference_id=inference_id,
        )

    def _deployed_model(self) -> DeployedModel | None:
        """The deployed model's description; its absence never stops scoring (the endpoint decides)."""
        try:
            return self._deployed.current()
        except (BotoCoreError, ClientError, ValueError, KeyError) as error:
            logger.warning("deployed model description unavailable: %s", type(error).__name__)
            return None

    @staticmethod
    def _missing(model: DeployedModel | None, record: dict[str, Any], features: UserFeatures) -> list[str]:
        if model is not None:
            return model.missing(record)
        return sorted(name for name, value in features.values.items() if value is None)

    def _fallback(
        self,
        user_id: str,
        reason: str,
        model: DeployedModel | None,
        ages: dict[str, float | None],
        inference_id: str,
    ) -> Fallback:
        return Fallback(
            user_id=user_id,
            score=model.prior if model else None,
            reason=reason,
            model_package_version=model.model_package_version if model else None,
            features_age_seconds=ages,
            inference_id=inference_id,
        )

    def _record(self, request_body: str, response_body: str, inference_id: str, now: datetime) -> None:
        """Capture for the feedback loop; a failed capture never fails the answer."""
        if self._capture is None:
            return
        try:
            self._capture.capture(
                request_body=request_body, response_body=response_body, event_id=inference_id, inference_time=now
            )
        except (BotoCoreError, ClientError) as error:
            logger.warning("could not capture %s: %s", inference_id, type(error).__name__)
