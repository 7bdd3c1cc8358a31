"""``make bench``: run every benchmark module in isolation, then write and print the results table.

    python -m bench [--only bench_parsers --only bench_avro] [--timeout SECONDS] [--out DIR] [--strict]

Writes ``results.json`` (every figure, its floor or peer, ratio, target and verdict, plus each
module's raw answer, wall and CPU time and peak memory) and ``results.md`` (the same as a table)
into ``bench/`` unless ``--out`` says otherwise. Exits 0 unless ``--strict`` is given and a
target failed or a module produced nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.runner import BENCH_DIR, markdown_modules, markdown_table, run_all, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="MODULE", help="e.g. bench_parsers")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per module (default: per module)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="folder for results.json and results.md")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails or a module errs")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    runs, figures, machine = run_all(args.only, timeout=args.timeout, out_dir=args.out)
    print(markdown_table(figures))
    print()
    print(markdown_modules(runs))
    counts = summary(figures)
    print(
        f"\n{counts['pass']} targets pass, {counts['fail']} fail, {counts['error']} rows without a value; "
        f"load average {machine['load_average_before']} -> {machine['load_average_after']}. "
        f"Written: {args.out / 'results.json'}, {args.out / 'results.md'}"
    )
    return 1 if args.strict and (counts["fail"] or counts["error"]) else 0


if __name__ == "__main__":
    sys.exit(main())
