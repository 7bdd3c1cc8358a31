"""Composition of the whole platform: which stacks exist and how they are wired."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Environment, Stack, Tags

from platform_core.config import PlatformConfig
from stacks.clickstream_stack import ClickstreamStack
from stacks.data_lake_stack import DataLakeStack


@dataclass(frozen=True)
class Platform:
    data_lake: DataLakeStack
    clickstream: ClickstreamStack

    @property
    def stacks(self) -> list[Stack]:
        return [self.data_lake, self.clickstream]


def build_platform(app: App, config: PlatformConfig, env: Environment) -> Platform:
    """Create every stack of one environment in ``app``."""
    prefix = "".join(part.capitalize() for part in config.resource_prefix.split("-"))
    data_lake = DataLakeStack(app, f"{prefix}DataLake", config=config, env=env)
    clickstream = ClickstreamStack(app, f"{prefix}Clickstream", config=config, env=env)
    clickstream.add_dependency(data_lake)
    platform = Platform(data_lake=data_lake, clickstream=clickstream)
    for stack in platform.stacks:
        Tags.of(stack).add("platform", config.prefix)
        Tags.of(stack).add("environment", config.env_name)
    return platform
