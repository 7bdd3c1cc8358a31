"""Subscription histories: renewals, cancellations, price rises, plan changes, win-backs, deletions.

Simulated user by user, renewal by renewal. At each renewal the true churn probability comes from
:data:`datagen.truth.TRUTH` and decides, with one uniform draw, whether the user renews. The
output is (a) the row changes of the ``subscriptions`` table, from which :mod:`datagen.cdc` writes
the DMS records, (b) the truth table: one row per renewal with its cutoff time, true probability
and outcome, and (c) when each user was subscribed, which the clickstream generator follows.

Timing, chosen so that nothing observable before a cutoff reveals the outcome:
- a renewal's cutoff is ``lead_days`` before the renewal date (features are as of then);
- a churner's row flips to ``is_active_subscribed = false`` at a random instant between the
  cutoff and the renewal date, never before the cutoff;
- a renewal moves ``renewal_date`` one month on, at the billing run on the renewal date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from datagen.config import MONTH_DAYS, PLAN_PRICES, PLANS, GeneratorConfig, add_months, rng_for
from datagen.population import Population
from datagen.truth import TRUTH, sigmoid

Operation = Literal["load", "insert", "update", "delete"]
# A price rise counts as recent at a cutoff when it happened at most this many days earlier.
PRICE_RISE_MEMORY_DAYS = 60
# A renewal is a subscription's first when its cutoff comes less than a month after subscribing.
FIRST_RENEWAL_TENURE_DAYS = 31


@dataclass(frozen=True)
class RowChange:
    """One change to one row of the ``subscriptions`` table (what DMS would capture)."""

    time: datetime
    user_id: str
    operation: Operation
    row: dict[str, Any]  # the row after the change; for a delete, the row that was deleted
    before: dict[str, Any] | None = None  # the row before an update


@dataclass(frozen=True)
class SubscriptionHistory:
    changes: tuple[RowChange, ...]  # in time order
    renewals: pd.DataFrame  # the truth table, see ``RENEWAL_COLUMNS``
    # When each user was subscribed: [start, end) intervals in UTC.
    active_intervals: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)


RENEWAL_COLUMNS: tuple[str, ...] = (
    "user_id",
    "renewal_date",
    "cutoff_time",
    "renewal_index",
    "plan",
    "price",
    "price_increased",
    "tenure_days",
    "month_index",
    "activity",
    "previous_activity",
    "true_churn_probability",
    "churned",
)


def month_index(config: GeneratorConfig, t: datetime) -> int:
    """Which month of the window ``t`` falls in (-1 for the month before it), clamped."""
    index = math.floor((t - config.start_time).total_seconds() / 86400 / MONTH_DAYS)
    return max(-1, min(config.months, index))


def price_change_time(config: GeneratorConfig) -> datetime | None:
    if config.price_change_after_days is None:
        return None
    # The price rise is applied by a batch job at 01:00 UTC.
    return config.start_time + timedelta(days=config.price_change_after_days, hours=1)


def price_of(config: GeneratorConfig, plan: str, at: datetime) -> float:
    rise = price_change_time(config)
    if rise is not None and at >= rise and plan in config.price_change:
        return config.price_change[plan]
    return PLAN_PRICES[plan]


def simulate_subscriptions(config: GeneratorConfig, population: Population) -> SubscriptionHistory:
    """Every user's subscription over the window, with the truth at each renewal."""
    rng = rng_for(config.seed, "subscriptions")
    changes: list[RowChange] = []
    renewals: list[dict[str, Any]] = []
    intervals: dict[str, list[tuple[datetime, datetime]]] = {}
    for i in range(len(population)):
        user = _UserSimulation(config, population, i, rng)
        user.run()
        changes.extend(user.changes)
        renewals.extend(user.renewals)
        intervals[population.user_ids[i]] = user.intervals
    changes.sort(key=lambda c: (c.time, c.user_id))
    table = pd.DataFrame(renewals, columns=list(RENEWAL_COLUMNS))
    table["cutoff_time"] = pd.to_datetime(table["cutoff_time"], utc=True)
    table = table.sort_values(["cutoff_time", "user_id"], kind="stable").reset_index(drop=True)
    return SubscriptionHistory(changes=tuple(changes), renewals=table, active_intervals=intervals)


