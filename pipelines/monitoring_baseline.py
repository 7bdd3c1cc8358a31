"""Processing step: the training set as the requests the endpoint receives, for Model Monitor's baseline.

SageMaker Model Monitor's data-quality analyzer compares every hour of captured requests with a
baseline (``statistics.json`` and ``constraints.json``) that it computes from a dataset of the same
shape: the same columns, the same JSON types. The endpoint receives one flat JSON object per request,
``user_id`` and every feature value (``lambdas/inference_api``: ``UserFeatures.model_input``), so the
baseline dataset is the training table (:mod:`platform_core.schemas.training`) without its cutoff
time and label, one JSON object per line, each value as the API sends it:

* integers stay integers, also in columns with missing values (read with Arrow, never through a
  pandas float column), so that the analyzer infers ``Integral`` where the requests carry integers;
* a missing value (null or NaN) is ``null``, as the API sends a feature the online store lacks;
* dates and times are ISO-8601 strings.

==========================  ==================================  ===============
what                        default                             argument
==========================  ==================================  ===============
training set (in, Parquet)  /opt/ml/processing/input            --input-dir
baseline dataset (out)      /opt/ml/processing/dataset          --output-dir
==========================  ==================================  ===============

The table is streamed batch by batch: the training set may not fit in the instance's memory as
Python objects. Runs inside the SageMaker framework container (Python 3.10).
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import logging
import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (``python monitoring_baseline.py``, as SageMaker processing jobs start scripts):
    # make the folder above ``pipelines/`` importable so that ``from platform_core ...`` works.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
import pyarrow.dataset as pads

from platform_core.schemas.training import KEY, NON_FEATURE_COLUMNS

LOG = logging.getLogger(__name__)
PROCESSING = "/opt/ml/processing"
DATASET_FILE = "baseline.jsonl"
BATCH_ROWS = 50_000


class BaselineDatasetError(ValueError):
    """The training set cannot give a baseline; the reason says why."""


def request_columns(schema: pa.Schema) -> list[str]:
    """``user_id`` first, then every feature in the table's order: the keys of one request."""
    if KEY not in schema.names:
        raise BaselineDatasetError(f"the training set has no {KEY!r} column (columns: {schema.names})")
    features = [name for name in schema.names if name not in NON_FEATURE_COLUMNS]
    if not features:
        raise BaselineDatasetError("the training set has no feature column")
    return [KEY, *features]


def json_value(value: Any) -> Any:
    """A value as the inference API puts it in a request body."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def request_records(batches: Iterable[pa.RecordBatch]) -> Iterator[dict[str, Any]]:
    for batch in batches:
        for row in batch.to_pylist():
            yield {name: json_value(value) for name, value in row.items()}


def write_dataset(input_dir: Path, output_dir: Path) -> int:
    """Write ``baseline.jsonl`` under ``output_dir`` from the Parquet files under ``input_dir``; the row count."""
    files = sorted(p for p in input_dir.rglob("*.parquet") if p.is_file())
    if not files:
        raise BaselineDatasetError(f"no .parquet file under {input_dir}")
    table = pads.dataset([str(p) for p in files], format="parquet")
    columns = request_columns(table.schema)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = 0
    with (output_dir / DATASET_FILE).open("w", encoding="utf-8") as out:
        for record in request_records(table.to_batches(columns=columns, batch_size=BATCH_ROWS)):
            out.write(json.dumps(record, separators=(",", ":"), allow_nan=False))
            out.write("\n")
            rows += 1
    if rows == 0:
        raise BaselineDatasetError("the training set has no row: a baseline of nothing would accept anything")
    LOG.info("baseline dataset: %d rows, columns %s", rows, columns)
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path(f"{PROCESSING}/input"))
    parser.add_argument("--output-dir", type=Path, default=Path(f"{PROCESSING}/dataset"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    write_dataset(args.input_dir, args.output_dir)


if __name__ == "__main__":
    main()
