"""Processing step: split the training table by time and fit the feature transform.

SageMaker Processing contract: inputs and outputs are local folders that the job maps to S3.

==========================  ======================================  =========================
what                        default                                 argument
==========================  ======================================  =========================
training table (in)         /opt/ml/processing/input                --input-dir
train split (out)           /opt/ml/processing/train                --train-dir
validation split (out)      /opt/ml/processing/validation           --validation-dir
test split (out)            /opt/ml/processing/test                 --test-dir
transform artifact (out)    /opt/ml/processing/transform            --transform-dir
==========================  ======================================  =========================

The split is by time, never random: rows are ordered by ``cutoff_time``; the earliest form the
training split, the next the validation split, the latest the test split; all rows sharing a
cutoff time land in the same split. A model is then always judged on a period after the one it
learnt from, as it will be in production. ``--label-horizon-days`` purges, from the earlier
split, rows whose label was only known after the next split begins (a label is known
``horizon`` days after its cutoff), so that no training label comes from the evaluation period.

The transform is fitted on the training split only and written as ``transform.json``: the same
file is applied by training, evaluation and the inference container. The training split is
written as ``--train-shards`` files (8 by default), each user's rows in one, so that training can
spread over as many instances (S3's ``ShardedByS3Key`` gives each instance its own files).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (``python preprocess.py``, as SageMaker processing jobs start scripts): make the
    # folder above ``pipelines/`` importable so that ``from pipelines ...`` works as in the tests.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from pipelines import feature_transform
from pipelines.tables import LABEL, TIME, TableError, read_athena, read_table, write_table

LOG = logging.getLogger(__name__)
PROCESSING = "/opt/ml/processing"
TRANSFORM_FILE = "transform.json"
REPORT_FILE = "preprocess_report.json"


@dataclass(frozen=True)
class TimeSplit:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_start: pd.Timestamp
    test_start: pd.Timestamp
    purged_rows: int

    def report(self) -> dict[str, Any]:
        parts = {"train": self.train, "validation": self.validation, "test": self.test}
        return {
            "validation_start": self.validation_start.isoformat(),
            "test_start": self.test_start.isoformat(),
            "purged_rows": self.purged_rows,
            "rows": {k: len(v) for k, v in parts.items()},
            "positive_rate": {k: float(v[LABEL].mean()) for k, v in parts.items()},
            "cutoff_range": {k: [v[TIME].min().isoformat(), v[TIME].max().isoformat()] for k, v in parts.items()},
        }


def time_split(
    df: pd.DataFrame,
    *,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    label_horizon_days: float = 0.0,
) -> TimeSplit:
    """Earliest cutoffs to train, later ones to validation, latest to test; no row in two splits."""
    if not (0 < validation_fraction < 1 and 0 < test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise ValueError("validation and test fractions must be in (0, 1) and leave rows for training")
    times = df[TIME].sort_values(kind="stable").reset_index(drop=True)
    n = len(times)
    validation_start = times.iloc[min(n - 1, int(n * (1 - validation_fraction - test_fraction)))]
    test_start = times.iloc[min(n - 1, int(n * (1 - test_fraction)))]
    if not times.iloc[0] < validation_start < test_start:
        raise TableError(
            f"the table's {n} row(s) span too few distinct cutoff times for a train/validation/test split by time"
        )
    horizon = pd.Timedelta(days=label_horizon_days)
    # A row belongs to the earlier split only if its label was known before the next split began.
    train_mask = df[TIME] + horizon < validation_start
    validation_mask = (df[TIME] >= validation_start) & (df[TIME] + horizon < test_start)
    test_mask = df[TIME] >= test_start
    train, validation, test = df[train_mask], df[validation_mask], df[test_mask]
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        if part.empty or part[LABEL].nunique() < 2:
            raise TableError(f"the {name} split has no rows or a single class: more data or other fractions needed")
    return TimeSplit(
        train=train.reset_index(drop=True),
        validation=validation.reset_index(drop=True),
        test=test.reset_index(drop=True),
        validation_start=validation_start,
        test_start=test_start,
        purged_rows=int(n - len(train) - len(validation) - len(test)),
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path(f"{PROCESSING}/input"))
    parser.add_argument("--train-dir", type=Path, default=Path(f"{PROCESSING}/train"))
    parser.add_argument("--validation-dir", type=Path, default=Path(f"{PROCESSING}/validation"))
    parser.add_argument("--test-dir", type=Path, default=Path(f"{PROCESSING}/test"))
    parser.add_argument("--transform-dir", type=Path, default=Path(f"{PROCESSING}/transform"))
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--label-horizon-days", type=float, default=0.0)
    parser.add_argument("--encoding", choices=["one_hot", "ordinal"], default="one_hot")
    # Training files, each user's rows in one: S3's ShardedByS3Key gives each training instance
    # its own files, so this must be at least the number of training instances.
    parser.add_argument("--train-shards", type=int, default=8)
    parser.add_argument("--max-categories", type=int, default=50)
    # Read the table from Athena instead of --input-dir (awswrangler is imported only then).
    parser.add_argument("--athena-query", default=None)
    parser.add_argument("--athena-database", default=None)
    parser.add_argument("--athena-workgroup", default="primary")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Read, split, fit and write; returns the report (also written beside the transform)."""
    if args.athena_query:
        if not args.athena_database:
            raise SystemExit("--athena-query needs --athena-database")
        table = read_athena(args.athena_query, database=args.athena_database, workgroup=args.athena_workgroup)
    else:
        table = read_table(args.input_dir)
    split = time_split(
        table,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        label_horizon_days=args.label_horizon_days,
    )
    transform = feature_transform.fit(split.train, encoding=args.encoding, max_categories=args.max_categories)
    write_table(split.train, args.train_dir, "train", shards=args.train_shards)
    write_table(split.validation, args.validation_dir, "validation")
    write_table(split.test, args.test_dir, "test")
    args.transform_dir.mkdir(parents=True, exist_ok=True)
    transform.save(args.transform_dir / TRANSFORM_FILE)
    report = {**split.report(), "features": transform.input_columns, "encoded_width": len(transform.feature_names)}
    (args.transform_dir / REPORT_FILE).write_text(json.dumps(report, indent=2), encoding="utf-8")
    LOG.info("time split: %s", json.dumps(report["rows"]))
    return report


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(parse_args(argv))


if __name__ == "__main__":
    main()
