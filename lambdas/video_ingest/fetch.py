"""HTTP GET with bounded retries, answering with a value instead of raising.

Live HLS origins often answer 404 for a segment the playlist already lists (the CDN has not caught
up) or stall for a moment, so a failed GET is retried with exponential backoff; what still fails
is classified by the exception's *type* and the HTTP status (never by message text) so the
caller can tell a missing segment (a gap) from a camera that is gone (stop and alarm).
"""

from __future__ import annotations

import dataclasses
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

FailureKind = Literal["not_found", "timeout", "http_error", "unreachable"]

_RETRYABLE_STATUS = frozenset({404, 408, 425, 429, 500, 502, 503, 504})
_MIN_ATTEMPT_SECONDS = 0.2


@dataclass(frozen=True)
class Fetched:
    body: bytes
    attempts: int


@dataclass(frozen=True)
class FetchFailure:
    kind: FailureKind
    attempts: int
    detail: str  # for a person: status code or exception type, and the attempt count
    status: int | None = None
    # Retries were cut short by the deadline: the outcome is not final, try again next run.
    cut_short: bool = False


@dataclass(frozen=True)
class HttpFetcher:
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 0.5  # before the 2nd attempt; doubles each time
    max_bytes: int = 64 * 1024 * 1024  # larger bodies are refused, not buffered
    sleep: Callable[[float], None] = time.sleep

    def get(self, url: str, *, deadline: float | None = None) -> Fetched | FetchFailure:
        """GET ``url``; ``deadline`` (time.monotonic) bounds all attempts and the waits between them."""
        failure = FetchFailure("timeout", 0, "no time left before the deadline", cut_short=True)
        for attempt in range(1, self.max_attempts + 1):
            timeout = self._attempt_timeout(deadline)
            if timeout is None:
                return dataclasses.replace(failure, cut_short=True)
            outcome = self._get_once(url, timeout, attempt)
            if isinstance(outcome, Fetched):
                return outcome
            failure = outcome
            if not _retryable(outcome) or attempt == self.max_attempts:
                break
            pause = self.backoff_seconds * 2 ** (attempt - 1)
            if deadline is not None and time.monotonic() + pause + _MIN_ATTEMPT_SECONDS > deadline:
                return dataclasses.replace(failure, cut_short=True)
            self.sleep(pause)
        return failure

    def _attempt_timeout(self, deadline: float | None) -> float | None:
        if deadline is None:
            return self.timeout_seconds
        left = deadline - time.monotonic()
        return min(self.timeout_seconds, left) if left >= _MIN_ATTEMPT_SECONDS else None

    def _get_once(self, url: str, timeout: float, attempt: int) -> Fetched | FetchFailure:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) URLs from config
                body = response.read(self.max_bytes + 1)
        except urllib.error.HTTPError as error:
            kind: FailureKind = "not_found" if error.code == 404 else "http_error"
            return FetchFailure(kind, attempt, f"HTTP {error.code} after {attempt} attempt(s)", error.code)
        except urllib.error.URLError as error:
            # Raised while connecting: the reason is the socket error underneath.
            kind = "timeout" if isinstance(error.reason, TimeoutError) else "unreachable"
            return FetchFailure(kind, attempt, f"{type(error.reason).__name__} after {attempt} attempt(s)")
        except TimeoutError:
            return FetchFailure("timeout", attempt, f"read timed out after {attempt} attempt(s)")
        except (http.client.HTTPException, ConnectionError) as error:
            # The connection dropped mid-response: the origin is going away.
            return FetchFailure("unreachable", attempt, f"{type(error).__name__} after {attempt} attempt(s)")
        if len(body) > self.max_bytes:
            return FetchFailure("http_error", attempt, f"body larger than {self.max_bytes} bytes")
        return Fetched(body, attempt)


def _retryable(failure: FetchFailure) -> bool:
    if failure.kind == "http_error":
        return failure.status in _RETRYABLE_STATUS
    return True
