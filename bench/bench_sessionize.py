"""Sessionisation throughput: the Spark transform on local Spark vs the same computation in DuckDB.

Both read the same Parquet file of synthetic clickstream events and compute the same session
keys (party, 30-minute gap, sha256 of party and start); the run checks that they agree before it
reports anything. Spark start-up and a warm-up pass are measured apart from the timed runs.

    .venv/bin/python -m bench.bench_sessionize [events]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

GAP_MINUTES = 30
EVENT_TYPES = ["page_view", "page_view", "page_view", "click", "search", "add_to_cart", "purchase"]

DUCKDB_SESSIONIZE = """
WITH parties AS (
    SELECT *,
        CASE WHEN user_id IS NOT NULL THEN 'user:' || user_id ELSE 'session:' || session_id END AS party_key
    FROM read_parquet('{path}')
),
starts AS (
    SELECT *,
        CASE WHEN lag(event_time) OVER w IS NULL
               OR epoch_us(event_time) - epoch_us(lag(event_time) OVER w) > {gap_us}
             THEN event_time END AS _start
    FROM parties
    WINDOW w AS (PARTITION BY party_key ORDER BY event_time, event_id)
),
sessions AS (
    SELECT * EXCLUDE (_start),
        max(_start) OVER (PARTITION BY party_key ORDER BY event_time, event_id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_start
    FROM starts
)
SELECT *, substr(sha256(party_key || '|' || CAST(epoch_ms(session_start) AS VARCHAR)), 1, 32) AS session_key
FROM sessions
"""


def write_events(path: Path, n_events: int, seed: int = 7) -> None:
    """``n_events`` events of ~n/60 users (10% anonymous) over 3 days, bursty like real sessions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    start = datetime(2024, 3, 8, tzinfo=UTC)
    rows: dict[str, list[Any]] = {"event_id": [], "event_time": [], "event_type": [], "session_id": [], "user_id": []}
    users = max(1, n_events // 60)
    while len(rows["event_id"]) < n_events:
        u = rng.randrange(users)
        t = start + timedelta(seconds=rng.uniform(0, 3 * 86_400))
        for _ in range(rng.randint(1, 12)):
            rows["event_id"].append(f"e{len(rows['event_id']):09d}")
            rows["event_time"].append(t)
            rows["event_type"].append(rng.choice(EVENT_TYPES))
            rows["session_id"].append(f"c{u}-{t:%d}")
            rows["user_id"].append(None if u % 10 == 0 else f"u{u}")
            t += timedelta(minutes=rng.expovariate(1 / 8))
    table = pa.table({**rows, "event_time": pa.array(rows["event_time"], pa.timestamp("ms", tz="UTC"))}).slice(
        0, n_events
    )
    pq.write_table(table, str(path))


def _best_of(runs: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _spark(path: Path, runs: int) -> dict[str, Any]:
    from glue_jobs.spark_session import local_spark_session
    from glue_jobs.transforms.clickstream import sessionize

    t0 = time.perf_counter()
    spark = local_spark_session("bench-sessionize")
    startup = time.perf_counter() - t0

    def once() -> None:
        # The noop sink computes every row and column without the cost of writing them anywhere.
        sessionize(spark.read.parquet(str(path)), GAP_MINUTES).write.format("noop").mode("overwrite").save()

    warmup = _best_of(1, once)
    seconds = _best_of(runs, once)
    keys = {
        r.session_key for r in sessionize(spark.read.parquet(str(path)), GAP_MINUTES).select("session_key").collect()
    }
    return {"startup_s": startup, "warmup_s": warmup, "seconds": seconds, "keys": keys}


def _duckdb(path: Path, runs: int, threads: int) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    sql = DUCKDB_SESSIONIZE.format(path=path, gap_us=GAP_MINUTES * 60 * 1_000_000)

    def once() -> None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE sessions AS {sql}")

    seconds = _best_of(runs, once)
    keys = {k for (k,) in con.execute("SELECT DISTINCT session_key FROM sessions").fetchall()}
    con.close()
    return {"seconds": seconds, "keys": keys}


def run(n_events: int = 300_000, runs: int = 2) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        write_events(path, n_events)
        spark = _spark(path, runs)
        duck = _duckdb(path, runs, threads=2)  # local[2]: the same two cores
    if spark["keys"] != duck["keys"]:
        raise RuntimeError("Spark and DuckDB disagree on the sessions: the comparison would be meaningless")
    spark_rate = n_events / spark["seconds"]
    duck_rate = n_events / duck["seconds"]
    return {
        "events": n_events,
        "sessions": len(spark["keys"]),
        "spark_startup_s": round(spark["startup_s"], 2),
        "spark_warmup_s": round(spark["warmup_s"], 2),
        "spark_s": round(spark["seconds"], 3),
        "spark_events_per_s": round(spark_rate),
        "duckdb_s": round(duck["seconds"], 3),
        "duckdb_events_per_s": round(duck_rate),
        "duckdb_over_spark": round(duck_rate / spark_rate, 2),
        "sessions_agree": True,
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000), indent=2))
