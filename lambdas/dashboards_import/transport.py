"""The HTTP boundary: plain request/response values and the one class that touches the network.

Everything above this module builds :class:`HttpRequest` values and reads :class:`HttpResponse`
values, so tests replace :class:`UrllibTransport` with a recording fake and assert the exact requests.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def excerpt(self, limit: int = 500) -> str:
        """The start of the body, for error reasons (CloudFormation shows at most a few KiB)."""
        return self.body[:limit].decode("utf-8", errors="replace")


class Transport(Protocol):
    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        """Send ``request``; an HTTP error status is a response, a network failure raises OSError."""
        ...


class UrllibTransport:
    """HTTPS with the standard library only (the function has no third-party dependencies)."""

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        if urlsplit(request.url).scheme != "https":
            raise ValueError(f"refusing to send a request over plain HTTP: {request.url}")
        prepared = urllib.request.Request(  # noqa: S310 (scheme checked above: https only)
            request.url,
            data=request.body if request.body or request.method in ("PUT", "POST") else None,
            headers=dict(request.headers),
            method=request.method,
        )
        try:
            with urllib.request.urlopen(prepared, timeout=timeout) as answer:  # noqa: S310 (https only)
                return HttpResponse(status=answer.status, body=answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return HttpResponse(status=error.code, body=error.read())
