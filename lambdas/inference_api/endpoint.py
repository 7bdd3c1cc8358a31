"""One call to the real-time endpoint (``InvokeEndpoint``) and what can go wrong with it.

The client's own timeouts and single retry (``clients.py``) bound the call; anything that keeps the
model from answering (a timeout, a connection error, a throttle, a model error, no endpoint yet, an
answer we cannot read) becomes :class:`EndpointUnavailable` with a short machine-readable reason.
Errors are told apart by type and error code, never by message text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

JSON = "application/json"


class EndpointUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EndpointAnswer:
    score: float
    model_version: str
    request_body: str  # exactly what was sent and received: the capture records these
    response_body: str


class EndpointScorer:
    def __init__(self, client_factory: Callable[[], Any], endpoint_name: str) -> None:
        self._client = client_factory
        self._endpoint = endpoint_name

    def score(self, record: Mapping[str, Any], inference_id: str) -> EndpointAnswer:
        body = json.dumps(record, separators=(",", ":"))
        try:
            response = self._client().invoke_endpoint(
                EndpointName=self._endpoint,
                Body=body.encode(),
                ContentType=JSON,
                Accept=JSON,
                InferenceId=inference_id[:64],
            )
            payload = response["Body"].read().decode("utf-8")
        except (ReadTimeoutError, ConnectTimeoutError):
            raise EndpointUnavailable("timeout") from None
        except ClientError as error:
            raise EndpointUnavailable(error.response.get("Error", {}).get("Code", "client_error")) from None
        except BotoCoreError as error:
            raise EndpointUnavailable(type(error).__name__) from None
        return EndpointAnswer(*_read_answer(payload), request_body=body, response_body=payload)


def _read_answer(payload: str) -> tuple[float, str]:
    """The container's ``{"model_version", "scores": [p], "user_ids": [...]}`` for one record."""
    try:
        answer = json.loads(payload)
        scores = answer["scores"]
        if not isinstance(scores, list) or len(scores) != 1:
            raise ValueError("expected exactly one score")
        score = float(scores[0])
        if not 0.0 <= score <= 1.0:
            raise ValueError("score outside [0, 1]")
        return score, str(answer["model_version"])
    except (ValueError, KeyError, TypeError):
        raise EndpointUnavailable("unreadable_answer") from None
