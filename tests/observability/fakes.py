"""A recording stand-in for the network: the one boundary the provisioning function crosses."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lambdas.dashboards_import.transport import HttpRequest, HttpResponse

FIXTURES = Path(__file__).with_name("fixtures")


def cfn_event(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"cfn_{name}.json").read_text())


def ok(document: Any = None, status: int = 200) -> HttpResponse:
    return HttpResponse(status=status, body=json.dumps(document if document is not None else {}).encode())


@dataclass
class FakeNetwork:
    """Answers by (method, path); unscripted calls get a plain 200, except the two that need a
    particular answer: ISM policy look-ups (404: no policy yet) and imports (success)."""

    scripted: dict[tuple[str, str], deque[HttpResponse | OSError]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[HttpRequest] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)

    def script(self, method: str, path: str, answers: Iterable[HttpResponse | OSError]) -> None:
        self.scripted[(method, path)].extend(answers)

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        self.requests.append(request)
        self.timeouts.append(timeout)
        path = urlsplit(request.url).path
        queue = self.scripted.get((request.method, path))
        if queue:
            answer = queue.popleft()
            if isinstance(answer, OSError):
                raise answer
            return answer
        if request.method == "GET" and path.startswith("/_plugins/_ism/policies/"):
            return ok({"error": {"type": "status_exception"}}, status=404)
        if path.endswith("/saved_objects/_import"):
            count = request.body.count(b'"type":')
            return ok({"success": True, "successCount": count})
        return ok()

    def calls(self) -> list[tuple[str, str]]:
        """(method, path?query) of every request, the CloudFormation response as ("PUT", "<response>")."""
        result = []
        for r in self.requests:
            parts = urlsplit(r.url)
            if parts.hostname and parts.hostname.startswith("cloudformation-custom-resource-response"):
                result.append((r.method, "<response>"))
            else:
                result.append((r.method, parts.path + (f"?{parts.query}" if parts.query else "")))
        return result

    def cfn_response(self) -> dict[str, Any]:
        responses = [r for r in self.requests if "cloudformation-custom-resource-response" in r.url]
        assert len(responses) == 1, f"expected one answer to CloudFormation, got {len(responses)}"
        return json.loads(responses[0].body)

    def request_to(self, method: str, path: str) -> HttpRequest:
        matches = [r for r in self.requests if r.method == method and urlsplit(r.url).path == path]
        assert len(matches) == 1, f"{method} {path}: {len(matches)} requests"
        return matches[0]


class FakeContext:
    function_name = "mlp-dev-dashboards-import"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000
