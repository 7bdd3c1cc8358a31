"""One synthetic world: the entry point most callers need.

>>> world = build_world(GeneratorConfig(n_users=5000, seed=1))
>>> events = world.clickstream()            # clickstream events (dicts), by time
>>> records = world.cdc_records()           # DMS Kinesis-target records, in commit order
>>> table = world.training_table()          # user_id, cutoff_time, label, features
>>> truth = world.truth()                   # user_id, cutoff_time, true_churn_probability
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from datagen.cdc import BeforeImage, dms_records
from datagen.clickstream import generate_clickstream
from datagen.config import GeneratorConfig
from datagen.population import Population, generate_population
from datagen.subscriptions import SubscriptionHistory, simulate_subscriptions
from datagen.training_table import observable_training_table, true_probabilities


@dataclass(frozen=True)
class SyntheticWorld:
    config: GeneratorConfig
    population: Population
    history: SubscriptionHistory

    def clickstream(self) -> list[dict[str, Any]]:
        return generate_clickstream(self.config, self.population, self.history)

    def cdc_records(
        self, *, before_image: BeforeImage = "all", extra_columns_from: datetime | None = None
    ) -> list[dict[str, Any]]:
        return dms_records(self.history.changes, before_image=before_image, extra_columns_from=extra_columns_from)

    def training_table(self) -> pd.DataFrame:
        return observable_training_table(self.config, self.population, self.history)

    def truth(self) -> pd.DataFrame:
        return true_probabilities(self.history)

    @property
    def churn_rate(self) -> float:
        """Share of renewals that did not happen."""
        return float(self.history.renewals["churned"].mean())


def build_world(config: GeneratorConfig | None = None) -> SyntheticWorld:
    config = config or GeneratorConfig()
    population = generate_population(config)
    return SyntheticWorld(config, population, simulate_subscriptions(config, population))
