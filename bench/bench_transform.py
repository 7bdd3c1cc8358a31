"""Throughput of the clickstream Firehose transform against a do-nothing-useful floor.

Events are ~600-byte clickstream events with real user-agent variety; each Firehose event holds
500 records (Kinesis source shape). Both the real handler and the floor (base64 decode,
``json.loads``, ``json.dumps``, base64 encode, per record) run in this one process, interleaved,
and are timed in CPU time of this process (``time.process_time``): events per CPU-second is the
per-core throughput, and it stays meaningful on a machine shared with other work (wall-clock
figures there mostly measure the neighbours). The best round of each is reported, and the median.

Run: ``.venv/bin/python -m bench.bench_transform``
"""

from __future__ import annotations

import base64
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

RECORDS_PER_EVENT = 500
BATCHES_PER_ROUND = 20
ROUNDS = 7
SEED = 20240601

# Real User-Agent headers: desktop and mobile browsers, in-app and TV clients, crawlers, voice.
USER_AGENTS: tuple[str, ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    ),
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Safari/605.1.15"
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80"
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67"
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1"
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1"
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.113 Mobile Safari/537.36"
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.6312.118 Mobile Safari/537.36"
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
    ),
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
        "Mobile Safari/537.36 EdgA/124.0.2478.64"
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Version/4.0 Chrome/118.0.0.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/444.0.0.37.108;]"
    ),
    (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 "
        "Safari/537.36 WebAppManager"
    ),
    (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/2.2 Chrome/85.0.4183.93 TV Safari/537.36"
    ),
    "Roku/DVP-12.5 (12.5.0.4178-51)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)"
    ),
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Dalvik/2.1.0 (Linux; U; Android 9; AEOBC Build/PS7624) AlexaMediaPlayer/2.1.4574.0",
    "AlexaService/2.2.507441.0 (Linux;Android 7.1.2) ExoPlayerLib/2.9.2",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
)

_EVENT_TYPES = (
    "page_view",
    "click",
    "search",
    "add_to_cart",
    "purchase",
    "sign_in",
    "api_request",
    "voice_command",
)
_PATHS = (
    "/",
    "/browse",
    "/browse/drama",
    "/title/tt0903747",
    "/search",
    "/account",
    "/plans",
    "/watch/88412",
)
_REFERRERS = (
    "https://www.google.com/",
    "https://www.bing.com/search?q=streaming+drama+series",
    "https://t.co/x7Ab3kLm",
    "https://www.facebook.com/",
    "android-app://com.google.android.gm/",
    None,
)


def realistic_event(rng: random.Random, now: datetime, session: dict[str, Any]) -> dict[str, Any]:
    """One ~600-byte event of a session (same user, agent and address for the session)."""
    when = now - timedelta(seconds=rng.randint(0, 3000))
    path = rng.choice(_PATHS)
    style = rng.random()
    event_time: str | int
    if style < 0.6:
        event_time = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    elif style < 0.85:
        event_time = when.astimezone(UTC).isoformat()
    else:
        event_time = int(when.timestamp() * 1000)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_time": event_time,
        "event_type": rng.choice(_EVENT_TYPES),
        "session_id": session["session_id"],
        "user_id": session["user_id"],
        "user_agent": session["user_agent"],
        "ip": session["ip"],
        "referrer": session["referrer"],
        "request": {
            "method": "GET" if rng.random() < 0.85 else "POST",
            "path": path,
            "query": f"page={rng.randint(1, 9)}&sort=popular" if rng.random() < 0.4 else "",
            "status": 200 if rng.random() < 0.95 else 404,
            "latency_ms": round(rng.uniform(3, 250), 2),
        },
        "properties": {
            "app_version": "5.12.0",
            "experiment": f"exp-{rng.randint(1, 4)}",
            "locale": "en-US",
            "screen": rng.choice(("1920x1080", "390x844", "3840x2160")),
        },
    }


def _session(rng: random.Random) -> dict[str, Any]:
    v6 = rng.random() < 0.3
    ip = (
        f"2001:db8:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
        if v6
        else f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )
    return {
        "session_id": f"s-{rng.getrandbits(64):016x}",
        "user_id": None if rng.random() < 0.3 else f"u-{rng.randint(1, 200_000):07d}",
        "user_agent": rng.choice(USER_AGENTS),
        "ip": ip,
        "referrer": rng.choice(_REFERRERS),
    }


