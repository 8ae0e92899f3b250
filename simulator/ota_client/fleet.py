"""Many simulated cars' OTA clients at once, each on its own MQTT connection
(:class:`~simulator.ota_client.link.MqttOtaLink`) and its own credentials, sharing one HTTP
connection pool. For benchmarks and tests of whole rollouts; connections open a batch at a
time so a broker is not met by hundreds of CONNECTs in the same instant."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import urllib3

from protocol.clock import Clock
from protocol.endpoint import MqttEndpoint
from simulator.fleet import VehicleProfile
from simulator.ota_client.client import OtaClient, OtaTransport
from simulator.ota_client.installer import InstallProfile
from simulator.ota_client.link import MqttOtaLink
from simulator.ota_client.vehicle import ota_client

CONNECT_BATCH = 50
CONNECT_TIMEOUT_S = 60.0


@dataclass
class OtaCar:
    client: OtaClient
    link: MqttOtaLink

    @property
    def vin(self) -> str:
        return self.client.vin


class OtaFleet:
    def __init__(self, cars: Sequence[OtaCar]) -> None:
        self.cars = list(cars)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def build(
        cls,
        profiles: Sequence[VehicleProfile],
        passwords: Mapping[str, str],
        *,
        seed: int,
        api_url: str,
        broker: MqttEndpoint,
        http: urllib3.PoolManager,
        clock: Clock,
        image_root: bytes,
        director_root: bytes,
        installs: Mapping[str, InstallProfile],
        executor: Executor | None = None,
    ) -> OtaFleet:
        cars = []
        for profile in profiles:
            vin = str(profile.vin)
            link = MqttOtaLink(vin, passwords[vin], broker)
            client = ota_client(
                profile,
                seed=seed,
                transport=OtaTransport.http(http, api_url, vin, passwords[vin]),
                publisher=link,
                clock=clock,
                image_root=image_root,
                director_root=director_root,
                install=installs.get(vin),
                executor=executor,
            )
            cars.append(OtaCar(client, link))
        return cls(cars)

    async def start(self) -> None:
        """Connect every car (a batch at a time) and send each one's first version report,
        the one the director knows the car from."""
        for first in range(0, len(self.cars), CONNECT_BATCH):
            batch = self.cars[first : first + CONNECT_BATCH]
            for car in batch:
                self._tasks.append(
                    asyncio.create_task(car.link.run(self._stop, car.client.handle_offer))
                )
            await asyncio.wait_for(
                asyncio.gather(*(car.link.connected.wait() for car in batch)), CONNECT_TIMEOUT_S
            )
        await asyncio.gather(*(car.client.report() for car in self.cars))

    async def stop(self) -> None:
        await asyncio.gather(*(car.client.wait_idle() for car in self.cars))
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
