"""A feature-like training table drawn straight from the latent traits, and the oracle's truth.

Until the Spark feature jobs exist, training needs a table of the same shape: ``user_id``,
``cutoff_time``, ``label`` and feature columns as of the cutoff. Each feature here is a noisy,
observable proxy of a latent trait, drawn with the same tendencies as the clickstream
(:mod:`datagen.clickstream`) and the subscription history (:mod:`datagen.subscriptions`):

============================  =======================================================
feature                       observes
============================  =======================================================
sessions_30d                  this month's activity (Poisson counts)
sessions_prev_30d             the previous month's activity
watch_minutes_30d             activity again, with little noise (viewing time sums sessions)
watch_minutes_prev_30d        the previous month's activity, with little noise
watch_time_trend              the change in activity: log(watch_minutes / watch_minutes_prev)
days_since_last_session       activity (missing when there was no session in 60 days)
purchases_30d                 engagement
searches_30d                  activity and dissatisfaction
support_views_30d             dissatisfaction
plans_page_views_30d          price sensitivity
offer_clicks_30d              price sensitivity (clicks on discount offers)
avg_rating_30d                satisfaction (missing when the user rated nothing)
plan, price                   the subscription row at the cutoff
price_increased_60d           a price rise in the 60 days before the cutoff
tenure_days, renewal_index    subscription age
renewal_month                 the renewal's month (1..12), as the upstream "month" transform
primary_device                device family: carries no churn signal (a distractor)
============================  =======================================================

The true churn probability is *not* a column of this table (that would be leakage); get it
from :func:`true_probabilities` and join on ``(user_id, cutoff_time)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datagen.config import GeneratorConfig, rng_for
from datagen.population import Population
from datagen.subscriptions import SubscriptionHistory

KEY_COLUMNS: tuple[str, ...] = ("user_id", "cutoff_time")
LABEL_COLUMN = "label"
TRUTH_COLUMN = "true_churn_probability"


def observable_training_table(
    config: GeneratorConfig, population: Population, history: SubscriptionHistory
) -> pd.DataFrame:
    """One row per renewal: keys, label (1 = churned) and observable features as of the cutoff."""
    rng = rng_for(config.seed, "proxies")
    renewals = history.renewals
    n = len(renewals)
    index = pd.Index(population.user_ids).get_indexer(renewals["user_id"])
    engagement = population.engagement[index]
    satisfaction = population.satisfaction[index]
    sensitivity = population.price_sensitivity[index]
    activity = renewals["activity"].to_numpy(float)
    previous = renewals["previous_activity"].to_numpy(float)

    sessions = rng.poisson(14.0 * np.exp(0.8 * activity))
    sessions_prev = rng.poisson(14.0 * np.exp(0.8 * previous))
    # Viewing time sums many sessions, so it measures activity with little noise.
    minutes = 600.0 * np.exp(activity + rng.normal(0, 0.05, n))
    minutes_prev = 600.0 * np.exp(previous + rng.normal(0, 0.05, n))
    gap = np.minimum(29.9, rng.exponential(30.0 / (sessions + 1.0)))
    days_since_last = np.where(sessions > 0, gap, np.where(sessions_prev > 0, 30.0 + rng.uniform(0, 30, n), np.nan))
    n_ratings = rng.poisson(4.0 * np.exp(0.3 * activity))
    rating = 3.4 + 0.8 * satisfaction + rng.normal(0, 0.3, n) / np.sqrt(np.maximum(n_ratings, 1))
    avg_rating = np.where(n_ratings > 0, np.clip(rating, 1.0, 5.0), np.nan)

    table = pd.DataFrame(
        {
            "user_id": renewals["user_id"].astype(str),
            "cutoff_time": renewals["cutoff_time"],
            LABEL_COLUMN: renewals["churned"].astype(np.int64),
            "sessions_30d": sessions,
            "sessions_prev_30d": sessions_prev,
            "watch_minutes_30d": np.round(minutes, 1),
            "watch_minutes_prev_30d": np.round(minutes_prev, 1),
            # The month-over-month trend, as a feature job would derive it (log ratio).
            "watch_time_trend": np.round(np.log(minutes / minutes_prev), 4),
            "days_since_last_session": np.round(days_since_last, 2),
            "purchases_30d": rng.poisson(0.4 * np.exp(0.6 * engagement + 0.4 * activity)),
            "searches_30d": rng.poisson(3.0 * np.exp(0.3 * activity - 0.5 * satisfaction)),
            "support_views_30d": rng.poisson(1.5 * np.exp(-1.0 * satisfaction)),
            "plans_page_views_30d": rng.poisson(4.0 * np.exp(1.0 * sensitivity)),
            "offer_clicks_30d": rng.poisson(3.0 * np.exp(1.0 * sensitivity)),
            "avg_rating_30d": np.round(avg_rating, 2),
            "plan": renewals["plan"].astype(str),
            "price": renewals["price"].astype(float),
            "price_increased_60d": renewals["price_increased"].astype(bool),
            "tenure_days": renewals["tenure_days"].astype(np.int64),
            "renewal_index": renewals["renewal_index"].astype(np.int64),
            "renewal_month": pd.to_datetime(renewals["renewal_date"]).dt.month.astype(np.int64),
            "primary_device": [population.device[k] for k in index],
        }
    )
    return table.reset_index(drop=True)


def true_probabilities(history: SubscriptionHistory) -> pd.DataFrame:
    """The oracle: ``user_id``, ``cutoff_time`` and the true churn probability of each renewal."""
    return history.renewals[[*KEY_COLUMNS, TRUTH_COLUMN]].reset_index(drop=True)
