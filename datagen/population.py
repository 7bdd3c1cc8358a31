"""Users and their latent traits: what drives both their behaviour and their churn.

Traits are standard-normal scores (0 is the typical user), drawn independently so that each has a
clear meaning:

- ``engagement``: how much the user watches; drives sessions, watch time, purchases.
- ``trend``: whether that activity grows or decays month after month (at-risk users decay).
- ``satisfaction``: low values bring support and cancellation pages, searches, bad ratings.
- ``price_sensitivity``: high values bring plan/pricing page views and cheaper plans, and make a
  price rise hurt.

Nothing observable is stored here except ids, plan and device: the observable side is drawn from
these traits elsewhere, with noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from datagen.config import PLANS, GeneratorConfig, rng_for

DEVICES: tuple[str, ...] = ("tv", "web", "mobile", "tablet")
_DEVICE_WEIGHTS = np.array([0.4, 0.25, 0.28, 0.07])
# How far and how fast ``trend`` moves activity away from ``engagement``: the drift saturates at
# +-ACTIVITY_DRIFT_LIMIT (engagement does not grow or decay forever), and each month adds noise.
ACTIVITY_DRIFT_LIMIT = 1.5
ACTIVITY_DRIFT_RATE = 0.3
ACTIVITY_NOISE = 0.25


@dataclass(frozen=True)
class Population:
    """Latent traits as column arrays, one entry per user (index i is ``user_ids[i]``)."""

    user_ids: tuple[str, ...]
    engagement: np.ndarray
    trend: np.ndarray
    satisfaction: np.ndarray
    price_sensitivity: np.ndarray
    plan: tuple[str, ...]
    device: tuple[str, ...]
    # Subscription start: before ``config.start`` for users in the full load, inside the window
    # for new signups.
    signup: tuple[date, ...]
    is_new_signup: np.ndarray
    # Monthly activity shocks, one column per month index (``ACTIVITY_NOISE`` scale).
    activity_shocks: np.ndarray

    def __len__(self) -> int:
        return len(self.user_ids)

    def activity(self, i: int, month_index: int) -> float:
        """Latent activity level of user ``i`` in its ``month_index``-th month of the window.

        Month -1 is the month before the window (the "previous month" of the first renewal).
        """
        shock = self.activity_shocks[i, month_index + 1]
        drift = ACTIVITY_DRIFT_LIMIT * math.tanh(
            ACTIVITY_DRIFT_RATE * self.trend[i] * (month_index + 1) / ACTIVITY_DRIFT_LIMIT
        )
        return float(self.engagement[i] + drift + shock)


def user_id_for(index: int, n_users: int) -> str:
    """``u-0001``-style ids, zero-padded to the population size so that they sort."""
    width = max(4, len(str(n_users)))
    return f"u-{index + 1:0{width}d}"


def generate_population(config: GeneratorConfig) -> Population:
    """Draw every user's traits, plan, device and signup date."""
    rng = rng_for(config.seed, "population")
    n = config.n_users
    engagement = rng.standard_normal(n)
    trend = rng.standard_normal(n)
    satisfaction = rng.standard_normal(n)
    price_sensitivity = rng.standard_normal(n)

    # Engaged users pick bigger plans, price-sensitive users smaller ones (a softmax choice).
    utility = np.stack(
        [
            0.8 * price_sensitivity - 0.4 * engagement,
            np.zeros(n),
            0.6 * engagement - 0.8 * price_sensitivity - 0.5,
        ],
        axis=1,
    )
    gumbel = -np.log(-np.log(rng.random((n, len(PLANS)))))
    plan_index = np.argmax(utility + gumbel, axis=1)
    device_index = rng.choice(len(DEVICES), size=n, p=_DEVICE_WEIGHTS)

    is_new = rng.random(n) < config.new_signup_share
    window_days = (config.end - config.start).days
    # Existing subscribers: tenure before the window, exponential with a one-year mean.
    tenure_days = np.ceil(rng.exponential(365.0, n)).astype(int)
    # New signups join in the first part of the window so that most see at least one renewal.
    join_offset = np.floor(rng.random(n) * max(1, window_days - 31)).astype(int)
    signup = tuple(
        config.start + timedelta(days=int(join_offset[i]))
        if is_new[i]
        else config.start - timedelta(days=int(tenure_days[i]))
        for i in range(n)
    )
    shocks = ACTIVITY_NOISE * rng.standard_normal((n, config.months + 2))
    return Population(
        user_ids=tuple(user_id_for(i, n) for i in range(n)),
        engagement=engagement,
        trend=trend,
        satisfaction=satisfaction,
        price_sensitivity=price_sensitivity,
        plan=tuple(PLANS[int(k)] for k in plan_index),
        device=tuple(DEVICES[int(k)] for k in device_index),
        signup=signup,
        is_new_signup=is_new,
        activity_shocks=shocks,
    )
