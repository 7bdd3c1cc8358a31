"""The user to score, from an API Gateway REST proxy event.

Two routes carry it: ``GET /users/{user_id}/churn-score`` (path) and ``POST /churn-score`` with
``{"user_id": "..."}`` (JSON body). Anything else is a :class:`BadRequest` with the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

MAX_BODY_BYTES = 4096
# Any printable, non-blank text up to 128 characters (user ids are strings everywhere).
USER_ID_PATTERN = re.compile(r"[^\s\x00-\x1f\x7f]{1,128}")


class BadRequest(ValueError):
    """The request names no usable user; the message says why."""


def user_id_from_event(event: dict[str, Any]) -> str:
    path_parameters = event.get("pathParameters") or {}
    if "user_id" in path_parameters:
        return _valid(path_parameters["user_id"])
    return _valid(_body(event).get("user_id"))


def _body(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest('the body must be a JSON object such as {"user_id": "u-123"}')
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest("the body is not valid base64-encoded UTF-8") from None
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise BadRequest(f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON: {error.msg} at position {error.pos}") from None
    if not isinstance(document, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(document).__name__}")
    return document


def _valid(user_id: Any) -> str:
    if user_id is None:
        raise BadRequest("user_id is required")
    if not isinstance(user_id, str):
        raise BadRequest(f"user_id must be a string, got {type(user_id).__name__}")
    if not USER_ID_PATTERN.fullmatch(user_id):
        raise BadRequest("user_id must be 1-128 printable characters without spaces")
    return user_id
