"""moto in server mode, in this process, on a loopback port.

Handlers create their boto3 clients lazily; pointing ``AWS_ENDPOINT_URL`` at the embedded server
before they run makes every client (ours and awswrangler's) talk to it, with no code change.
DynamoDB transactions roll back from a snapshot of the items they touch rather than of whole tables
(``local_runtime.moto_transactions``): the same semantics, in linear rather than quadratic time.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from local_runtime.moto_transactions import linear_transactions

REGION = "us-east-1"
ACCOUNT = "123456789012"

_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "MOTO_ACCOUNT_ID": ACCOUNT,
}


@dataclass(frozen=True)
class EmbeddedAws:
    endpoint_url: str
    region: str = REGION
    account: str = ACCOUNT

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_aws() -> Iterator[EmbeddedAws]:
    """Start moto on 127.0.0.1, point every AWS client of this process at it, stop it after."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: start from an empty account, whatever an
    # earlier run (or test) in this process left behind.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 (loopback http)
    urllib.request.urlopen(reset, timeout=30).close()  # noqa: S310
    saved = {key: os.environ.get(key) for key in (*_ENV, "AWS_ENDPOINT_URL")}
    os.environ.update(_ENV)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        with linear_transactions():
            yield EmbeddedAws(endpoint_url=endpoint)
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
