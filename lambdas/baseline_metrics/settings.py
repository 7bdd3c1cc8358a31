"""The function's settings, read once from its environment variables."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    model_package_group: str  # MODEL_PACKAGE_GROUP: the churn model's group (Names.model_package_group)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        group = env.get("MODEL_PACKAGE_GROUP", "")
        if not group:
            raise ValueError("missing environment variable: MODEL_PACKAGE_GROUP")
        return cls(model_package_group=group)


@functools.cache
def get_settings() -> Settings:
    return Settings.from_env(os.environ)
