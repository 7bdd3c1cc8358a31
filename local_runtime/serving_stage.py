"""Serving: the inference script behind the SageMaker container contract (``GET /ping``,
``POST /invocations``) on loopback, scored request by request like a real-time endpoint with
data capture on; captured requests and responses land in the lake and are joined with the ground
truth (the churn labels from CDC) into a labelled production dataset: the feedback loop."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from local_runtime.context import RunContext

MAX_REQUESTS = 300


@dataclass
class ServingLanding:
    requests: int
    p50_ms: float
    p99_ms: float
    predictions: int
    labelled_rows: int


def run(ctx: RunContext, model_dir: Path, test_dir: Path) -> ServingLanding:
    from pipelines.inference import InferenceServer

    server = InferenceServer(model_dir, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, name="endpoint", daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        _wait_until_ready(base)
        rows = _requests(test_dir)
        latencies, captured = [], []
        for row in rows:
            body = json.dumps({k: _plain(v) for k, v in row.items()}).encode()
            started = time.perf_counter()
            request = urllib.request.Request(  # noqa: S310 (our loopback endpoint, http only)
                f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback endpoint, http only)
                answer = json.loads(response.read())
            latencies.append((time.perf_counter() - started) * 1000)
            captured.append({"request": row, "response": answer, "captured_at": pd.Timestamp.now(tz="UTC").isoformat()})
    finally:
        server.shutdown()
        server.server_close()
    predictions = _land(ctx, captured)
    labelled = _join_ground_truth(ctx, predictions)
    landing = ServingLanding(
        requests=len(latencies),
        p50_ms=float(np.percentile(latencies, 50)) if latencies else 0.0,
        p99_ms=float(np.percentile(latencies, 99)) if latencies else 0.0,
        predictions=len(predictions),
        labelled_rows=labelled,
    )
    ctx.progress.say(
        "serving",
        f"{landing.requests} requests, p50 {landing.p50_ms:.1f} ms, p99 {landing.p99_ms:.1f} ms, "
        f"{landing.labelled_rows} predictions joined with ground truth",
    )
    return landing


def _wait_until_ready(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the inference server did not answer /ping within 60 s")


def _requests(test_dir: Path) -> list[dict[str, Any]]:
    from pipelines.tables import LABEL, read_table

    table = read_table(test_dir).head(MAX_REQUESTS)
    return [{k: v for k, v in row.items() if k != LABEL} for row in table.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _land(ctx: RunContext, captured: list[dict[str, Any]]) -> pd.DataFrame:
    capture_dir = ctx.lake / "serving_capture"
    capture_dir.mkdir(parents=True, exist_ok=True)
    with (capture_dir / "capture.jsonl").open("w") as out:
        for entry in captured:
            out.write(json.dumps(entry, default=_plain) + "\n")
    rows = []
    for entry in captured:
        response = entry["response"]
        score = response.get("scores", [response.get("score")])[0] if isinstance(response, dict) else None
        rows.append(
            {
                "user_id": str(entry["request"]["user_id"]),
                "cutoff_time": pd.Timestamp(entry["request"]["cutoff_time"]),
                "score": score,
                "model_version": response.get("model_version") if isinstance(response, dict) else None,
                "captured_at": pd.Timestamp(entry["captured_at"]),
            }
        )
    predictions = pd.DataFrame(rows)
    (ctx.lake / "predictions").mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(ctx.lake / "predictions" / "part-0.parquet", index=False)
    return predictions


def _join_ground_truth(ctx: RunContext, predictions: pd.DataFrame) -> int:
    labels_dir = ctx.lake / "churn_labels"
    if predictions.empty or not labels_dir.exists():
        return 0
    labels = pd.read_parquet(labels_dir)
    labels = labels.assign(cutoff_time=pd.to_datetime(labels["renewal_date"]).dt.tz_localize("UTC"))
    joined = predictions.merge(
        labels[["user_id", "cutoff_time", "churned"]], on=["user_id", "cutoff_time"], how="inner"
    )
    (ctx.lake / "production_labelled").mkdir(parents=True, exist_ok=True)
    joined.to_parquet(ctx.lake / "production_labelled" / "part-0.parquet", index=False)
    return len(joined)
