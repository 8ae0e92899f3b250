"""The customer platform's background services: the outbox consumers (notifier, booking
suggestions, offer decisions), the offer sweeps and the notification delivery loop.
``fleetlink up`` starts them in its process; ``fleetlink serve notify`` runs them on their own.
Each is safe to run as several replicas (the outbox cursor lock, ``FOR UPDATE SKIP LOCKED``
deliveries)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg

from api.notifications.delivery import DeliveryLoop
from api.notifications.notifier import notifier
from api.notifications.settings import NotifySettings
from api.offers.decider import decider_from_settings, offer_decider
from api.offers.sweeps import run_sweeps
from api.service.suggestions import booking_suggester
from diagnostics.offers.settings import OfferSettings
from protocol.clock import SYSTEM_CLOCK, Clock
from protocol.endpoint import MqttEndpoint

NOTIFIER_SERVICE = "svc-notifier"


@dataclass(frozen=True)
class Service:
    name: str
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    stop_timeout_s: float


def platform_services(
    pool: asyncpg.Pool, *, commands_mqtt: MqttEndpoint | None, clock: Clock = SYSTEM_CLOCK
) -> list[Service]:
    """``commands_mqtt``: the broker with a ``commander`` identity (publishes to the cars'
    ``commands`` topics) for in-car notifications; None: in-car delivery is suppressed."""
    delivery = DeliveryLoop.from_settings(pool, NotifySettings(), mqtt=commands_mqtt, clock=clock)
    offers = OfferSettings()
    return [
        Service("notifier", notifier(pool, clock).run, 10),
        Service("booking suggestions", booking_suggester(pool, clock).run, 10),
        Service("notification delivery", delivery.run, 15),
        Service(
            "offer decisions", offer_decider(pool, decider_from_settings(offers, clock)).run, 10
        ),
        Service(
            "offer sweeps",
            lambda stop: run_sweeps(pool, stop, clock=clock, interval_s=offers.sweep_interval_s),
            10,
        ),
    ]
