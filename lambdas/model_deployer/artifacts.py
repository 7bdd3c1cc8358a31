"""A deployed version's feature transform and metadata, copied out of its ``model.tar.gz``.

The inference API needs the model's input columns and training churn rate (see
``lambdas/inference_api/deployed_model.py``), which live in ``transform.json`` and
``metadata.json`` inside the model archive (``pipelines/model.py``). Copying the two small files
once per version to ``<serving models prefix><group>/v<version>/`` keeps archives out of the
API's hot path and out of its permissions. The copy is keyed by version: a replay finds the
files already there and reads no archive.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from lambdas.model_deployer.plan import ApprovedPackage

TRANSFORM_FILE = "transform.json"
METADATA_FILE = "metadata.json"
WANTED = (TRANSFORM_FILE, METADATA_FILE)


class ArtifactMissing(RuntimeError):
    """The package's model archive does not hold what serving needs (a person must look)."""


@dataclass(frozen=True)
class ServingArtifacts:
    transform_uri: str
    metadata_uri: str


class ServingArtifactStore:
    def __init__(self, client_factory: Callable[[], Any], *, bucket: str, prefix: str) -> None:
        self._client = client_factory
        self._bucket = bucket
        self._prefix = prefix

    def _folder(self, package: ApprovedPackage) -> str:
        return f"{self._prefix}{package.group}/v{package.version}/"

    def _uris(self, folder: str) -> ServingArtifacts:
        return ServingArtifacts(
            transform_uri=f"s3://{self._bucket}/{folder}{TRANSFORM_FILE}",
            metadata_uri=f"s3://{self._bucket}/{folder}{METADATA_FILE}",
        )

    def ensure(self, package: ApprovedPackage) -> ServingArtifacts:
        folder = self._folder(package)
        listing = self._client().list_objects_v2(Bucket=self._bucket, Prefix=folder)
        present = {item["Key"] for item in listing.get("Contents", [])}
        if all(f"{folder}{name}" in present for name in WANTED):
            return self._uris(folder)
        for name, content in self._extract(package).items():
            self._client().put_object(
                Bucket=self._bucket, Key=f"{folder}{name}", Body=content, ContentType="application/json"
            )
        return self._uris(folder)

    def _extract(self, package: ApprovedPackage) -> dict[str, bytes]:
        if not package.model_data_url:
            raise ArtifactMissing(f"model package {package.arn} names no ModelDataUrl")
        parsed = urlparse(package.model_data_url)
        body = self._client().get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
        found: dict[str, bytes] = {}
        # Streamed: the archive is read once, front to back, and never held whole in memory.
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                name = posixpath.normpath(member.name)
                if member.isfile() and name in WANTED:
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        found[name] = extracted.read()
                if len(found) == len(WANTED):
                    break
        missing = [name for name in WANTED if name not in found]
        if missing:
            raise ArtifactMissing(f"{package.model_data_url} lacks {', '.join(missing)} at its top level")
        return found
