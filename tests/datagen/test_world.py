"""The synthetic world: reproducible, with a known churn model and a minority of churners."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datagen.config import GeneratorConfig
from datagen.population import generate_population
from datagen.subscriptions import FIRST_RENEWAL_TENURE_DAYS
from datagen.truth import TRUTH
from datagen.world import SyntheticWorld, build_world
from tests.datagen.conftest import SMALL


def test_same_seed_gives_the_same_world(world: SyntheticWorld, events: list[dict], cdc: list[dict]) -> None:
    # Given a second world built from the same configuration
    again = build_world(SMALL)
    # Then every output is identical, event ids included
    assert again.clickstream() == events
    assert again.cdc_records() == cdc
    pd.testing.assert_frame_equal(again.training_table(), world.training_table())
    pd.testing.assert_frame_equal(again.truth(), world.truth())


def test_another_seed_gives_another_world(world: SyntheticWorld) -> None:
    other = build_world(GeneratorConfig(n_users=SMALL.n_users, seed=SMALL.seed + 1))
    assert not np.allclose(other.population.engagement, world.population.engagement)
    assert other.truth()["true_churn_probability"].tolist() != world.truth()["true_churn_probability"].tolist()


def test_changing_event_volume_does_not_change_who_churns() -> None:
    # Given two worlds that differ only in clickstream volume
    quiet = build_world(GeneratorConfig(n_users=200, seed=3, events_per_user=5))
    busy = build_world(GeneratorConfig(n_users=200, seed=3, events_per_user=50))
    # Then the subscription histories, and so the labels, are the same (independent random streams)
    pd.testing.assert_frame_equal(quiet.history.renewals, busy.history.renewals)
    assert len(busy.clickstream()) > 5 * len(quiet.clickstream())


def test_churners_are_a_minority_of_renewals(big_world: SyntheticWorld) -> None:
    renewals = big_world.history.renewals
    assert 0.10 <= big_world.churn_rate <= 0.20
    # and the realised rate agrees with the true probabilities (the labels are draws from them)
    assert abs(renewals["true_churn_probability"].mean() - big_world.churn_rate) < 0.015


def test_true_probability_is_the_known_logistic_model(big_world: SyntheticWorld) -> None:
    # Given the renewals and the users' latent traits
    renewals = big_world.history.renewals
    index = pd.Index(big_world.population.user_ids).get_indexer(renewals["user_id"])
    # When the documented model is evaluated on them
    expected = TRUTH.probability(
        activity=renewals["activity"].to_numpy(),
        previous_activity=renewals["previous_activity"].to_numpy(),
        satisfaction=big_world.population.satisfaction[index],
        price_sensitivity=big_world.population.price_sensitivity[index],
        price=renewals["price"].to_numpy(),
        price_increased=renewals["price_increased"].to_numpy(),
        first_renewal=renewals["tenure_days"].to_numpy() < FIRST_RENEWAL_TENURE_DAYS,
        tenure_days=renewals["tenure_days"].to_numpy(),
    )
    # Then it gives exactly the stored truth
    np.testing.assert_allclose(renewals["true_churn_probability"].to_numpy(), expected, rtol=1e-12)


def test_latent_traits_move_churn_the_documented_way(big_world: SyntheticWorld) -> None:
    renewals = big_world.history.renewals
    declining = renewals["activity"] < renewals["previous_activity"] - 0.5
    active = renewals["activity"] > 1.0
    assert renewals.loc[declining, "churned"].mean() > 2 * renewals.loc[~declining, "churned"].mean()
    assert renewals.loc[active, "churned"].mean() < 0.5 * big_world.churn_rate
    rises = renewals[renewals["price_increased"]]
    assert len(rises) > 100  # the simulated price rise reached people


def test_renewals_are_monthly_and_cutoffs_precede_them(big_world: SyntheticWorld) -> None:
    renewals = big_world.history.renewals
    config = big_world.config
    lead = pd.Timedelta(days=config.lead_days)
    renewal_times = pd.to_datetime(renewals["renewal_date"]).dt.tz_localize("UTC")
    assert (renewal_times - renewals["cutoff_time"] == lead).all()
    assert renewals["cutoff_time"].min() >= pd.Timestamp(config.start_time)
    assert (renewal_times <= pd.Timestamp(config.end_time)).all()
    # consecutive renewals of a user are a calendar month apart, or more after a win-back
    dates = pd.to_datetime(renewals.sort_values(["user_id", "renewal_date"])["renewal_date"])
    gaps = (
        dates.groupby(renewals.sort_values(["user_id", "renewal_date"])["user_id"].to_numpy()).diff().dropna().dt.days
    )
    assert gaps.min() >= 28
    assert gaps.between(28, 31).mean() > 0.97


def test_population_mixes_plans_devices_and_new_signups() -> None:
    population = generate_population(GeneratorConfig(n_users=2000, seed=9))
    assert set(population.plan) == {"basic", "standard", "premium"}
    assert len(set(population.device)) == 4
    assert 0.2 < population.is_new_signup.mean() < 0.3
    # engaged users pick the premium plan more often than disengaged ones
    premium = np.array([p == "premium" for p in population.plan])
    assert premium[population.engagement > 1].mean() > 2 * premium[population.engagement < -1].mean()
    assert population.user_ids[0] == "u-0001"


def test_configuration_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="n_users"):
        GeneratorConfig(n_users=0)
    with pytest.raises(ValueError, match="unknown plans"):
        GeneratorConfig(price_change={"platinum": 99.0})
