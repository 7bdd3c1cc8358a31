"""The migrator's settings, read once from the environment the stack gives the function.

What to migrate (cluster, secret, database, migrations) is not here: it arrives as properties of the
custom resource, so that a change of any of them is an Update that CloudFormation sends.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """The function's environment is malformed (a deployment error)."""


@dataclass(frozen=True)
class Settings:
    """Environment variables:

    - ``SECONDS_PER_MIGRATION`` (default 60): a migration is only started with at least this much
      time left, so that CloudFormation is always answered before the function times out.
    """

    seconds_per_migration: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        margin = env.get("SECONDS_PER_MIGRATION", "60")
        if not margin.isdigit():
            raise SettingsError(f"SECONDS_PER_MIGRATION must be a whole number of seconds, got {margin!r}")
        return cls(seconds_per_migration=float(margin))
