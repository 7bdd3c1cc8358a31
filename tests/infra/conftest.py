"""Synthesised platforms shared by the infrastructure tests (one jsii process per test worker)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from platform_core.config import load_config
from stacks.platform import Platform, build_platform

# Infrastructure tests run on one xdist worker so the synthesised apps below are built once.
pytestmark = pytest.mark.xdist_group("cdk")

ACCOUNT = "123456789012"
# The same feature flags as `cdk synth`, so tests see the templates the CLI produces.
CDK_CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


@cache
def platform_for(env_name: str, region: str = "eu-west-1", destroy: bool = False) -> Platform:
    app = App(context={**CDK_CONTEXT, "env": env_name})
    config = load_config(env_name, destroy_data_on_teardown=destroy)
    return build_platform(app, config, Environment(account=ACCOUNT, region=region))


@cache
def template_for(env_name: str, stack: str, region: str = "eu-west-1", destroy: bool = False) -> Template:
    platform = platform_for(env_name, region, destroy)
    return Template.from_stack(getattr(platform, stack))


@pytest.fixture
def template() -> Callable[..., Template]:
    return template_for


@pytest.fixture
def platform() -> Callable[..., Platform]:
    return platform_for
