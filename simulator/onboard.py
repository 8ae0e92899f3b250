"""What a simulated car does with the commands it receives: one :class:`Onboard` per car holds
its notification inbox, its entitlements, the command registry and the dispatcher that
:class:`simulator.car.CarLink` feeds from ``v1/vehicles/{VIN}/commands``.

Built-in handlers: ``notify`` (:mod:`simulator.inbox`) and ``entitlements``
(:mod:`simulator.entitlements`). More are added per car through ``OnboardOptions.setup``,
called with each car's :class:`Onboard` once the built-ins are registered::

    def with_ota(onboard: Onboard) -> None:
        onboard.registry.register(CommandType.OTA_OFFER, OtaOfferHandler(onboard.vin, ...))

    FleetRunner(members, endpoint, clock, onboard=OnboardOptions(keys, setup=with_ota))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.clock import Clock
from protocol.messages import CommandType
from protocol.vin import Vin
from simulator.commands import CommandDispatcher, CommandRegistry, EventSink
from simulator.entitlements import CarEntitlements, EntitlementsHandler
from simulator.inbox import Inbox, NotifyHandler


@dataclass(frozen=True)
class OnboardOptions:
    #: The pinned entitlement public keys by key id. Empty: the car trusts no entitlement
    #: document (each is rejected as ``unknown_key``).
    entitlement_keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    #: Called with each car's Onboard after the built-in handlers are registered.
    setup: Callable[[Onboard], None] | None = None


#: Sends an OTA version report over the car's connection, returning once it is acknowledged.
OtaStatusSender = Callable[[bytes], Awaitable[None]]


class Onboard:
    def __init__(
        self,
        vin: Vin,
        clock: Clock,
        events: EventSink,
        options: OnboardOptions,
        *,
        ota_status: OtaStatusSender | None = None,
    ) -> None:
        """``ota_status``: the car's channel for OTA version reports (``CarLink``'s), for the
        handlers ``options.setup`` adds; None where the car has no connection of its own."""
        self.vin = vin
        self.clock = clock
        self.events = events
        self.ota_status = ota_status
        self.inbox = Inbox()
        self.entitlements = CarEntitlements(vin, options.entitlement_keys)
        self.registry = CommandRegistry()
        self.registry.register(CommandType.NOTIFY, NotifyHandler(self.inbox, clock))
        self.registry.register(
            CommandType.ENTITLEMENTS, EntitlementsHandler(self.entitlements, clock)
        )
        self.dispatcher = CommandDispatcher(self.registry, events, clock)
        if options.setup is not None:
            options.setup(self)

    def features(self) -> frozenset[str]:
        """The features enabled now, by the car's clock."""
        return self.entitlements.features(self.clock.now_ms())
