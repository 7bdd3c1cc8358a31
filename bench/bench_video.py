"""How much video one ingest worker handles per second of wall time, and the memory it takes.

One worker ingests every segment a loopback HLS camera offers (the catch-up case: the whole
backlog is available at once) into moto's S3, Kinesis and DynamoDB. Measured in the same run, as
floors: downloading the same segments only, probing them only, and the AWS calls only (moto's
cost per call; real AWS adds network latency instead). Cases: 320x240 and 1280x720 at 15 fps in
2-second segments, with and without a JPEG every second.

    .venv/bin/python -m bench.bench_video
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

_REGION_DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
BUCKET, STREAM, TABLE = "bench-raw", "bench-video-metadata", "bench-video-watermarks"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _aws() -> tuple[Any, Any, Any]:
    import boto3

    s3, kinesis, dynamodb = boto3.client("s3"), boto3.client("kinesis"), boto3.client("dynamodb")
    s3.create_bucket(Bucket=BUCKET)
    kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "camera_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "camera_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return s3, kinesis, dynamodb


def _case(
    clients: tuple[Any, Any, Any], *, name: str, width: int, height: int, segments: int, sample: float | None
) -> dict[str, Any]:
    from lambdas.video_ingest.fetch import HttpFetcher
    from lambdas.video_ingest.ingest import IngestOptions, VideoIngestor
    from lambdas.video_ingest.probe import probe_segment
    from lambdas.video_ingest.sinks import Sinks
    from lambdas.video_ingest.watermark import WatermarkStore
    from platform_core.schemas.video import CameraConfig
    from simulators.hls_camera import HlsCamera, Rendition

    s3, kinesis, dynamodb = clients
    rendition = Rendition("live", width, height, 400_000 * (width * height) // (320 * 240))
    encode_started = time.perf_counter()
    camera = HlsCamera(
        segments=segments, window=segments, segment_seconds=2.0, fps=15, renditions=(rendition,), lifetime_seconds=600
    )
    encode_seconds = time.perf_counter() - encode_started
    video_seconds = sum(camera.segment_duration(s) for s in range(segments))
    with camera:

        def ingest(camera_id: str) -> tuple[Any, float]:
            worker = VideoIngestor(
                sinks=Sinks(s3, kinesis, BUCKET, STREAM),
                watermarks=WatermarkStore(dynamodb, TABLE),
                fetcher=HttpFetcher(timeout_seconds=10.0),
                options=IngestOptions(step_budget_seconds=1.0),
            )
            config = CameraConfig(camera_id=camera_id, source=camera.url, frame_sample_seconds=sample)
            started = time.perf_counter()
            result = worker.ingest(config, deadline=time.monotonic() + 600)
            return result, time.perf_counter() - started

        rss_before = _maxrss_mb()
        result, ingest_seconds = ingest(name)
        rss_after = _maxrss_mb()
        # Python's allocations, in a second pass under another camera id: tracemalloc slows the
        # interpreter several times over, so it must not run during the timed pass.
        tracemalloc.start()
        ingest(f"{name}-traced")
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if len(result.stored) != segments:
            raise RuntimeError(f"{name}: stored {len(result.stored)} of {segments} segments ({result.status})")

        # Floors: each part of the work alone, over the same segments.
        started = time.perf_counter()
        for s in range(segments):
            with urllib.request.urlopen(f"{camera.base_url}/live/seg_{s}.ts", timeout=10) as response:
                response.read()
        download_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for s in range(segments):
        probe_segment(camera.segment_bytes(s), sample_every_seconds=sample)
    probe_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for s in range(segments):
        key = f"floor/{name}/{s}.ts"
        s3.put_object(Bucket=BUCKET, Key=key, Body=camera.segment_bytes(s), IfNoneMatch="*")
        kinesis.put_record(StreamName=STREAM, Data=b"x" * 700, PartitionKey=name)
        for _ in range(2):
            dynamodb.update_item(
                TableName=TABLE,
                Key={"camera_id": {"S": f"floor-{name}"}},
                UpdateExpression="SET w = :w",
                ExpressionAttributeValues={":w": {"N": str(s)}},
            )
    aws_seconds = time.perf_counter() - started
    segment_bytes = sum(len(camera.segment_bytes(s)) for s in range(segments))
    isolated_rss = _isolated_probe_rss_mb([camera.segment_bytes(s) for s in range(segments)], sample)
    return {
        "resolution": f"{width}x{height}",
        "fps": 15,
        "segments": segments,
        "video_seconds": round(video_seconds, 1),
        "frames_sampled": result.frames_sampled,
        "mean_segment_kb": round(segment_bytes / segments / 1024, 1),
        "encode_seconds_simulator": round(encode_seconds, 2),
        "ingest_seconds": round(ingest_seconds, 3),
        "video_seconds_per_wall_second": round(video_seconds / ingest_seconds, 1),
        "floor_download_seconds": round(download_seconds, 3),
        "floor_probe_seconds": round(probe_seconds, 3),
        "floor_aws_calls_seconds_moto": round(aws_seconds, 3),
        # Decoding capacity alone: what one core could ingest if storage and network were free.
        "video_seconds_per_probe_second": round(video_seconds / probe_seconds, 1),
        "ingest_over_sum_of_floors": round(ingest_seconds / (download_seconds + probe_seconds + aws_seconds), 2),
        "probe_share_of_ingest": round(probe_seconds / ingest_seconds, 2),
        "tracemalloc_peak_mb": round(traced_peak / 2**20, 1),
        "maxrss_mb_before": round(rss_before, 1),
        "maxrss_mb_after": round(rss_after, 1),
        "worker_alone_maxrss_mb": isolated_rss,
    }


_ISOLATED = """
import json, sys
import boto3, av  # what the function imports
import lambdas.video_ingest.handler
from lambdas.video_ingest.probe import probe_segment
boto3.client("s3", region_name="us-east-1"); boto3.client("kinesis", region_name="us-east-1")
boto3.client("dynamodb", region_name="us-east-1")
sample = json.loads(sys.argv[2])
for path in sys.argv[3:]:
    data = open(path, "rb").read()
    probe_segment(data, sample_every_seconds=sample)
# VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's peak (fork copies it).
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(int(hwm.split()[1]) / 1024)
"""


def _isolated_probe_rss_mb(segments: list[bytes], sample: float | None) -> float:
    """Peak RSS of a fresh interpreter that imports what the function imports, builds its clients
    and probes the same segments: the worker's memory without moto and the simulator in the process."""
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        paths = []
        for i, data in enumerate(segments):
            path = Path(tmp, f"{i}.ts")
            path.write_bytes(data)
            paths.append(str(path))
        out = subprocess.run(
            [sys.executable, "-c", _ISOLATED, "-", json.dumps(sample), *paths],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    return round(float(out.stdout.strip().splitlines()[-1]), 1)


def run() -> dict[str, Any]:
    for name, value in _REGION_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from moto import mock_aws

    with mock_aws():
        clients = _aws()
        cases = [
            _case(clients, name="qvga", width=320, height=240, segments=30, sample=None),
            _case(clients, name="qvga-frames", width=320, height=240, segments=30, sample=1.0),
            _case(clients, name="hd720", width=1280, height=720, segments=10, sample=None),
            _case(clients, name="hd720-frames", width=1280, height=720, segments=10, sample=1.0),
        ]
    return {
        "cases": cases,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "note": "one worker, one camera, whole backlog available; moto in-process, camera on loopback",
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
