"""CloudWatch metrics as structured log lines (Embedded Metric Format): one line per camera and
run, which CloudWatch Logs turns into metrics the stack alarms on, without a PutMetricData call."""

from __future__ import annotations

import time
from typing import Any

from lambdas.video_ingest.ingest import CameraResult

_FAILED = frozenset({"bad_playlist", "sequence_reset", "error"})


def metric_line(result: CameraResult, namespace: str, *, now_ms: int | None = None) -> dict[str, Any]:
    """The EMF document for one camera's run (``json.dumps`` it onto stdout).

    ``CameraUnreachable`` and ``IngestErrors`` are emitted as 0 on healthy runs too, so an alarm on
    them sees data points rather than missing data."""
    metrics: dict[str, tuple[float, str]] = {
        "SegmentsStored": (len(result.stored), "Count"),
        "SegmentsQuarantined": (len(result.quarantined), "Count"),
        "SegmentsMissing": (result.missing_segments, "Count"),
        "FramesSampled": (result.frames_sampled, "Count"),
        "VideoSecondsIngested": (round(result.video_seconds, 3), "Seconds"),
        "BytesIngested": (result.bytes, "Bytes"),
        "CameraUnreachable": (1 if result.status == "unreachable" else 0, "Count"),
        "IngestErrors": (1 if result.status in _FAILED else 0, "Count"),
    }
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if now_ms is None else now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [["camera_id"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
                }
            ],
        },
        "camera_id": result.camera_id,
        "status": result.status,
        "detail": result.detail,
        "watermark": result.watermark,
        **{name: value for name, (value, _) in metrics.items()},
    }
