"""Knobs of the synthetic world, and the seeded random streams derived from them.

Every random draw comes from a named stream derived from ``(seed, name)``, so changing one knob
(say, events per user) never reshuffles an unrelated part of the world (say, who churns).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

# Monthly prices before and after the simulated price change, per plan.
PLAN_PRICES: dict[str, float] = {"basic": 7.99, "standard": 15.49, "premium": 22.99}
PLANS: tuple[str, ...] = tuple(PLAN_PRICES)
# The average calendar month, in days: the unit of the latent monthly activity.
MONTH_DAYS = 30.4375


@dataclass(frozen=True)
class GeneratorConfig:
    """Size and shape of one synthetic world.

    Defaults give a 6-month window that ends before "now" on any machine dated after mid-2025,
    so that no generated event is rejected as being in the future.
    """

    n_users: int = 1000
    seed: int = 7
    start: date = date(2025, 1, 1)
    months: int = 6
    # Mean number of clickstream events per user over the whole window (logged-in events only).
    events_per_user: float = 20.0
    # Share of sessions that come from anonymous visitors (user_id null), on top of the above.
    anonymous_session_share: float = 0.1
    # Share of users who sign up during the window (CDC "insert") instead of being in the full load.
    new_signup_share: float = 0.25
    # Features are taken as of this many days before each renewal: the lead time a retention
    # offer needs. The label is whether that renewal happens.
    lead_days: int = 7
    # A price rise on these plans, this many days after ``start`` (None: no price change).
    price_change_after_days: int | None = 75
    price_change: dict[str, float] = field(default_factory=lambda: {"standard": 17.99, "premium": 24.99})
    # Per month, the chance that a lapsed subscriber comes back (an inactive -> active transition).
    reactivation_rate: float = 0.04
    # Chance that a lapsed subscriber asks for the row to be deleted (a CDC "delete").
    deletion_rate: float = 0.05
    # Chance per renewal that an active subscriber moves to a neighbouring plan.
    plan_change_rate: float = 0.03
    # Share of event_time values written with a non-UTC offset, and as epoch milliseconds.
    offset_time_share: float = 0.1
    epoch_ms_time_share: float = 0.0

    def __post_init__(self) -> None:
        if self.n_users < 1:
            raise ValueError("n_users must be at least 1")
        if self.months < 1:
            raise ValueError("months must be at least 1")
        if self.events_per_user < 0:
            raise ValueError("events_per_user must not be negative")
        if not 0 <= self.lead_days < 28:
            raise ValueError("lead_days must be 0..27 so that the cutoff stays inside the month")
        for name in ("anonymous_session_share", "new_signup_share", "offset_time_share", "epoch_ms_time_share"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")
        unknown = set(self.price_change) - set(PLAN_PRICES)
        if unknown:
            raise ValueError(f"price_change names unknown plans: {sorted(unknown)}")

    @property
    def start_time(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end(self) -> date:
        return add_months(self.start, self.months)

    @property
    def end_time(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC)


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent, reproducible random generator for one named part of the world."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def add_months(d: date, months: int) -> date:
    """``d`` moved by whole calendar months; days past the target month's end are clamped."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    day = min(d.day, _days_in_month(year, month))
    return date(year, month, day)


def _days_in_month(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - date(year, month, 1)).days