def _at(d: date, hours: float = 0.0) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=hours)


def _row(user_id: str, active: bool, renewal: date, plan: str, price: float) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "is_active_subscribed": active,
        "renewal_date": renewal.isoformat(),
        "plan": plan,
        "price": price,
    }


class _UserSimulation:
    """The life of one subscription row; kept as a small state machine for readability."""

    def __init__(self, config: GeneratorConfig, population: Population, i: int, rng: np.random.Generator):
        self.config = config
        self.pop = population
        self.i = i
        self.rng = rng
        self.user_id = population.user_ids[i]
        self.plan = population.plan[i]
        self.changes: list[RowChange] = []
        self.renewals: list[dict[str, Any]] = []
        self.intervals: list[tuple[datetime, datetime]] = []
        self.row: dict[str, Any] = {}
        self.rise = price_change_time(config)

    # -- the row --------------------------------------------------------------------------------
    def _emit(self, time: datetime, operation: Operation, row: dict[str, Any]) -> None:
        before = self.row if operation == "update" else None
        self.changes.append(RowChange(time, self.user_id, operation, row, before))
        self.row = row

    # -- the story ------------------------------------------------------------------------------
    def run(self) -> None:
        config = self.config
        signup = self.pop.signup[self.i]
        if self.pop.is_new_signup[self.i]:
            joined = _at(signup, hours=float(self.rng.uniform(6, 23)))
            self._subscribe(joined, signup, operation="insert")
        else:
            # Renewals follow the signup day of month. The first one counted is the first whose
            # cutoff is inside the window, so that every change comes after the full load.
            months = max(0, (config.start.year - signup.year) * 12 + config.start.month - signup.month - 1)
            while add_months(signup, months) - timedelta(days=config.lead_days) < config.start:
                months += 1
            first_renewal = add_months(signup, months)
            self._emit(
                config.start_time - timedelta(minutes=30),
                "load",
                _row(self.user_id, True, first_renewal, self.plan, price_of(config, self.plan, config.start_time)),
            )
            self._renewals_from(
                subscribed=_at(signup), since=config.start_time - timedelta(days=31), anchor=signup, months=months
            )

    def _subscribe(self, at: datetime, day: date, operation: Operation) -> None:
        row = _row(self.user_id, True, add_months(day, 1), self.plan, price_of(self.config, self.plan, at))
        self._emit(at, operation, row)
        self._renewals_from(subscribed=at, since=at, anchor=day, months=1)

    def _renewals_from(self, *, subscribed: datetime, since: datetime, anchor: date, months: int) -> None:
        """Renew month after month, ``months`` after ``anchor`` first, until a churn or the window's end.

        Renewal dates count whole months from the anchor (Jan 31 -> Feb 28 -> Mar 31), never from
        the previous renewal, so a short month does not shift every later renewal.
        """
        config = self.config
        index = 0
        period_start = since
        renewal = add_months(anchor, months)
        while renewal <= config.end:
            renewal_time = _at(renewal)
            cutoff = renewal_time - timedelta(days=config.lead_days)
            self._price_rise_between(period_start, cutoff)
            churned = self._renewal(index, renewal, cutoff, subscribed)
            if churned:
                cancelled = cutoff + timedelta(seconds=float(self.rng.uniform(60, config.lead_days * 86400 or 3600)))
                self._price_rise_between(cutoff, cancelled)
                self.intervals.append((subscribed, cancelled))
                self._emit(cancelled, "update", {**self.row, "is_active_subscribed": False})
                self._after_churn(cancelled)
                return
            self._price_rise_between(cutoff, renewal_time + timedelta(hours=1, minutes=30))
            renewal = add_months(anchor, months + index + 1)
            self._renew(renewal_time, renewal)
            period_start = renewal_time + timedelta(hours=1, minutes=30)
            index += 1
        self._price_rise_between(period_start, config.end_time)
        self.intervals.append((subscribed, config.end_time))

    def _price_rise_between(self, after: datetime, until: datetime) -> None:
        """The price rise reaches the row if it is active on an affected plan at that moment."""
        rise = self.rise
        if rise is not None and after < rise <= until and self.plan in self.config.price_change:
            self._emit(rise, "update", {**self.row, "price": price_of(self.config, self.plan, rise)})

    def _renewal(self, index: int, renewal: date, cutoff: datetime, subscribed: datetime) -> bool:
        """Record the truth at one renewal and draw its outcome."""
        config = self.config
        month = month_index(config, _at(renewal) - timedelta(days=15))
        activity = self.pop.activity(self.i, month)
        previous = self.pop.activity(self.i, month - 1)
        rise = self.rise
        price_increased = rise is not None and cutoff - timedelta(days=PRICE_RISE_MEMORY_DAYS) < rise <= cutoff
        price_increased = price_increased and self.plan in config.price_change
        price = float(self.row["price"])
        tenure_days = (cutoff - subscribed).days
        logit = TRUTH.logit(
            activity=activity,
            previous_activity=previous,
            satisfaction=float(self.pop.satisfaction[self.i]),
            price_sensitivity=float(self.pop.price_sensitivity[self.i]),
            price=price,
            price_increased=float(price_increased),
            first_renewal=float(tenure_days < FIRST_RENEWAL_TENURE_DAYS),
            tenure_days=float(tenure_days),
        )
        probability = float(sigmoid(logit))
        churned = bool(self.rng.random() < probability)
        self.renewals.append(
            {
                "user_id": self.user_id,
                "renewal_date": renewal,
                "cutoff_time": cutoff,
                "renewal_index": index,
                "plan": self.plan,
                "price": price,
                "price_increased": bool(price_increased),
                "tenure_days": tenure_days,
                "month_index": month,
                "activity": activity,
                "previous_activity": previous,
                "true_churn_probability": probability,
                "churned": churned,
            }
        )
        return churned

    def _renew(self, renewal_time: datetime, next_renewal: date) -> None:
        config = self.config
        billed = renewal_time + timedelta(hours=float(self.rng.uniform(2, 4)))
        row = {**self.row, "renewal_date": next_renewal.isoformat()}
        if self.rng.random() < config.plan_change_rate:
            step = 1 if self.pop.engagement[self.i] > 0 else -1
            position = min(len(PLANS) - 1, max(0, PLANS.index(self.plan) + step))
            self.plan = PLANS[position]
            row = {**row, "plan": self.plan, "price": price_of(config, self.plan, billed)}
        self._emit(billed, "update", row)

    def _after_churn(self, cancelled: datetime) -> None:
        """A lapsed row is deleted, comes back, or stays lapsed."""
        config = self.config
        if self.rng.random() < config.deletion_rate:
            deleted = cancelled + timedelta(days=float(self.rng.uniform(1, 30)))
            if deleted < config.end_time:
                self.changes.append(RowChange(deleted, self.user_id, "delete", self.row))
            return
        if config.reactivation_rate <= 0:
            return
        months_away = int(self.rng.geometric(config.reactivation_rate))
        back = cancelled + timedelta(days=30.0 * months_away + float(self.rng.uniform(0, 30)))
        if back + timedelta(days=31) >= config.end_time:
            return
        day = back.date()
        self._emit(
            back,
            "update",
            {
                **self.row,
                "is_active_subscribed": True,
                "renewal_date": add_months(day, 1).isoformat(),
                "price": price_of(config, self.plan, back),
            },
        )
        self._renewals_from(subscribed=back, since=back, anchor=day, months=1)
