"""The OTA client in the fleet simulator's command handling: an ``OnboardOptions.setup`` that
gives each car an :class:`OtaClient` answering ``ota.offer`` commands through the car's
command registry (``simulator.commands``: deduplication, acknowledgement and rejection events
come from the dispatcher)::

    clients: dict[str, OtaClient] = {}
    FleetRunner(..., onboard=OnboardOptions(keys, setup=ota_setup(make_client, clients)))

``make_client`` builds the car's client from its :class:`Onboard` (VIN, clock, and the car's
connection for ``ota/status``); :class:`FleetOta` does so for the cars of a simulated fleet.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import urllib3

from protocol.messages import CommandType
from simulator.onboard import Onboard, OtaStatusSender
from simulator.ota_client.client import OtaClient, OtaTransport
from simulator.ota_client.vehicle import ota_client
from simulator.runner import FleetMember


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


@dataclass(frozen=True, slots=True)
class OnboardStatusPublisher:
    """Version reports over the car's own MQTT connection (``Onboard.ota_status``)."""

    send: OtaStatusSender

    async def publish(self, payload: bytes) -> None:
        await self.send(payload)


class FleetOta:
    """OTA clients for the cars of a simulated fleet, each built with the two roots the fleet
    shipped with (Uptane 5.4.1), its ECUs and report key (``simulator.ota_client.vehicle``),
    and its device secret for the director's metadata."""

    def __init__(
        self,
        members: Sequence[FleetMember],
        *,
        seed: int,
        api_url: str,
        image_root: bytes,
        director_root: bytes,
        http: urllib3.PoolManager,
        executor: Executor | None = None,
    ) -> None:
        self._members = {str(m.profile.vin): m for m in members}
        self._seed = seed
        self._api_url = api_url
        self._image_root = image_root
        self._director_root = director_root
        self._http = http
        self._executor = executor
        self.clients: dict[str, OtaClient] = {}

    def client(self, onboard: Onboard) -> OtaClient:
        vin = str(onboard.vin)
        member = self._members[vin]
        if onboard.ota_status is None:
            raise ValueError(f"car {vin} has no connection for OTA version reports")
        return ota_client(
            member.profile,
            seed=self._seed,
            transport=OtaTransport.http(self._http, self._api_url, vin, member.password),
            publisher=OnboardStatusPublisher(onboard.ota_status),
            clock=onboard.clock,
            image_root=self._image_root,
            director_root=self._director_root,
            executor=self._executor,
        )

    def setup(self) -> Callable[[Onboard], None]:
        """For ``OnboardOptions.setup``; the clients land in :attr:`clients` by VIN."""
        return ota_setup(self.client, self.clients)
