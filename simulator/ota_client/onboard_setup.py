"""The OTA client in the fleet simulator's command handling: an ``OnboardOptions.setup`` that
gives each car an :class:`OtaClient` answering ``ota.offer`` commands through the car's
command registry (``simulator.commands``: deduplication, acknowledgement and rejection events
come from the dispatcher)::

    clients: dict[str, OtaClient] = {}
    FleetRunner(..., onboard=OnboardOptions(keys, setup=ota_setup(make_client, clients)))

``make_client`` builds the car's client from its :class:`Onboard` (VIN, clock); it needs a
:class:`~simulator.ota_client.client.StatusPublisher` for ``ota/status``, which the car's own
MQTT connection does not offer yet (docs/ota.md, "The car's side").
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

from protocol.messages import CommandType
from simulator.onboard import Onboard
from simulator.ota_client.client import OtaClient


def ota_setup(
    make_client: Callable[[Onboard], OtaClient],
    clients: MutableMapping[str, OtaClient] | None = None,
) -> Callable[[Onboard], None]:
    def setup(onboard: Onboard) -> None:
        client = make_client(onboard)
        onboard.registry.register(CommandType.OTA_OFFER, client.handle_offer)
        if clients is not None:
            clients[str(onboard.vin)] = client

    return setup
