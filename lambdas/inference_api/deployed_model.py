"""What the API knows about the deployed model: its version, input columns and fallback score.

The deployer writes a small JSON manifest to SSM (``Names.serving_manifest_parameter``) once the
endpoint serves a model version, and copies that version's ``transform.json`` and
``metadata.json`` out of ``model.tar.gz`` to the artifacts bucket. The API reads both here, once
per container and again only when the manifest changes (checked every ``cache_seconds``), so
a new deployment reaches every container within that time and nothing opens a model archive.

The feature transform itself (:class:`pipelines.feature_transform.FittedTransform`) is applied in
exactly one place, the inference container, from the same file that training fitted: the API
sends the raw feature record, as training's table holds it. From ``transform.json`` the API only
takes the model's input columns, to tell the caller which of them were missing (imputed). The
file's layout is the one ``FittedTransform.to_json`` writes (``format_version`` 1).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

TRANSFORM_FORMAT_VERSION = 1


@dataclass(frozen=True)
class DeployedModel:
    model_package_version: int | None
    endpoint_config_name: str
    input_columns: tuple[str, ...]  # the features the model reads, in the transform's order
    prior: float | None  # churn rate the model was trained on: the fallback score

    def missing(self, record: dict[str, Any]) -> list[str]:
        return [c for c in self.input_columns if record.get(c) is None]


def parse_transform_columns(text: str) -> tuple[str, ...]:
    spec = json.loads(text)
    if spec.get("format_version") != TRANSFORM_FORMAT_VERSION:
        raise ValueError(f"unsupported transform format {spec.get('format_version')!r}")
    return tuple(f["name"] for f in spec["numeric"]) + tuple(c["name"] for c in spec["categorical"])


def prior_from_metadata(metadata: dict[str, Any]) -> float | None:
    """The training churn rate: stated, or implied by the default class weight (negatives per
    positive, so rate = 1 / (1 + weight)); None when a weight was chosen by hand."""
    stated = metadata.get("train_positive_rate")
    if isinstance(stated, (int, float)):
        return float(stated)
    weight = metadata.get("scale_pos_weight")
    chosen = (metadata.get("hyperparameters") or {}).get("scale_pos_weight")
    if isinstance(weight, (int, float)) and weight > 0 and chosen is None:
        return 1.0 / (1.0 + float(weight))
    return None


def _split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class DeployedModelSource:
    """The deployed model, cached per container; ``current()`` is None before the first deployment."""

    def __init__(
        self,
        *,
        ssm: Callable[[], Any],
        s3: Callable[[], Any],
        parameter_name: str,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssm, self._s3 = ssm, s3
        self._parameter = parameter_name
        self._ttl = cache_seconds
        self._clock = clock
        self._manifest_text: str | None = None
        self._model: DeployedModel | None = None
        self._checked_at: float | None = None

    def current(self) -> DeployedModel | None:
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self._ttl:
            return self._model
        text = self._read_manifest()
        self._checked_at = now
        if text != self._manifest_text:
            self._model = self._load(text) if text is not None else None
            self._manifest_text = text
        return self._model

    def _read_manifest(self) -> str | None:
        ssm = self._ssm()
        try:
            return str(ssm.get_parameter(Name=self._parameter)["Parameter"]["Value"])
        except ssm.exceptions.ParameterNotFound:
            return None  # nothing deployed yet

    def _load(self, manifest_text: str) -> DeployedModel | None:
        serving = json.loads(manifest_text).get("serving")
        if not serving:
            return None  # a first deployment is in progress
        return DeployedModel(
            model_package_version=serving.get("model_package_version"),
            endpoint_config_name=serving["endpoint_config_name"],
            input_columns=parse_transform_columns(self._read_text(serving["transform_uri"])),
            prior=prior_from_metadata(json.loads(self._read_text(serving["metadata_uri"]))),
        )

    def _read_text(self, uri: str) -> str:
        bucket, key = _split_s3_uri(uri)
        return str(self._s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))
