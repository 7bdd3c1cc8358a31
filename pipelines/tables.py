"""Reading and writing the training table, wherever it lives (a folder, a file, Athena).

The training table is ``user_id`` (string), ``cutoff_time`` (timestamp), ``label`` (0/1) and
feature columns: the contract of :mod:`platform_core.schemas.training`, which the Glue training-set
job writes. Inside SageMaker a processing or training job sees its inputs as local folders
(``/opt/ml/processing/input``, ``SM_CHANNEL_TRAIN``...), so everything here reads folders of
Parquet or CSV files; Athena is reached through awswrangler only when asked to, and imported
only then (it is heavy, and absent from slim containers).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pandas as pd

from platform_core.schemas.training import CUTOFF_TIME, KEY, LABEL

TIME = CUTOFF_TIME
__all__ = ["KEY", "LABEL", "TIME", "TableError", "env_path", "normalise", "read_athena", "read_table", "write_table"]


class TableError(ValueError):
    """A training table that cannot be used; the reason says why."""


def env_path(variable: str, default: str) -> Path:
    """A path from a SageMaker environment variable (``SM_MODEL_DIR``...) or its default."""
    return Path(os.environ.get(variable, default))


def read_table(location: Path) -> pd.DataFrame:
    """Every Parquet and CSV file under ``location`` (a folder or one file), as one table."""
    if location.is_file():
        files = [location]
    else:
        files = sorted(p for p in location.rglob("*") if p.suffix in (".parquet", ".csv") and p.is_file())
    if not files:
        raise TableError(f"no .parquet or .csv file under {location}")
    frames = [pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p) for p in files]
    return normalise(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])


def read_athena(query: str, *, database: str, workgroup: str = "primary") -> pd.DataFrame:
    """The result of an Athena query (used when the features live in the lake, not in files)."""
    import awswrangler as wr

    return normalise(wr.athena.read_sql_query(query, database=database, workgroup=workgroup, ctas_approach=False))


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Check the contract columns and give them their types: string id, UTC time, 0/1 label."""
    missing = [c for c in (KEY, TIME, LABEL) if c not in df.columns]
    if missing:
        raise TableError(f"the training table lacks column(s) {missing}")
    out = df.copy()
    if out[KEY].isna().any():
        raise TableError(f"{KEY} has {int(out[KEY].isna().sum())} null value(s)")
    out[KEY] = out[KEY].astype(str)
    out[TIME] = pd.to_datetime(out[TIME], utc=True)
    if out[TIME].isna().any():
        raise TableError(f"{TIME} has {int(out[TIME].isna().sum())} null value(s)")
    labels = pd.to_numeric(out[LABEL], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise TableError(f"{LABEL} must be 0 or 1 on every row")
    out[LABEL] = labels.astype("int64")
    return out


def write_table(df: pd.DataFrame, folder: Path, name: str, *, shards: int = 1) -> list[Path]:
    """The table as one Parquet file, or as ``shards`` files with each user's rows in one of them
    (so that S3's ``ShardedByS3Key`` can hand each training host its own part)."""
    folder.mkdir(parents=True, exist_ok=True)
    if shards <= 1:
        df.to_parquet(folder / f"{name}.parquet", index=False)
        return [folder / f"{name}.parquet"]
    shard_of = df[KEY].map(lambda user: zlib.crc32(str(user).encode()) % shards)
    paths = []
    for k in range(shards):
        path = folder / f"{name}-{k:05d}-of-{shards:05d}.parquet"
        df[shard_of == k].to_parquet(path, index=False)
        paths.append(path)
    return paths
