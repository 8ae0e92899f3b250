"""Whose positions ingest may store: the owner's ``location`` consent, kept current in memory.

The customer platform answers the question per vehicle in the view ``vehicle_location_consent``
(api migration 003) and names a vehicle whose answer may have changed on the channel of the same
name. Ingest holds the few vehicles whose owner has *not* granted it (``withheld``), so the check
on the hot path is one set lookup. A vehicle with no customer linked (dealer stock, test
benches, the simulator) is the OEM's own and its answer is "granted".

Freshness: a notification is applied within about a second; a full reload every minute (and
after every reconnect of the listening connection) repairs a missed one. Until the first load
has succeeded the worker does not consume, so no position slips through at start. When a
vehicle's consent is withdrawn, its last known position is removed from ``vehicle_state`` too,
and again at every reload (a batch in flight at the withdrawal may have written it back). The
samples of such a batch, and those stored while consent was given, stay until retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from typing import TypeVar

import asyncpg

from ingest.layout import WIDE_COLUMNS
from ingest.store import STORE_ERRORS
from ingest.validation import Reading
from protocol.aio import first_of

log = logging.getLogger(__name__)

CHANNEL = "vehicle_location_consent"
#: The signals that are a position (VSS branch Vehicle.CurrentLocation).
LOCATION_PREFIX = "Vehicle.CurrentLocation."
RESYNC_INTERVAL_S = 60.0
RETRY_S = 2.0
MAX_PENDING = 10_000  # notifications waiting; beyond it one full reload replaces them

_WITHHELD = "SELECT vin FROM vehicle_location_consent WHERE NOT granted"
_ONE = "SELECT granted FROM vehicle_location_consent WHERE vin = $1"
_VIEW_EXISTS = "SELECT to_regclass('vehicle_location_consent') IS NOT NULL"
_POSITION_COLUMNS = [c.name for c in WIDE_COLUMNS if c.signal.startswith(LOCATION_PREFIX)]
# Idempotent and cheap when there is nothing to remove (the WHERE clause finds no row).
_PURGE_STATE = (
    "UPDATE vehicle_state_wide SET {} WHERE vin = ANY($1::text[]) AND ({})".format(
        ", ".join(f"{c} = NULL, {c}_ts = NULL" for c in _POSITION_COLUMNS),
        " OR ".join(f"{c}_ts IS NOT NULL" for c in _POSITION_COLUMNS),
    ),
    "DELETE FROM vehicle_state_tail WHERE vin = ANY($1::text[]) AND starts_with(signal, $2)",
)

_R = TypeVar("_R", bound=Reading)


def without_position(readings: Sequence[_R]) -> list[_R]:
    return [r for r in readings if not r.signal.startswith(LOCATION_PREFIX)]


class LocationConsent:
    def __init__(self, pool: asyncpg.Pool, *, resync_interval_s: float = RESYNC_INTERVAL_S) -> None:
        self._pool = pool
        self._resync_interval_s = resync_interval_s
        self._withheld: frozenset[str] = frozenset()
        self._pending: asyncio.Queue[str | None] = asyncio.Queue(MAX_PENDING)
        #: Set once the first full load has succeeded.
        self.ready = asyncio.Event()

    def allows(self, vin: str) -> bool:
        return vin not in self._withheld

    @property
    def withheld(self) -> frozenset[str]:
        return self._withheld

    async def watch(self, stop: asyncio.Event) -> None:
        """Keep the answer current until ``stop``; reconnects by itself."""
        while not stop.is_set():
            try:
                async with self._pool.acquire() as conn:
                    await self._listen_and_apply(conn, stop)
            except STORE_ERRORS as exc:
                log.warning("ingest: location consent not refreshed (%s); retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_S)

    async def _listen_and_apply(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        if not await conn.fetchval(_VIEW_EXISTS):
            # A database without the customer platform's tables: nobody's consent to honour.
            log.warning("ingest: no vehicle_location_consent view; positions are stored for all")
            self.ready.set()
            await stop.wait()
            return
        await conn.add_listener(CHANNEL, self._notified)
        try:
            await self._reload(conn)  # after LISTEN: a change in between is not missed
            while not stop.is_set():
                vin = await _next_or_none(self._pending, stop, self._resync_interval_s)
                if vin is None:
                    await self._reload(conn)
                else:
                    await self._refresh(conn, vin)
        finally:
            with contextlib.suppress(*STORE_ERRORS):
                await conn.remove_listener(CHANNEL, self._notified)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._pending.put_nowait(payload)
        except asyncio.QueueFull:
            # Too many at once: drop them all for one full reload, which answers every one.
            while not self._pending.empty():
                self._pending.get_nowait()
            self._pending.put_nowait(None)

    async def _reload(self, conn: asyncpg.Connection) -> None:
        withheld = frozenset(r["vin"] for r in await conn.fetch(_WITHHELD))
        self._withheld = withheld
        # Every time, not only for newly withheld cars: a batch that was built before a
        # withdrawal and committed after its purge (in flight, or retried while the database
        # was away; any worker of a shared subscription) wrote the position back.
        await _purge_state(conn, withheld)
        self.ready.set()

    async def _refresh(self, conn: asyncpg.Connection, vin: str) -> None:
        granted = await conn.fetchval(_ONE, vin)
        if granted is False:
            if vin not in self._withheld:
                self._withheld = self._withheld | {vin}
                await _purge_state(conn, {vin})
                log.info("ingest: positions of %s withheld (no location consent)", vin)
        elif vin in self._withheld:
            self._withheld = self._withheld - {vin}
            log.info("ingest: positions of %s stored again (location consent given)", vin)


async def _purge_state(conn: asyncpg.Connection, vins: Collection[str]) -> None:
    """Forget these vehicles' last known positions."""
    if not vins:
        return
    async with conn.transaction():
        await conn.execute(_PURGE_STATE[0], list(vins))
        await conn.execute(_PURGE_STATE[1], list(vins), LOCATION_PREFIX)


async def _next_or_none(
    queue: asyncio.Queue[str | None], stop: asyncio.Event, timeout_s: float
) -> str | None:
    """The next notified VIN, or None when it is time for a full reload (or on stop)."""
    getter, _ = await first_of(queue.get(), stop.wait(), timeout_s=timeout_s)
    if getter.done() and not getter.cancelled():
        item: str | None = getter.result()
        return item
    return None
