"""Helpers for testing one stack on its own: synthesise, scan with cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack

from platform_core.config import PlatformConfig, load_config
from stacks.compliance import rule_packs

ACCOUNT = "123456789012"
REGION = "eu-west-1"
# cdk.json's feature flags plus what the CLI adds (path metadata), so templates match `cdk synth`.
CDK_CONTEXT = {
    **json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"],
    "aws:cdk:enable-path-metadata": True,
}

# The cfn-lint of this virtualenv (a global one may be older and lack CDK template detection).
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def build_stack(
    factory: Callable[[App, PlatformConfig, Environment], Stack], env_name: str = "dev", region: str = REGION
) -> Stack:
    """``factory(app, config, env)`` creates the stack under test in an app with cdk.json's flags."""
    app = App(context={**CDK_CONTEXT, "env": env_name})
    return factory(app, load_config(env_name), Environment(account=ACCOUNT, region=region))


def nag_findings(stack: Stack) -> list[str]:
    """Open cdk-nag findings of every pack the platform runs (empty when compliant)."""
    findings = []
    for pack in rule_packs(stack):
        for violation in pack.validate_scope(stack).violations:
            paths = [r.construct_path for r in violation.violating_resources]
            findings.append(f"{violation.rule_name}: {paths}")
    return findings


def cfn_lint_findings(stack: Stack) -> list[str]:
    """cfn-lint (with informational checks) over the stack's template."""
    # The template as the cloud assembly has it (with CDK metadata), exactly what `cdk synth` writes.
    app = stack.node.root
    assert isinstance(app, App)
    template: dict[str, Any] = app.synth().get_stack_artifact(stack.artifact_id).template
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{stack.stack_name}.template.json"
        path.write_text(json.dumps(template))
        result = subprocess.run(
            [CFN_LINT, "--include-checks", "I", "--format", "parseable", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    return [line for line in result.stdout.splitlines() if line.strip()]
