"""Applies identity changes to the embedded broker within seconds: the registry NOTIFYs
``vehicle_identity`` with the VIN on every change; here the cached login of that VIN is
forgotten and, if the vehicle is no longer admitted, its live connection is dropped.

Notifications are lost while the listening connection is down, so every (re)connect begins with
a sweep over the connected vehicles; a periodic sweep closes the race of a login that is checked
just before a revocation and admitted just after its notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from api.vehicle_registry import RegistryError, VehicleRegistry
from broker.embedded import EmbeddedBroker
from broker.policy import vehicle_identity

log = logging.getLogger(__name__)

CHANNEL = "vehicle_identity"
QUEUE_MAX = 10_000
# A login checked just before a revocation can be admitted just after its notification was
# handled; a sweep this often bounds how long such a session survives.
SWEEP_INTERVAL_S = 2.0


class IdentityWatch:
    def __init__(self, dsn: str, registry: VehicleRegistry, broker: EmbeddedBroker) -> None:
        self._dsn = dsn
        self._registry = registry
        self._broker = broker
        self.listening = asyncio.Event()
        self.disconnected = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff_s = 0.5
        while not stop.is_set():
            try:
                await self._listen(stop)
                backoff_s = 0.5
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.listening.clear()
                log.warning("identity watch: %s; reconnecting in %.1f s", exc, backoff_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)

    async def _listen(self, stop: asyncio.Event) -> None:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_MAX)
        overflowed = False

        def on_notify(_c: object, _pid: int, _channel: str, payload: object) -> None:
            nonlocal overflowed
            try:
                queue.put_nowait(str(payload))
            except asyncio.QueueFull:
                overflowed = True  # a sweep after this burst catches what did not fit

        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=10)
        try:
            await conn.add_listener(CHANNEL, on_notify)
            conn.add_termination_listener(lambda _c: queue.put_nowait(None))
            self.listening.set()
            await self._sweep()
            loop = asyncio.get_running_loop()
            next_sweep = loop.time() + SWEEP_INTERVAL_S
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    vin = await asyncio.wait_for(queue.get(), max(next_sweep - loop.time(), 0))
                    if vin is None:
                        raise OSError("listening connection closed")
                    await self._apply(vin)
                if loop.time() >= next_sweep or (overflowed and queue.empty()):
                    overflowed = False
                    await self._sweep()
                    next_sweep = loop.time() + SWEEP_INTERVAL_S
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def _sweep(self) -> None:
        """One query for all connected vehicles; only those no longer admitted are touched (the
        login cache of everyone else stays warm)."""
        connected = [c for c in self._broker.connected_clients() if vehicle_identity(c)]
        if not connected:
            return
        admitted = await self._registry.admitted_among(connected)
        for vin in connected:
            if vin not in admitted:
                await self._cut_off(vin, "not_admitted")

    async def _apply(self, vin: str) -> None:
        self._registry.forget(vin)
        try:
            await self._registry.ensure_admitted(vin)
        except RegistryError as exc:
            await self._cut_off(vin, exc.code)

    async def _cut_off(self, vin: str, reason: str) -> None:
        self._registry.forget(vin)
        if await self._broker.disconnect_vehicle(vin):
            self.disconnected += 1
            log.info("identity watch: disconnected %s (%s)", vin, reason)
