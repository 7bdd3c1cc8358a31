#!/usr/bin/env python3
"""CDK entry point: ``cdk synth -c env=dev|prod [-c account=... -c region=...]``."""

from __future__ import annotations

import os

from aws_cdk import App, Environment

from platform_core.config import load_config
from stacks.compliance import attach_rule_packs
from stacks.platform import build_platform


def _truthy(value: object) -> bool:
    return str(value).lower() in {"1", "true", "yes"}


def main() -> None:
    app = App()
    config = load_config(
        str(app.node.try_get_context("env") or "dev"),
        destroy_data_on_teardown=_truthy(app.node.try_get_context("destroyDataOnTeardown")),
    )
    # Account and region: explicit context wins, then the CDK CLI's default environment.
    env = Environment(
        account=app.node.try_get_context("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"),
        region=app.node.try_get_context("region") or os.environ.get("CDK_DEFAULT_REGION") or "us-east-1",
    )
    build_platform(app, config, env)
    attach_rule_packs(app)
    app.synth()


if __name__ == "__main__":
    main()
