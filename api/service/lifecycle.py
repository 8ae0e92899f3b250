"""The booking state machine and who may take which step. Pure: no I/O, ``now`` passed in.

::

    requested --confirm--> confirmed --check_in--> checked_in --complete--> completed
        |                     |
        +--cancel--> cancelled <--cancel--+
        +--no_show--> no_show <--no_show--+

The customer confirms or cancels their own booking (cancelling only before the slot starts;
after that the centre records a no-show). The centre checks the car in, completes the visit
(closing its work order does that) and records no-shows (only once the slot has started). An
admin may take any step; the system cancels (erasure, an alert that went away before the
customer confirmed) and completes (a work order closing).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from api.service.errors import InvalidTransitionError, TransitionForbiddenError


class BookingStatus(StrEnum):
    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


OPEN_STATUSES: frozenset[BookingStatus] = frozenset(
    {BookingStatus.REQUESTED, BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN}
)


class BookingAction(StrEnum):
    CONFIRM = "confirm"
    CHECK_IN = "check_in"
    COMPLETE = "complete"
    CANCEL = "cancel"
    NO_SHOW = "no_show"


class Actor(StrEnum):
    CUSTOMER = "customer"
    SERVICE_CENTER = "service_center"
    FLEET_ADMIN = "fleet_admin"
    SYSTEM = "system"


_S, _A = BookingStatus, BookingAction
TRANSITIONS: dict[tuple[BookingStatus, BookingAction], BookingStatus] = {
    (_S.REQUESTED, _A.CONFIRM): _S.CONFIRMED,
    (_S.REQUESTED, _A.CANCEL): _S.CANCELLED,
    (_S.REQUESTED, _A.NO_SHOW): _S.NO_SHOW,
    (_S.CONFIRMED, _A.CHECK_IN): _S.CHECKED_IN,
    (_S.CONFIRMED, _A.CANCEL): _S.CANCELLED,
    (_S.CONFIRMED, _A.NO_SHOW): _S.NO_SHOW,
    (_S.CHECKED_IN, _A.COMPLETE): _S.COMPLETED,
}

ALLOWED: dict[Actor, frozenset[BookingAction]] = {
    Actor.CUSTOMER: frozenset({_A.CONFIRM, _A.CANCEL}),
    Actor.SERVICE_CENTER: frozenset({_A.CHECK_IN, _A.COMPLETE, _A.NO_SHOW}),
    Actor.FLEET_ADMIN: frozenset(BookingAction),
    Actor.SYSTEM: frozenset({_A.CANCEL, _A.COMPLETE}),
}

#: The column that records when a booking entered each status.
STAMP_COLUMN: dict[BookingStatus, str] = {
    _S.REQUESTED: "requested_at",
    _S.CONFIRMED: "confirmed_at",
    _S.CHECKED_IN: "checked_in_at",
    _S.COMPLETED: "completed_at",
    _S.CANCELLED: "cancelled_at",
    _S.NO_SHOW: "no_show_at",
}


def next_status(
    status: BookingStatus,
    action: BookingAction,
    actor: Actor,
    *,
    slot_start: datetime,
    now: datetime,
    booking_id: int | None = None,
) -> BookingStatus:
    """The status after ``actor`` takes ``action``; raises TransitionForbiddenError (the role
    never may) or InvalidTransitionError (not from this status, or not at this time)."""
    if action not in ALLOWED[actor]:
        raise TransitionForbiddenError(actor.value, action.value)
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise InvalidTransitionError(booking_id, status.value, action.value)
    # Time rules for the parties, not for admins fixing a record.
    if actor is Actor.CUSTOMER and action is _A.CANCEL and now >= slot_start:
        raise InvalidTransitionError(booking_id, f"{status.value} and under way", action.value)
    if actor is Actor.SERVICE_CENTER and action is _A.NO_SHOW and now < slot_start:
        raise InvalidTransitionError(booking_id, f"{status.value} and not yet due", action.value)
    return target
