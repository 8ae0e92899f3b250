"""A customer's vehicles as they may see them: registry data, latest state from their ownership
start on, their subscriptions, and the vehicle's active entitlements."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from api.security.access import VehicleWindow, owned_windows
from api.vehicle_registry import SELECT_VEHICLES, VehicleRecord
from ingest.queries import SignalState, latest_state


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    id: int
    vin: str
    plan: str
    status: str
    started_at: datetime
    renews_at: datetime | None
    ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class EntitlementRecord:
    id: int
    vin: str
    feature: str
    kind: str
    valid_from: datetime
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class OwnedVehicle:
    vehicle: VehicleRecord
    owned_since: datetime
    state: list[SignalState]
    subscriptions: list[SubscriptionRecord]
    entitlements: list[EntitlementRecord]


def visible_state(signals: Sequence[SignalState], window: VehicleWindow) -> list[SignalState]:
    """Only the values sampled inside ``window``: a new owner never sees a position or reading
    taken while the car belonged to someone else."""
    return [s for s in signals if window.admits(s.ts)]


def clamp_last_seen(record: VehicleRecord, window: VehicleWindow) -> VehicleRecord:
    """``last_seen_at`` is the newest sample; if that predates the window, nothing is seen."""
    seen = record.last_seen_at
    if seen is None or window.admits(seen):
        return record
    return dataclasses.replace(record, last_seen_at=None)


_SUBSCRIPTIONS = (
    "SELECT id, vin, plan, status, started_at, renews_at, ends_at FROM subscriptions"
    " WHERE customer_id = $1 {vins} ORDER BY started_at, id"
)


async def customer_subscriptions(
    conn: asyncpg.Connection, customer_id: UUID, vins: Sequence[str] | None = None
) -> list[SubscriptionRecord]:
    """Subscriptions of ``customer_id`` (for ``vins`` only when given)."""
    if vins is None:
        rows = await conn.fetch(_SUBSCRIPTIONS.format(vins=""), customer_id)
    else:
        rows = await conn.fetch(
            _SUBSCRIPTIONS.format(vins="AND vin = ANY($2::text[])"), customer_id, list(vins)
        )
    return [SubscriptionRecord(**dict(r)) for r in rows]


async def active_entitlements(
    conn: asyncpg.Connection, customer_id: UUID, vins: Sequence[str], now: datetime
) -> list[EntitlementRecord]:
    """Entitlements of ``vins`` valid at ``now``. One backed by a subscription is shown only to
    the customer who holds that subscription (not to the next owner of the car)."""
    rows = await conn.fetch(
        "SELECT e.id, e.vin, e.feature, e.kind, e.valid_from, e.valid_until"
        " FROM entitlements e LEFT JOIN subscriptions s ON s.id = e.subscription_id"
        " WHERE e.vin = ANY($1::text[]) AND e.revoked_at IS NULL AND e.valid_from <= $2"
        " AND (e.valid_until IS NULL OR e.valid_until > $2)"
        " AND (e.subscription_id IS NULL OR s.customer_id = $3)"
        " ORDER BY e.vin, e.feature, e.id",
        list(vins),
        now,
        customer_id,
    )
    return [EntitlementRecord(**dict(r)) for r in rows]


async def owned_vehicles(
    pool: asyncpg.Pool, customer_id: UUID, now: datetime
) -> list[OwnedVehicle]:
    async with pool.acquire() as conn:
        windows = await owned_windows(conn, customer_id)
        vins = [w.vin for w in windows]
        rows = await conn.fetch(SELECT_VEHICLES + " WHERE v.vin = ANY($1::text[])", vins)
        records = {r["vin"]: VehicleRecord(**dict(r)) for r in rows}
        subscriptions = await customer_subscriptions(conn, customer_id, vins)
        entitlements = await active_entitlements(conn, customer_id, vins, now)
        owned = []
        for window in windows:
            assert window.since is not None  # an owner's window always starts
            owned.append(
                OwnedVehicle(
                    vehicle=clamp_last_seen(records[window.vin], window),
                    owned_since=window.since,
                    state=visible_state(await latest_state(conn, window.vin), window),
                    subscriptions=[s for s in subscriptions if s.vin == window.vin],
                    entitlements=[e for e in entitlements if e.vin == window.vin],
                )
            )
    return owned