_DELIVERY_STREAM_ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/mlp-bench-clickstream-to-lake"
_SOURCE_STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/mlp-bench-clickstream"


def firehose_events(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` Firehose transformation events (Kinesis source) of RECORDS_PER_EVENT records."""
    now = datetime.now(UTC)
    sessions = [_session(rng) for _ in range(2000)]
    events = []
    for batch in range(count):
        records = []
        for i in range(RECORDS_PER_EVENT):
            arrival = int(now.timestamp() * 1000) - rng.randint(0, 60_000)
            data = json.dumps(realistic_event(rng, now, rng.choice(sessions))).encode()
            sequence = f"4959033827149025660855969253836157109592157598913{batch:04d}{i:04d}"
            records.append(
                {
                    "recordId": f"{sequence}000000000000",
                    "approximateArrivalTimestamp": arrival,
                    "data": base64.b64encode(data).decode(),
                    "kinesisRecordMetadata": {
                        "shardId": "shardId-000000000001",
                        "partitionKey": "session",
                        "approximateArrivalTimestamp": arrival,
                        "sequenceNumber": sequence,
                        "subsequenceNumber": "",
                    },
                }
            )
        events.append(
            {
                "invocationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "deliveryStreamArn": _DELIVERY_STREAM_ARN,
                "sourceKinesisStreamArn": _SOURCE_STREAM_ARN,
                "region": "us-east-1",
                "records": records,
            }
        )
    return events


def _floor_record(data: str) -> str:
    document = json.loads(base64.b64decode(data))
    return base64.b64encode((json.dumps(document, separators=(",", ":")) + "\n").encode()).decode()


def floor_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The least any JSON transform does: decode, parse, serialise, encode, answer."""
    records = event["records"]
    return {"records": [{"recordId": r["recordId"], "result": "Ok", "data": _floor_record(r["data"])} for r in records]}


def _events_per_second(fn: Callable[[dict[str, Any], Any], Any], events: list[dict[str, Any]]) -> float:
    """Events per CPU-second of this process: one core's throughput, whatever else the machine runs."""
    start = time.process_time()
    for event in events:
        fn(event, None)
    return len(events) * RECORDS_PER_EVENT / (time.process_time() - start)


def run() -> dict[str, Any]:
    os.environ.setdefault("REJECTS_BUCKET", "bench-rejects")  # nothing is rejected, nothing written
    os.environ.setdefault("IP_PROTECTION", "truncate")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from lambdas.clickstream_transform.handler import handler

    rng = random.Random(SEED)
    events = firehose_events(BATCHES_PER_ROUND, rng)
    sizes = [len(base64.b64decode(r["data"])) for e in events for r in e["records"]]

    start = time.perf_counter()
    first = handler(events[0], None)  # cold caches: user-agent parsing happens here
    cold_seconds = time.perf_counter() - start
    failed = sum(r["result"] != "Ok" for r in first["records"])
    if failed:
        raise RuntimeError(f"{failed} benchmark records were rejected; the benchmark measures good events")

    handler_rates, floor_rates = [], []
    for _ in range(ROUNDS):  # interleaved, so both see the same machine load
        handler_rates.append(_events_per_second(handler, events))
        floor_rates.append(_events_per_second(floor_handler, events))
    handler_eps = max(handler_rates)
    floor_eps = max(floor_rates)
    return {
        "records_per_invocation": RECORDS_PER_EVENT,
        "events_measured_per_round": BATCHES_PER_ROUND * RECORDS_PER_EVENT,
        "rounds": ROUNDS,
        "mean_event_bytes": round(statistics.fmean(sizes)),
        "distinct_user_agents": len(USER_AGENTS),
        "first_invocation_seconds_cold_caches": round(cold_seconds, 3),
        "handler_events_per_second": round(handler_eps),
        "handler_events_per_second_median": round(statistics.median(handler_rates)),
        "floor_events_per_second": round(floor_eps),
        "floor_events_per_second_median": round(statistics.median(floor_rates)),
        "floor_over_handler_ratio": round(floor_eps / handler_eps, 2),
        "floor_over_handler_ratio_median": round(statistics.median(floor_rates) / statistics.median(handler_rates), 2),
        "target_events_per_second": 25_000,
        "target_max_ratio": 4.0,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
