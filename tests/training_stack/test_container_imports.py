"""What the pipeline's scripts import from the ground package inside the SageMaker container.

The framework container runs Python 3.10, and parts of platform_core need 3.11 (``datetime.UTC``
in ``platform_core.schemas.features``). The scripts share the training table's contract with the
Glue job through ``platform_core.schemas.training``, which is kept importable there; this test
keeps it that way by listing every ground module the scripts load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from stacks.constructs.training_pipeline import REPO_ROOT

SCRIPTS = ("preprocess", "train", "evaluate", "inference")
PROBE = (
    "import importlib, json, sys\n"
    f"for script in {SCRIPTS!r}:\n"
    "    importlib.import_module(f'pipelines.{script}')\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'platform_core')))\n"
)


def test_the_scripts_load_only_the_training_contract_from_the_ground_package() -> None:
    # When every script the containers start is imported in a fresh interpreter
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr
    # Then the ground modules they load are the contract and the schema language, nothing more
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "platform_core",
        "platform_core.schema",
        "platform_core.schemas",
        "platform_core.schemas.training",
    ]
