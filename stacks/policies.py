"""Removal policies derived from the typed configuration."""

from __future__ import annotations

from aws_cdk import RemovalPolicy

from platform_core.config import PlatformConfig


def data_removal_policy(config: PlatformConfig) -> RemovalPolicy:
    """RETAIN for anything that holds data, unless dev explicitly opted in to teardown."""
    if config.destroy_data_on_teardown and not config.is_production:
        return RemovalPolicy.DESTROY
    return RemovalPolicy.RETAIN
