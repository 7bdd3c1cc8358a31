"""A stand-in for ``sagemaker-featurestore-runtime`` that Spark executors can use.

Executors run in their own Python processes, so the fake is a picklable factory and keeps what it
receives on disk: one JSON file per accepted ``PutRecord``. It answers chosen users as the service
does, with ``ClientError`` bodies of the API's codes.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError


def service_error(code: str, status: int, message: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutRecord"
    )


@dataclass(frozen=True)
class DirectoryFeatureStore:
    """``refuse``: users answered ``ValidationError``; ``throttle_once``: users whose first call is
    answered ``ThrottlingException`` (the first call anywhere: a marker file decides)."""

    directory: str
    refuse: tuple[str, ...] = ()
    throttle_once: tuple[str, ...] = field(default=())

    def __call__(self) -> Any:
        return self.put_record

    def put_record(self, *, FeatureGroupName: str, Record: list[dict[str, str]], TargetStores: list[str]) -> dict:  # noqa: N803
        user_id = next(item["ValueAsString"] for item in Record if item["FeatureName"] == "user_id")
        if user_id in self.refuse:
            raise service_error("ValidationError", 400, f"record of {user_id} refused")
        if user_id in self.throttle_once and self._first_call(user_id):
            raise service_error("ThrottlingException", 400, "Rate exceeded")
        request = {"FeatureGroupName": FeatureGroupName, "Record": Record, "TargetStores": TargetStores}
        (Path(self.directory) / f"{user_id}-{uuid.uuid4().hex}.json").write_text(json.dumps(request))
        return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    def _first_call(self, user_id: str) -> bool:
        try:
            os.close(os.open(Path(self.directory) / f".throttled-{user_id}", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True

    def requests(self) -> list[dict[str, Any]]:
        """Every accepted request, ordered by user."""
        files = sorted(Path(self.directory).glob("*.json"))
        return sorted((json.loads(f.read_text()) for f in files), key=lambda r: r["Record"][0]["ValueAsString"])
