"""Local inference latency through the HTTP container contract, against calling the handlers directly.

``python -m bench.bench_inference`` prints JSON. What it measures, in one run:

- the floor: ``input_fn -> predict_fn -> output_fn`` called in-process on one JSON record
  (parsing, feature transform, XGBoost, serialisation; no network);
- the container: ``POST /invocations`` with the same record over a keep-alive loopback
  connection to ``python -m pipelines.inference`` running in its own process, pinned to one core
  (the client is pinned to another core when the machine has one): p50/p99 latency of
  sequential requests, and requests/s with several concurrent client connections.

The model is trained here on generated data (a few seconds), so the benchmark needs nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datagen.config import GeneratorConfig
from datagen.world import build_world
from pipelines import feature_transform, inference
from pipelines.preprocess import time_split
from pipelines.tables import write_table
from pipelines.train import Hyperparameters, train

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 200
REQUESTS = 2000
CONCURRENT_CLIENTS = 4


def _train_model(folder: Path) -> dict[str, Any]:
    """A realistic model (same features and hyperparameters as the pipeline) and one test record."""
    table = build_world(GeneratorConfig(n_users=3000, seed=11)).training_table()
    split = time_split(table, label_horizon_days=7)
    write_table(split.train, folder / "train", "train")
    write_table(split.validation, folder / "validation", "validation")
    transform = feature_transform.fit(split.train)
    model, _ = train(
        train_dir=folder / "train",
        validation_dir=folder / "validation",
        transform=transform,
        hyperparameters=Hyperparameters(nthread=1),
    )
    model.save(folder / "model")
    row = split.test.drop(columns=["cutoff_time", "label"]).head(1)
    return json.loads(row.to_json(orient="records"))[0]


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    micros = np.asarray(samples_ns) / 1000
    return {
        "p50_us": round(float(np.percentile(micros, 50)), 1),
        "p99_us": round(float(np.percentile(micros, 99)), 1),
        "mean_us": round(float(micros.mean()), 1),
    }


def _time_calls(call: Callable[[], object], n: int) -> list[int]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def _direct(model_dir: Path, body: bytes) -> dict[str, Any]:
    model = inference.model_fn(model_dir)

    def handlers() -> object:
        return inference.output_fn(inference.predict_fn(inference.input_fn(body, inference.JSON), model))

    records = inference.input_fn(body, inference.JSON)
    samples = _time_calls(handlers, REQUESTS)
    predict_only = _time_calls(lambda: model.predict(records), REQUESTS)
    return {
        **_percentiles(samples),
        "requests_per_s": round(1e9 / float(np.mean(samples)), 1),
        "predict_only_p50_us": _percentiles(predict_only)["p50_us"],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(model_dir: Path, port: int, core: int | None) -> Iterator[None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.inference", "--model-dir", str(model_dir), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if core is not None:
            os.sched_setaffinity(process.pid, {core})
        _wait_for_ping(port)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for_ping(port: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                connection.close()
                return
        time.sleep(0.2)
    raise RuntimeError("the inference server did not become ready")


def _post(connection: http.client.HTTPConnection, body: bytes) -> None:
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": inference.JSON})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"/invocations answered {response.status}")


def _over_http(port: int, body: bytes) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples = _time_calls(lambda: _post(connection, body), REQUESTS)
    connection.close()

    per_client = REQUESTS // CONCURRENT_CLIENTS

    def client() -> None:
        own = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(per_client):
            _post(own, body)
        own.close()

    threads = [threading.Thread(target=client) for _ in range(CONCURRENT_CLIENTS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        **_percentiles(samples),
        "sequential_requests_per_s": round(1e9 / float(np.mean(samples)), 1),
        "concurrent_requests_per_s": round(per_client * CONCURRENT_CLIENTS / elapsed, 1),
        "concurrent_clients": CONCURRENT_CLIENTS,
    }


def run() -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    server_core = cores[0]
    client_core = cores[1] if len(cores) > 1 else None
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        record = _train_model(folder)
        body = json.dumps(record).encode()
        original_affinity = os.sched_getaffinity(0)
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        try:
            direct = _direct(folder / "model", body)
            port = _free_port()
            with _server(folder / "model", port, server_core):
                http_figures = _over_http(port, body)
        finally:
            os.sched_setaffinity(0, original_affinity)
    return {
        "record_bytes": len(body),
        "requests": REQUESTS,
        "server_core": server_core,
        "client_core": client_core,
        "direct_handlers": direct,
        "http_container": http_figures,
        "ratio_http_p50_to_direct_p50": round(http_figures["p50_us"] / direct["p50_us"], 2),
        "ratio_http_p99_to_direct_p99": round(http_figures["p99_us"] / direct["p99_us"], 2),
        "ratio_http_rps_to_direct_rps": round(http_figures["sequential_requests_per_s"] / direct["requests_per_s"], 3),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
