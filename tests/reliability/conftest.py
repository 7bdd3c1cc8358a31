"""Settings of the reliability tests: the ``fuzz`` marker and the hypothesis profiles.

``HYPOTHESIS_PROFILE`` chooses the profile of the fuzz tests:

- ``default`` (``make test``): 2,000 examples per handler, no deadline (the machine is shared and
  a slow example is not a failure), derandomised so that ``make test`` is reproducible;
- ``long`` (``make fuzz``): 20,000 examples per handler, fresh randomness on every run, to find
  what the fixed seed of ``default`` cannot.

The profiles are registered as ``reliability-default`` and ``reliability-long`` and applied only
to the tests that ask for them (:data:`FUZZ_SETTINGS`): registering Hypothesis's own ``default``
profile would change the settings of every other property test in the suite.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = {"default": 2_000, "long": 20_000}

_COMMON = settings(
    deadline=None,
    # Handlers get whole events (batches of records): generating them is slower than Hypothesis
    # expects, which says nothing about the code under test.
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
settings.register_profile(
    "reliability-default", parent=_COMMON, max_examples=FUZZ_EXAMPLES["default"], derandomize=True
)
settings.register_profile("reliability-long", parent=_COMMON, max_examples=FUZZ_EXAMPLES["long"])
# Also under the plain name, for `pytest --hypothesis-profile=long`; "default" is left alone.
settings.register_profile("long", parent=settings.get_profile("reliability-long"))

# Another suite may use HYPOTHESIS_PROFILE for its own profiles: any value but "long" means default.
PROFILE = "long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "default"
FUZZ_SETTINGS = settings.get_profile(f"reliability-{PROFILE}")
"""The settings every fuzz test of this folder runs with."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fuzz: property-based fuzzing of a handler that takes outside input "
        "(make fuzz runs them with HYPOTHESIS_PROFILE=long)",
    )
