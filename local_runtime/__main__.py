"""``python -m local_runtime`` (``make demo``): the whole platform on an embedded AWS.

make demo DEMO_ARGS="--clickstream events.ndjson --cdc changes.jsonl --camera URL --out DIR"
"""

from __future__ import annotations

import argparse
import shutil
import sys
import traceback
from pathlib import Path

from local_runtime.inputs import DEMO_EVENTS_PER_USER
from local_runtime.run import DemoOptions, run_demo


def parse_args(argv: list[str]) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="make demo", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clickstream", type=Path, help="NDJSON file, one clickstream event per line")
    parser.add_argument("--cdc", type=Path, help="JSONL file, one DMS Kinesis-target record per line")
    parser.add_argument(
        "--camera", action="append", default=[], help="HLS playlist URL (repeatable), read until #EXT-X-ENDLIST"
    )
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output/)")
    parser.add_argument("--users", type=int, default=1000, help="generated users when no files are given")
    parser.add_argument("--months", type=int, default=6, help="months of generated history")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    parser.add_argument(
        "--events-per-user",
        type=float,
        default=DEMO_EVENTS_PER_USER,
        help=f"generated signed-in clickstream events per user over the window (default {DEMO_EVENTS_PER_USER:g})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    for path in (args.clickstream, args.cdc):
        if path is not None and not path.is_file():
            parser.error(f"{path}: no such file")
    return DemoOptions(
        clickstream_file=args.clickstream,
        cdc_file=args.cdc,
        cameras=tuple(args.camera),
        out=args.out,
        users=args.users,
        months=args.months,
        seed=args.seed,
        events_per_user=args.events_per_user,
        quiet=args.quiet,
    )


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    if options.out.exists():
        shutil.rmtree(options.out)
    try:
        summary = run_demo(options)
    except Exception as error:  # a failed stage: say which, and exit non-zero
        traceback.print_exc()
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    print(f"\nsummary: {options.out / 'summary.json'}\nreport:  {options.out / 'report.html'}")
    if summary.get("lost", 0):
        print(f"error: {summary['lost']} records were lost", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
