"""From a change and the state already applied for its user to transitions and the next state.

Pure functions: the processor folds a batch of changes through :func:`derive`, one user at a
time, starting from the state its store holds.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lambdas.cdc_processor.dms import DmsChange, SubscriptionState
from platform_core.schemas.cdc import SOURCE_TABLE_NAME, BeforeOrigin, Operation, TransitionKind


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the store keeps per user: the row after the last applied change and its position."""

    user_id: str
    row: SubscriptionState | None  # None once the row was deleted
    position: str
    change_time: datetime
    transaction_id: int | None
    event_id: str


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # state moved; a snapshot (and maybe transitions) written
    BASELINE = "baseline"  # first sight of a row whose earlier state is unknown: state, no transition
    NOOP = "noop"  # newer position but nothing tracked changed: position advances, nothing written
    STALE = "stale"  # older than the applied state: logged as a stale transition, state unchanged
    DUPLICATE = "duplicate"  # this very change was handled before: nothing at all


@dataclass(frozen=True, slots=True)
class Derived:
    change: DmsChange
    outcome: Outcome
    transitions: tuple[dict[str, Any], ...]  # TRANSITION records
    snapshot: dict[str, Any] | None  # STATE_SNAPSHOT record
    state: StoredState | None  # the user's state after the change (None: unchanged)


def change_event_id(user_id: str, change_key: str, kind: str = "", table: str = SOURCE_TABLE_NAME) -> str:
    """Deterministic id of a change (or of one transition of it): table, key, source change, kind."""
    text = "|".join((table, user_id, change_key, kind))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def transition_kinds(before: SubscriptionState | None, after: SubscriptionState) -> list[TransitionKind]:
    """The transitions from a known ``before`` (None: no row) to ``after`` (see TransitionKind)."""
    if before is None:
        return [TransitionKind.SUBSCRIBED] if after.is_active_subscribed else []
    kinds: list[TransitionKind] = []
    if before.is_active_subscribed and not after.is_active_subscribed:
        kinds.append(TransitionKind.CANCELLED)
    elif not before.is_active_subscribed and after.is_active_subscribed:
        kinds.append(TransitionKind.REACTIVATED)
    elif (
        after.is_active_subscribed
        and before.renewal_date is not None
        and after.renewal_date is not None
        and after.renewal_date > before.renewal_date
    ):
        kinds.append(TransitionKind.RENEWED)
    # A plan that is merely cleared (e.g. on cancellation) is no change of plan.
    if before.plan is not None and after.plan is not None and before.plan != after.plan:
        kinds.append(TransitionKind.PLAN_CHANGED)
    return kinds


def derive(change: DmsChange, stored: StoredState | None, processed_at: datetime) -> Derived:
    """What ``change`` means given the state applied so far (``stored``; None if never seen)."""
    if stored is not None and change.position <= stored.position:
        stale = _transition(change, TransitionKind.STALE, stored.row, BeforeOrigin.STATE, processed_at)
        return Derived(change, Outcome.STALE, (stale,), None, None)
    before, origin, known = _before(change, stored)
    if change.operation is Operation.DELETE:
        already_deleted = stored is not None and stored.row is None
        kinds = [] if already_deleted else [TransitionKind.DELETED]
    elif not known:
        kinds = []
    else:
        assert change.after is not None  # only deletes have no after image
        kinds = transition_kinds(before, change.after)
    state = StoredState(
        user_id=change.user_id,
        row=change.after,
        position=change.position,
        change_time=change.change_time,
        transaction_id=change.transaction_id,
        event_id=change_event_id(change.user_id, change.change_key),
    )
    if stored is not None and stored.row == change.after and not kinds:
        return Derived(change, Outcome.NOOP, (), None, state)
    transitions = tuple(_transition(change, kind, before, origin, processed_at) for kind in kinds)
    outcome = Outcome.APPLIED if known or change.operation is Operation.DELETE else Outcome.BASELINE
    return Derived(change, outcome, transitions, _snapshot(change, state, processed_at), state)


def _before(change: DmsChange, stored: StoredState | None) -> tuple[SubscriptionState | None, BeforeOrigin, bool]:
    """The row before the change, where it came from, and whether it is known at all."""
    if change.operation is Operation.INSERT:
        return None, BeforeOrigin.ABSENT, True
    if change.before_image is not None:
        return change.before_image, BeforeOrigin.IMAGE, True
    if stored is not None:
        # The before image is absent or holds only the key: the last applied state stands in.
        return stored.row, BeforeOrigin.STATE, True
    return None, BeforeOrigin.ABSENT, False


def _image_fields(prefix: str, row: SubscriptionState | None) -> dict[str, Any]:
    return {
        f"{prefix}is_active_subscribed": None if row is None else row.is_active_subscribed,
        f"{prefix}renewal_date": None if row is None else row.renewal_date,
        f"{prefix}plan": None if row is None else row.plan,
        f"{prefix}price": None if row is None else row.price,
    }


def _position_fields(change: DmsChange, processed_at: datetime) -> dict[str, Any]:
    return {
        "change_time": change.change_time,
        "transaction_id": change.transaction_id,
        "source_position": change.position,
        "processed_at": processed_at,
    }


def _transition(
    change: DmsChange,
    kind: TransitionKind,
    before: SubscriptionState | None,
    origin: BeforeOrigin,
    processed_at: datetime,
) -> dict[str, Any]:
    return {
        "event_id": change_event_id(change.user_id, change.change_key, kind.value),
        "user_id": change.user_id,
        "transition": kind.value,
        "operation": change.operation.value,
        "before_origin": origin.value,
        **_image_fields("before_", before),
        **_image_fields("after_", change.after),
        **_position_fields(change, processed_at),
    }


def _snapshot(change: DmsChange, state: StoredState, processed_at: datetime) -> dict[str, Any]:
    return {
        "event_id": state.event_id,
        "user_id": change.user_id,
        **_image_fields("", change.after),
        "is_deleted": change.after is None,
        "operation": change.operation.value,
        **_position_fields(change, processed_at),
    }
