"""Capture records written by the API, for endpoints that cannot capture themselves.

Serverless endpoints (dev) do not support SageMaker data capture, so without this the feedback
loop would have nothing to join in dev. The API writes one object per request, in SageMaker's
capture format (``platform_core.schemas.serving``) under the same prefix and layout the endpoint
would use, named by the request's id: a retried request overwrites its own record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from platform_core.schemas.serving import capture_key, capture_line, capture_record


class CaptureSink(Protocol):
    def capture(self, *, request_body: str, response_body: str, event_id: str, inference_time: datetime) -> None: ...


class S3CaptureWriter:
    def __init__(self, client_factory: Callable[[], Any], *, bucket: str, endpoint_name: str, variant_name: str):
        self._client = client_factory
        self._bucket = bucket
        self._endpoint = endpoint_name
        self._variant = variant_name

    def capture(self, *, request_body: str, response_body: str, event_id: str, inference_time: datetime) -> None:
        record = capture_record(
            request_body, response_body, event_id=event_id, inference_id=event_id, inference_time=inference_time
        )
        self._client().put_object(
            Bucket=self._bucket,
            Key=capture_key(self._endpoint, self._variant, inference_time, f"{event_id}.jsonl"),
            Body=capture_line(record).encode(),
            ContentType="application/jsonlines",
        )
