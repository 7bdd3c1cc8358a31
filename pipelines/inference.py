"""Inference: SageMaker's four handler functions, and a small HTTP server for the container contract.

The handlers follow the SageMaker framework containers' inference script convention:
``model_fn(model_dir)`` loads the model, ``input_fn(body, content_type)`` parses a request,
``predict_fn(data, model)`` scores it and ``output_fn(prediction, accept)`` serialises the answer.

The server implements the contract of a SageMaker inference container (stdlib only, one thread
per connection): ``GET /ping`` answers 200 once the model is loaded (503 before), and
``POST /invocations`` takes JSON and answers JSON. Run it with
``python -m pipelines.inference --model-dir DIR --port N`` (defaults: ``/opt/ml/model`` and
``$SAGEMAKER_BIND_TO_PORT`` or 8080, as SageMaker starts containers with ``serve``).

Request body (``Content-Type: application/json``): one record ``{"feature": value, ...}``, a list
of records, or ``{"instances": [records]}``. A record holds feature values as in the training
table; ``user_id`` is echoed back, unknown keys are ignored, missing features are treated as
missing values. Response: ``{"model_version": "...", "scores": [p, ...], "user_ids": [...]}``
with one churn probability per record. A body that is not JSON, holds no record, or holds a
feature of the wrong type gets 400 with ``{"error": reason}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (``python inference.py``, as SageMaker processing jobs start scripts): make the
    # folder above ``pipelines/`` importable so that ``from pipelines ...`` works as in the tests.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.feature_transform import FeatureError
from pipelines.model import ChurnModel

LOG = logging.getLogger(__name__)
JSON = "application/json"
MAX_RECORDS = 10_000
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit


class BadRequestError(ValueError):
    """The request cannot be scored; the reason is returned to the caller."""


class UnsupportedContentTypeError(BadRequestError):
    pass


class NotAcceptableError(BadRequestError):
    pass


# -- SageMaker handler functions ------------------------------------------------------------------


def model_fn(model_dir: str | Path) -> ChurnModel:
    # One thread per prediction: requests are small, and the server parallelises across requests.
    return ChurnModel.load(Path(model_dir), nthread=1)


def input_fn(request_body: bytes | str, request_content_type: str | None = JSON) -> list[dict[str, Any]]:
    """The records of a JSON request body."""
    media_type = (request_content_type or JSON).split(";")[0].strip().lower()
    if media_type not in (JSON, "application/jsonlines", "text/json"):
        raise UnsupportedContentTypeError(f"content type {media_type!r} is not supported; send {JSON}")
    try:
        text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
        payload = json.loads(text)
    except UnicodeDecodeError:
        raise BadRequestError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise BadRequestError(f"the body is not valid JSON: {error.msg} at position {error.pos}") from None
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    records = [payload] if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise BadRequestError('the body must be a JSON object, a list of objects, or {"instances": [...]}')
    if not records:
        raise BadRequestError("the body holds no record to score")
    if len(records) > MAX_RECORDS:
        raise BadRequestError(f"at most {MAX_RECORDS} records per request, got {len(records)}")
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequestError(f"record {position} must be a JSON object, got {type(record).__name__}")
    return records


def predict_fn(input_data: list[dict[str, Any]], model: ChurnModel) -> dict[str, Any]:
    try:
        scores = model.predict(input_data)
    except FeatureError as error:
        raise BadRequestError(str(error)) from None
    user_ids = [record.get("user_id") for record in input_data]
    return {
        "model_version": model.version,
        "scores": [float(s) for s in scores],
        "user_ids": [None if u is None else str(u) for u in user_ids],
    }


def output_fn(prediction: dict[str, Any], accept: str | None = JSON) -> tuple[bytes, str]:
    accepted = [part.split(";")[0].strip().lower() for part in (accept or JSON).split(",")]
    if not any(a in (JSON, "*/*", "application/*") for a in accepted):
        raise NotAcceptableError(f"can only answer {JSON}, not {accept!r}")
    return json.dumps(prediction, separators=(",", ":")).encode(), JSON


# -- the HTTP container contract ----------------------------------------------------------------


class ModelHolder:
    """The model, loaded in the background so that /ping can answer while it loads."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self.model: ChurnModel | None = None
        self.error: str | None = None
        self.ready = threading.Event()

    def load(self) -> None:
        try:
            self.model = model_fn(self.model_dir)
        except Exception as error:  # the reason is shown by /ping; the server keeps answering
            LOG.exception("could not load the model from %s", self.model_dir)
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.ready.set()


class InvocationHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # Buffer the response so that headers and body leave in one segment (flushed after each
    # request): two small writes meet Nagle's algorithm and the client's delayed ACK, ~40 ms.
    wbufsize = 64 * 1024
    server: InferenceServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/ping":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path!r}; use /ping or /invocations"})
            return
        holder = self.server.holder
        if holder.model is not None:
            self._send(HTTPStatus.OK, {"status": "ok", "model_version": holder.model.version})
        else:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "loading" if holder.error is None else holder.error})

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/invocations":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path!r}; use /invocations"})
            return
        body = self._body()
        if body is None:
            return
        model = self.server.holder.model
        if model is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the model is not loaded"})
            return
        try:
            records = input_fn(body, self.headers.get("Content-Type"))
            payload, content_type = output_fn(predict_fn(records, model), self.headers.get("Accept"))
        except UnsupportedContentTypeError as error:
            self._send(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": str(error)})
        except NotAcceptableError as error:
            self._send(HTTPStatus.NOT_ACCEPTABLE, {"error": str(error)})
        except BadRequestError as error:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except Exception:
            LOG.exception("scoring failed")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error while scoring"})
        else:
            self._send_bytes(HTTPStatus.OK, payload, content_type)

    def _body(self) -> bytes | None:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self._send(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"})
            return None
        try:
            length = int(length_header)
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, {"error": "Content-Length is not a number"})
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would corrupt the next request
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"the body exceeds {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(length)

    def _send(self, status: HTTPStatus, document: dict[str, Any]) -> None:
        self._send_bytes(status, json.dumps(document).encode(), JSON)

    def _send_bytes(self, status: HTTPStatus, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)


class InferenceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model_dir: Path, host: str = "0.0.0.0", port: int = 8080):  # noqa: S104 (containers listen on all interfaces)
        super().__init__((host, port), InvocationHandler)
        self.holder = ModelHolder(model_dir)
        threading.Thread(target=self.holder.load, name="model-loader", daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the churn model over HTTP (SageMaker container contract).")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"], help="SageMaker passes 'serve'")
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    server = InferenceServer(args.model_dir, args.host, args.port)
    LOG.info("serving %s on %s:%d", args.model_dir, args.host, server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
