"""The demo's inputs: generated data with a known truth, or the user's own files.

Generated clickstream gets *injected* faults with known counts, so the run can prove that every
one of them is accounted for: duplicates (an event resent with the same ``event_id``, as a
producer does after a lost acknowledgement) and bad records (not JSON, not an object, a missing
field, an absurd timestamp, an unknown event type).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.config import GeneratorConfig
from datagen.world import SyntheticWorld, build_world
from local_runtime.clickstream_stage import ClickstreamInput


@dataclass(frozen=True)
class DemoInputs:
    clickstream: ClickstreamInput
    cdc_lines: list[bytes]
    world: SyntheticWorld | None  # None when the user brought all their own data


# Signed-in events per user over the generated window (seven months), the generator's default.
# More events make the run longer; 40 did not make the model better on 1,000 users (its test split
# holds about 50 churners, so PR-AUC moves by a few hundredths with any change of the data).
DEMO_EVENTS_PER_USER = 20.0


def generated_world(
    users: int, seed: int, months: int = 6, lead_days: int = 7, events_per_user: float = DEMO_EVENTS_PER_USER
) -> SyntheticWorld:
    """``lead_days``: the platform's ``FeaturesConfig.label_lead_days``, so that the generator's
    cutoffs (and its truth) are the training set's."""
    return build_world(
        GeneratorConfig(n_users=users, seed=seed, months=months, lead_days=lead_days, events_per_user=events_per_user)
    )


def inject_faults(
    events: list[dict[str, Any]], *, seed: int, duplicate_share: float = 0.02, bad_share: float = 0.01
) -> ClickstreamInput:
    """Serialise events, resend a share of them and mix in malformed records."""
    rng = random.Random(seed)
    lines = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    duplicates = rng.sample(range(len(lines)), k=int(len(lines) * duplicate_share)) if lines else []
    lines += [lines[i] for i in duplicates]
    bad_kinds = [
        lambda e: b"{not json",
        lambda e: b"[1, 2, 3]",
        lambda e: json.dumps({k: v for k, v in e.items() if k != "event_type"}).encode(),
        lambda e: json.dumps({**e, "event_id": f"bad-{rng.random()}", "event_time": "1970-01-01T00:00:00Z"}).encode(),
        lambda e: json.dumps({**e, "event_id": f"bad-{rng.random()}", "event_type": "teleport"}).encode(),
        lambda e: b"\xff\xfe not utf-8",
    ]
    bad = [
        bad_kinds[i % len(bad_kinds)](events[rng.randrange(len(events))]) for i in range(int(len(events) * bad_share))
    ]
    lines += bad
    rng.shuffle(lines)
    return ClickstreamInput(lines=lines, injected_duplicates=len(duplicates), injected_bad=len(bad))


def read_lines(path: Path) -> list[bytes]:
    """One record per line, kept as bytes (a line that is not valid UTF-8 must still be counted)."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def demo_inputs(
    *,
    users: int,
    seed: int,
    clickstream_file: Path | None,
    cdc_file: Path | None,
    months: int = 6,
    lead_days: int = 7,
    events_per_user: float = DEMO_EVENTS_PER_USER,
) -> DemoInputs:
    generate = clickstream_file is None or cdc_file is None
    world = generated_world(users, seed, months, lead_days, events_per_user) if generate else None
    if clickstream_file is not None:
        clickstream = ClickstreamInput(lines=read_lines(clickstream_file))
    else:
        assert world is not None
        clickstream = inject_faults(world.clickstream(), seed=seed)
    if cdc_file is not None:
        cdc_lines = read_lines(cdc_file)
    else:
        assert world is not None
        cdc_lines = [json.dumps(r, separators=(",", ":")).encode() for r in world.cdc_records()]
    return DemoInputs(clickstream=clickstream, cdc_lines=cdc_lines, world=world)
