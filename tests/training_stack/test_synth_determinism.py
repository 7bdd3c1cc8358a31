"""Two separate processes synthesise the same training stack template (asset hash and pipeline
definition included). Marked slow: the second process costs a full synth (~35 s of CPU here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from stacks.constructs.training_pipeline import bundle_bytes
from tests.training_stack.conftest import training_template

pytestmark = [pytest.mark.xdist_group("cdk"), pytest.mark.synth, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTH_SCRIPT = """
import json, sys
from aws_cdk.assertions import Template
from tests.infra.harness import build_stack
from tests.training_stack.conftest import training_factory
stack = build_stack(training_factory, "dev")
json.dump(Template.from_stack(stack).to_json(), sys.stdout, sort_keys=True)
"""


@pytest.fixture(scope="module", autouse=True)
def separate_synth(tmp_path_factory) -> Iterator[subprocess.Popen[bytes]]:
    """A second process synthesising the dev stack, started first so that it runs alongside the rest."""
    folder = tmp_path_factory.mktemp("synth")
    output, log = folder / "template.json", folder / "stderr.log"
    sources_before = bundle_bytes()
    # Another hash seed: set and dict iteration orders must not leak into the template.
    environment = {**os.environ, "PYTHONHASHSEED": "12345", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    # Files, not pipes: nobody reads while it runs, and a full pipe would stall it.
    with output.open("w") as out, log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", SYNTH_SCRIPT], cwd=REPO_ROOT, stdout=out, stderr=err, env=environment
        )
    process.output = output  # type: ignore[attr-defined]
    process.log = log  # type: ignore[attr-defined]
    process.sources_before = sources_before  # type: ignore[attr-defined]
    yield process
    if process.poll() is None:
        process.kill()


@pytest.fixture(scope="module")
def dev() -> Template:
    return training_template("dev")


def test_a_separate_process_synthesises_the_same_template(dev, separate_synth):
    # Given the dev stack synthesised in another process (another hash seed), When it finishes
    separate_synth.wait(timeout=600)
    assert separate_synth.returncode == 0, separate_synth.log.read_text()[-3000:]
    other = json.loads(separate_synth.output.read_text())
    if bundle_bytes() != separate_synth.sources_before:
        pytest.skip("pipelines/ or platform_core/ changed while the two processes synthesised")
    # Then its template is identical to this process's one, asset hashes and definition included
    assert other == dev.to_json()
