"""The stateful resources of the synthesised ``prod`` platform, by stack: the checked-in list.

A stateful resource whose logical id changes is *replaced* by CloudFormation: a new, empty bucket,
table or stream, and the old one orphaned (retained) or deleted. So the logical ids are pinned in
``tests/reliability/stateful_ids.json`` and a change to them must be made on purpose::

    .venv/bin/python -m reliability.stateful_ids > tests/reliability/stateful_ids.json

(synthesises the ``prod`` platform with cdk.json's context, as ``tests/infra`` does; ~20 s).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reliability.templates import Templates, stateful_ids

ROOT = Path(__file__).resolve().parents[1]
CHECKED_IN = ROOT / "tests" / "reliability" / "stateful_ids.json"
REGENERATE = ".venv/bin/python -m reliability.stateful_ids > tests/reliability/stateful_ids.json"
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def synthesize(env_name: str = "prod") -> Templates:
    """Stack name -> template of every stack of the platform, as ``cdk synth`` builds them."""
    from aws_cdk import App, Environment
    from aws_cdk.assertions import Template

    from platform_core.config import load_config
    from stacks.platform import build_platform

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(context={**context, "env": env_name})
    platform = build_platform(app, load_config(env_name), Environment(account=ACCOUNT, region=REGION))
    return {stack.stack_name: Template.from_stack(stack).to_json() for stack in platform.stacks}


def checked_in() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(CHECKED_IN.read_text())
    return data


def render(ids: dict[str, Any]) -> str:
    return json.dumps(ids, indent=2, sort_keys=True) + "\n"


def main() -> int:
    sys.stdout.write(render(stateful_ids(synthesize("prod"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
