"""Write a synthetic world to a folder: ``python -m datagen --users 5000 --out DIR``.

Files written (the first two feed ``make demo DEMO_ARGS="--clickstream ... --cdc ..."``):

- ``clickstream.ndjson``    clickstream events, one JSON per line (with any duplicates/bad lines)
- ``cdc.jsonl``             DMS Kinesis-target records for the ``subscriptions`` table
- ``training_table.parquet``  user_id, cutoff_time, label and observable features
- ``truth.parquet``         user_id, cutoff_time, true churn probability (the oracle)
- ``manifest.json``         the settings and the counts of everything above
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from datagen.clickstream import write_ndjson
from datagen.config import GeneratorConfig
from datagen.dirty import dirty_cdc, dirty_clickstream
from datagen.world import build_world


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m datagen", description="Write a synthetic world to a folder.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=GeneratorConfig.start)
    parser.add_argument("--months", type=int, default=GeneratorConfig.months)
    parser.add_argument("--events-per-user", type=float, default=GeneratorConfig.events_per_user)
    parser.add_argument("--duplicates", type=int, default=0, help="clickstream events resent (same event_id)")
    parser.add_argument("--bad", type=int, default=0, help="bad clickstream lines mixed in")
    parser.add_argument("--cdc-duplicates", type=int, default=0)
    parser.add_argument("--cdc-bad", type=int, default=0)
    parser.add_argument("--before-image", choices=["all", "pk-only", "none"], default="all")
    return parser.parse_args(argv)


def write_world(args: argparse.Namespace) -> dict[str, Any]:
    config = GeneratorConfig(
        n_users=args.users,
        seed=args.seed,
        start=args.start,
        months=args.months,
        events_per_user=args.events_per_user,
    )
    world = build_world(config)
    args.out.mkdir(parents=True, exist_ok=True)
    clicks = dirty_clickstream(world.clickstream(), duplicates=args.duplicates, bad=args.bad, seed=args.seed)
    records = world.cdc_records(before_image=args.before_image)
    cdc = dirty_cdc(records, duplicates=args.cdc_duplicates, bad=args.cdc_bad, seed=args.seed)
    write_ndjson(args.out / "clickstream.ndjson", clicks.lines)
    write_ndjson(args.out / "cdc.jsonl", cdc.lines)
    table = world.training_table()
    table.to_parquet(args.out / "training_table.parquet", index=False)
    world.truth().to_parquet(args.out / "truth.parquet", index=False)
    manifest = {
        "config": {k: str(v) if isinstance(v, date) else v for k, v in asdict(config).items()},
        "users": len(world.population),
        "clickstream": clicks.manifest(),
        "cdc": {**cdc.manifest(), "operations": dict(Counter(r["metadata"]["operation"] for r in records))},
        "training_rows": len(table),
        "churn_rate": world.churn_rate,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    print(json.dumps(write_world(parse_args(argv)), indent=2))


if __name__ == "__main__":
    main()
