"""What every stage of the local run shares: the embedded AWS, the config, names and folders."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime.embedded_aws import EmbeddedAws
from platform_core.config import PlatformConfig
from platform_core.names import Names


@dataclass
class Progress:
    """One line per event on stderr: stage, counts, elapsed time since the run started."""

    started: float = field(default_factory=time.monotonic)
    quiet: bool = False

    def say(self, stage: str, message: str) -> None:
        if not self.quiet:
            elapsed = time.monotonic() - self.started
            print(f"[{elapsed:7.1f}s] {stage:<12} {message}", file=sys.stderr, flush=True)


@dataclass
class RunContext:
    aws: EmbeddedAws
    config: PlatformConfig
    out: Path
    progress: Progress
    seed: int = 7
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> Names:
        return Names(self.config)

    def bucket(self, purpose: str) -> str:
        return self.names.bucket(purpose, account=self.aws.account, region=self.aws.region)

    def stream_arn(self, stream_name: str) -> str:
        return f"arn:aws:kinesis:{self.aws.region}:{self.aws.account}:stream/{stream_name}"

    @property
    def lake(self) -> Path:
        return self.out / "lake"

    @property
    def errors(self) -> Path:
        return self.out / "errors"

    def write_summary(self) -> Path:
        path = self.out / "summary.json"
        payload = {**self.summary, "skipped": self.skipped}
        path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default) + "\n")
        return path


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
