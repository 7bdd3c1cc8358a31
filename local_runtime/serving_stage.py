"""Serving: the inference script behind the SageMaker container contract (``GET /ping``,
``POST /invocations``) on loopback, scored request by request like a real-time endpoint with
data capture on; the capture lines (SageMaker's format) land in the lake and the feedback Glue job
(:func:`glue_jobs.feedback.run`, the code that runs in AWS) joins them with the ground truth (the
churn labels from CDC) into a labelled production dataset and measures the served model on it.

The requests replay the held-out rows of history, so each prediction's ``inferenceTime`` is the
instant its features are as of (the row's cutoff), not the wall clock: the point-in-time join then
pairs it with the renewal it was made for, as it does in production. The run replays months at
once, so the feedback job rejoins every label of the run (its ``rejoin_days`` in AWS is a week)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from local_runtime.context import RunContext
from platform_core.names import Names
from platform_core.schemas.serving import capture_line, capture_record

MAX_REQUESTS = 300


@dataclass
class ServingLanding:
    requests: int
    p50_ms: float
    p99_ms: float
    predictions: int
    labelled_rows: int
    production_pr_auc: float | None = None


def run(ctx: RunContext, spark: Any, model_dir: Path, test_dir: Path) -> ServingLanding:
    from pipelines.inference import InferenceServer

    server = InferenceServer(model_dir, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, name="endpoint", daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        _wait_until_ready(base)
        rows = _requests(test_dir)
        latencies: list[float] = []
        captured: list[dict[str, Any]] = []
        for row in rows:
            body = json.dumps({k: _plain(v) for k, v in row.items()}).encode()
            started = time.perf_counter()
            request = urllib.request.Request(  # noqa: S310 (our loopback endpoint, http only)
                f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback endpoint, http only)
                answer = response.read().decode()
            latencies.append((time.perf_counter() - started) * 1000)
            captured.append(
                capture_record(
                    body.decode(),
                    answer,
                    event_id=f"local-{len(captured):06d}",
                    inference_time=pd.Timestamp(row["cutoff_time"]).to_pydatetime(),
                    inference_id=f"{row['user_id']}@{row['cutoff_time']}",
                )
            )
    finally:
        server.shutdown()
        server.server_close()
    capture_dir = ctx.lake / "serving_capture"
    capture_dir.mkdir(parents=True, exist_ok=True)
    (capture_dir / "capture.jsonl").write_text("".join(capture_line(c) for c in captured), encoding="utf-8")
    feedback = _feedback(ctx, spark, capture_dir)
    predictions = _land_predictions(spark, ctx, capture_dir)
    served = feedback.reports[0] if feedback.reports else None
    landing = ServingLanding(
        requests=len(latencies),
        p50_ms=float(np.percentile(latencies, 50)) if latencies else 0.0,
        p99_ms=float(np.percentile(latencies, 99)) if latencies else 0.0,
        predictions=predictions,
        labelled_rows=feedback.counts.get("labelled", 0),
        production_pr_auc=served.metrics.get("pr_auc") if served else None,
    )
    ctx.progress.say(
        "serving",
        f"{landing.requests} requests, p50 {landing.p50_ms:.1f} ms, p99 {landing.p99_ms:.1f} ms, "
        f"{landing.labelled_rows} predictions joined with ground truth (production PR-AUC {_rounded(landing.production_pr_auc)})",
    )
    return landing


def _rounded(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _feedback(ctx: RunContext, spark: Any, capture_dir: Path) -> Any:
    """The feedback Glue job on the captures and the churn labels, as of the end of the data."""
    from glue_jobs import feedback

    serving, training = ctx.config.serving, ctx.config.training
    names = Names(ctx.config)
    labels = spark.read.parquet(str(ctx.lake / "churn_labels"))
    newest = labels.agg({"label_time": "max"}).first()[0]
    as_of = newest.astimezone(UTC) + timedelta(seconds=1)  # labels are joined when known before as_of
    everything = (as_of - labels.agg({"label_time": "min"}).first()[0].astimezone(UTC)).days + 1
    settings = feedback.FeedbackSettings(
        endpoint_name=names.inference_endpoint,
        pipeline_name=names.training_pipeline,
        model_package_group=names.model_package_group,
        pr_auc_min=training.min_pr_auc,
        min_rows=serving.quality_min_labelled_rows,
        max_lead_days=serving.feedback_max_lead_days,
        rejoin_days=everything,
        quality_window_days=everything,
    )
    return feedback.run(
        spark,
        capture_path=str(capture_dir),
        labels_path=str(ctx.lake / "churn_labels"),
        output_path=str(ctx.lake / "production_labelled"),
        rejects_path=str(ctx.out / "errors" / "feedback"),
        as_of=as_of,
        settings=settings,
    )


def _land_predictions(spark: Any, ctx: RunContext, capture_dir: Path) -> int:
    """The served predictions as a lake dataset: one row per scored user, from the captures."""
    from glue_jobs.transforms.feedback import read_captures, split_captures

    predictions, _ = split_captures(read_captures(spark, str(capture_dir)))
    predictions.write.mode("overwrite").parquet(str(ctx.lake / "predictions"))
    return int(spark.read.parquet(str(ctx.lake / "predictions")).count())


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
