"""Synthetic worlds shared by the datagen tests (built once per module: generation is the slow part)."""

from __future__ import annotations

from typing import Any

import pytest

from datagen.config import GeneratorConfig
from datagen.world import SyntheticWorld, build_world

SMALL = GeneratorConfig(n_users=400, seed=21)


@pytest.fixture(scope="package")
def world() -> SyntheticWorld:
    return build_world(SMALL)


@pytest.fixture(scope="package")
def events(world: SyntheticWorld) -> list[dict[str, Any]]:
    return world.clickstream()


@pytest.fixture(scope="package")
def cdc(world: SyntheticWorld) -> list[dict[str, Any]]:
    return world.cdc_records()


@pytest.fixture(scope="package")
def big_world() -> SyntheticWorld:
    """Enough users for rates and trends to show through the noise (no clickstream: that is slow)."""
    return build_world(GeneratorConfig(n_users=3000, seed=5))
