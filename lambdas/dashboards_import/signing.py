"""AWS Signature Version 4 for OpenSearch Service requests, with botocore (part of the Lambda runtime)."""

from __future__ import annotations

from dataclasses import replace

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from lambdas.dashboards_import.transport import HttpRequest, HttpResponse, Transport

SERVICE = "es"  # the signing name of OpenSearch Service, Dashboards included


class SigV4Signer:
    """Signs requests for one region with the function role's credentials."""

    def __init__(self, credentials: Credentials | ReadOnlyCredentials, region: str) -> None:
        self._credentials = credentials
        self._region = region

    def sign(self, request: HttpRequest) -> HttpRequest:
        unsigned = AWSRequest(method=request.method, url=request.url, data=request.body, headers=dict(request.headers))
        SigV4Auth(self._credentials, SERVICE, self._region).add_auth(unsigned)
        return replace(request, headers=dict(unsigned.headers.items()))


class SignedTransport:
    """A transport that signs every request before the inner transport sends it."""

    def __init__(self, inner: Transport, signer: SigV4Signer) -> None:
        self._inner = inner
        self._signer = signer

    def send(self, request: HttpRequest, *, timeout: float) -> HttpResponse:
        return self._inner.send(self._signer.sign(request), timeout=timeout)
