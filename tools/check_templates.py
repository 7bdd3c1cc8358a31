"""Scan a synthesised cloud assembly: cfn-lint every template, count stacks and nag acknowledgments.

``cdk synth`` has already failed if any cdk-nag finding is open; this adds cfn-lint (errors,
warnings and informational checks) and prints the figures ``make test`` reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The cfn-lint of this virtualenv (a global one may be older and lack CDK template detection).
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")


def count_acknowledgments(template: dict[str, object]) -> int:
    """Acknowledged findings written into resource Metadata (``cdk_nag.rules_to_suppress``)."""
    resources = template.get("Resources", {})
    assert isinstance(resources, dict)
    return sum(
        len(resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []))
        for resource in resources.values()
    )


def main(assembly_dir: str) -> int:
    root = Path(assembly_dir)
    templates = sorted(root.glob("*.template.json"))
    if not templates:
        print(f"error: no templates in {root}; did cdk synth run?", file=sys.stderr)
        return 2
    acknowledged = sum(count_acknowledgments(json.loads(t.read_text())) for t in templates)
    result = subprocess.run(
        [CFN_LINT, "--include-checks", "I", "--format", "parseable", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = [line for line in result.stdout.splitlines() if line.strip()]
    for line in findings:
        print(line)
    if result.returncode not in (0, *range(2, 32)) or result.stderr.strip():
        print(result.stderr, file=sys.stderr)
    print(
        f"scan {root.name}: {len(templates)} stacks synthesised; cdk-nag: 0 open findings, "
        f"{acknowledged} acknowledged with reasons; cfn-lint: {len(findings)} findings"
    )
    return 1 if findings or result.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
