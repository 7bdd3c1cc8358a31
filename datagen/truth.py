"""The known churn model: the true probability that a subscriber does not renew.

A logistic model of the latent traits at each renewal. Because the generator knows it, it can
give every renewal its true probability, which is the best any model can do (the oracle): a
trained model that scores *above* the oracle on held-out data is a sign of leakage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ArrayLike = np.ndarray | float

# The reference monthly price: prices enter the model relative to it.
REFERENCE_PRICE = 15.49


@dataclass(frozen=True)
class ChurnTruth:
    """Coefficients of the true churn logit.

    ``logit = intercept
              + activity * a_k                      (current month's latent activity)
              + activity_change * (a_k - a_{k-1})   (a decline raises churn)
              + satisfaction * s
              + price_sensitivity * ps * price / REFERENCE_PRICE
              + price_increase * rise * (1 + ps)    (a recent price rise, worse for the sensitive)
              + first_renewal * first               (the first renewal after (re)subscribing)
              + log_tenure * log1p(tenure_days / 30)``
    """

    intercept: float = -2.3
    activity: float = -1.5
    activity_change: float = -1.5
    satisfaction: float = -0.9
    price_sensitivity: float = 0.5
    price_increase: float = 0.5
    first_renewal: float = 0.5
    log_tenure: float = -0.12

    def logit(
        self,
        *,
        activity: ArrayLike,
        previous_activity: ArrayLike,
        satisfaction: ArrayLike,
        price_sensitivity: ArrayLike,
        price: ArrayLike,
        price_increased: ArrayLike,
        first_renewal: ArrayLike,
        tenure_days: ArrayLike,
    ) -> ArrayLike:
        """Works on numpy arrays (one entry per renewal) and on plain numbers alike."""
        rise = np.asarray(price_increased, dtype=float)
        return (
            self.intercept
            + self.activity * activity
            + self.activity_change * (activity - previous_activity)
            + self.satisfaction * satisfaction
            + self.price_sensitivity * price_sensitivity * price / REFERENCE_PRICE
            + self.price_increase * rise * (1.0 + price_sensitivity)
            + self.first_renewal * np.asarray(first_renewal, dtype=float)
            + self.log_tenure * np.log1p(np.maximum(tenure_days, 0) / 30.0)
        )

    def probability(self, **inputs: ArrayLike) -> ArrayLike:
        return sigmoid(self.logit(**inputs))


TRUTH = ChurnTruth()


def sigmoid(x: ArrayLike) -> ArrayLike:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))
