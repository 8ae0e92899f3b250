"""Which channels carry a notification, and when: a pure decision over the customer's
preferences. No I/O; takes ``now``.

- The app inbox always gets it (the list is the record of what FleetLink told the customer);
  its delivery is ``sent`` at once, the SSE stream marks it ``delivered``, the customer ``read``.
- E-mail, in-car and SMS only when the customer prefers the channel, and only with an address
  (e-mail, phone) or a car to send it to; otherwise the delivery is ``suppressed`` with the
  reason, so the customer and support can see why nothing arrived.
- Quiet hours hold back the intrusive channels for informational messages and promotions until
  the quiet period ends. Service-critical messages are never held back: a critical alert reaches
  the car (and e-mail, SMS) at once, at any hour.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from api.notifications.model import ALL_CHANNELS, Category, Channel, DeliveryState, Reason
from api.notifications.quiet_hours import QuietHours, quiet_until


@dataclass(frozen=True, slots=True)
class Preferences:
    channels: Collection[Channel]
    email: str | None
    phone: str | None
    quiet_hours: QuietHours | None


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    channel: Channel
    state: DeliveryState
    reason: Reason | None = None
    # Queued plans: when the delivery loop may send it.
    due_at: datetime | None = None


def plan_deliveries(
    preferences: Preferences, category: Category, *, has_vehicle: bool, now: datetime
) -> list[DeliveryPlan]:
    """One plan per channel, in :data:`ALL_CHANNELS` order."""
    held_until = (
        None if category is Category.SERVICE_CRITICAL else quiet_until(preferences.quiet_hours, now)
    )
    plans = [DeliveryPlan(Channel.APP, DeliveryState.SENT)]
    for channel in ALL_CHANNELS[1:]:
        missing = _unreachable(preferences, channel, has_vehicle=has_vehicle)
        if missing is not None:
            plans.append(DeliveryPlan(channel, DeliveryState.SUPPRESSED, missing))
        elif held_until is not None:
            plans.append(
                DeliveryPlan(channel, DeliveryState.QUEUED, Reason.QUIET_HOURS, held_until)
            )
        else:
            plans.append(DeliveryPlan(channel, DeliveryState.QUEUED, due_at=now))
    return plans


def _unreachable(preferences: Preferences, channel: Channel, *, has_vehicle: bool) -> Reason | None:
    if channel not in preferences.channels:
        return Reason.CHANNEL_NOT_PREFERRED
    if channel is Channel.EMAIL and not preferences.email:
        return Reason.NO_ADDRESS
    if channel is Channel.SMS and not preferences.phone:
        return Reason.NO_ADDRESS
    if channel is Channel.IN_CAR and not has_vehicle:
        return Reason.NO_VEHICLE
    return None
