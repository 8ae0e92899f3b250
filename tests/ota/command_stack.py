"""The real path of a car's commands, for integration tests: the embedded broker (vehicles
authenticated by the registry, an ingest and a commander service account), a running ingest
worker, and the vehicles registered in the per-test database. Not a conftest: tests import it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from api.vehicle_registry import VehicleRegistry, VehicleSpec
from broker.credentials import FirstMatch, ServiceAccounts
from broker.embedded import EmbeddedBroker
from broker.policy import ServiceIdentity, ServiceRole
from fleetlink.embedded_postgres import free_port
from ingest.consumer import IngestWorker
from ingest.settings import IngestSettings
from ingest.store import TelemetryStore
from protocol.endpoint import MqttEndpoint
from simulator.fleet import VehicleProfile, build_fleet

INGEST = ("svc-ingest", "ingest-secret")
COMMANDER = ("svc-commander", "commander-secret")


@dataclass
class CommandStack:
    pool: asyncpg.Pool
    endpoint: MqttEndpoint  # no credentials: a car adds its own
    ingest: IngestWorker
    passwords: dict[str, str] = field(default_factory=dict)  # VIN -> MQTT secret
    _tasks: list[tuple[asyncio.Event, asyncio.Task[None]]] = field(default_factory=list)

    @property
    def commander(self) -> MqttEndpoint:
        return self.endpoint.with_credentials(*COMMANDER)

    async def vehicles(self, count: int, seed: int = 7) -> list[VehicleProfile]:
        """``count`` simulated cars, registered (their secrets in ``passwords``)."""
        registry = VehicleRegistry(self.pool)
        profiles = build_fleet(count, seed)
        for p in profiles:
            spec = VehicleSpec(p.vin, p.brand, p.model, p.model_year, p.powertrain)
            self.passwords[p.vin] = (await registry.register(spec)).password
        return profiles

    def start(self, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        """Run ``run(stop)`` until the stack closes."""
        stop = asyncio.Event()
        self._tasks.append((stop, asyncio.create_task(run(stop))))


@contextlib.asynccontextmanager
async def command_stack(pool: asyncpg.Pool) -> AsyncIterator[CommandStack]:
    port = free_port()
    services = ServiceAccounts(
        {
            INGEST[0]: (INGEST[1], ServiceIdentity(INGEST[0], frozenset({ServiceRole.INGEST}))),
            COMMANDER[0]: (
                COMMANDER[1],
                ServiceIdentity(COMMANDER[0], frozenset({ServiceRole.COMMANDER})),
            ),
        }
    )
    broker = EmbeddedBroker(FirstMatch([services, VehicleRegistry(pool)]), port=port)
    await broker.start()
    endpoint = MqttEndpoint("127.0.0.1", port)
    worker = IngestWorker(
        TelemetryStore(pool),
        endpoint.with_credentials(*INGEST),
        IngestSettings(flush_interval_ms=50),
    )
    stack = CommandStack(pool, endpoint, worker)
    stack.start(worker.run)
    try:
        await asyncio.wait_for(worker.subscribed.wait(), 20)
        yield stack
    finally:
        # Cars and services first, ingest last (it stores what they handed over).
        for stop, task in reversed(stack._tasks):
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
        await broker.stop()
