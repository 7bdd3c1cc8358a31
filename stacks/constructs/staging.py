"""Content-addressed, atomic staging of asset folders.

Each folder is built in a private temporary directory and then renamed into place under a name
derived from its content, so synths running in parallel (test workers, a CLI synth beside a test
run) never delete or read each other's half-written folders, and the asset hash still depends
only on the files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def stage_tree(staging_root: Path, name: str, populate: Callable[[Path], None]) -> Path:
    """``populate(folder)`` fills a fresh folder; returns ``staging_root/<name>-<content hash>``."""
    staging_root.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=staging_root, prefix=f".{name}-"))
    try:
        populate(temporary)
        final = staging_root / f"{name}-{tree_digest(temporary)[:16]}"
        if not final.exists():
            try:
                os.rename(temporary, final)
            except OSError:  # another process staged the same content first: theirs is identical
                if not final.exists():
                    raise
        return final
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
