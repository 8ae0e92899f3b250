"""Grants, revocations and listings of feature entitlements: the ``entitlements`` table, which
api migration 003 creates (it refers to vehicles and subscriptions, which migrate after ota) and
this module alone writes.

Every change runs in one transaction with the next document version: the trigger of api
migration 007 allocates it and queues the push (ota migration 003), and stamps the row with that
version. So the routes here, GDPR erasure and any later writer all reach the car the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from ota.entitlements.errors import (
    EntitlementInvalidError,
    EntitlementNotFoundError,
    EntitlementVehicleNotFoundError,
    TooManyEntitlementsError,
)
from protocol.entitlements import MAX_FEATURES, EntitlementKind

Status = Literal["active", "scheduled", "expired", "revoked"]

_COLUMNS = "id, vin, feature, kind, subscription_id, valid_from, valid_until, revoked_at, version"


@dataclass(frozen=True, slots=True)
class Entitlement:
    id: int
    vin: str
    feature: str
    kind: str
    subscription_id: int | None
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None
    version: int  # the document version that carries this row's latest change

    def status(self, now: datetime) -> Status:
        if self.revoked_at is not None:
            return "revoked"
        if self.valid_until is not None and self.valid_until <= now:
            return "expired"
        return "active" if self.valid_from <= now else "scheduled"


@dataclass(frozen=True, slots=True)
class EntitlementGrant:
    feature: str
    kind: EntitlementKind
    valid_from: datetime | None = None  # None: now
    valid_until: datetime | None = None  # None: no end (not allowed for a trial)
    subscription_id: int | None = None


@dataclass(frozen=True, slots=True)
class DocumentState:
    """Where a vehicle's entitlement document stands."""

    version: int  # newest allocated
    signed_version: int
    pushed_version: int
    pushed_at: datetime | None
    acknowledged_version: int  # the car reported it applied this one
    acknowledged_at: datetime | None
    last_error: str | None


def _entitlement(row: asyncpg.Record) -> Entitlement:
    return Entitlement(**dict(row))


class EntitlementStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def grant(self, vin: str, grant: EntitlementGrant, now: datetime) -> Entitlement:
        valid_from = grant.valid_from or now
        _check_grant(grant, valid_from, now)
        async with self._pool.acquire() as conn, conn.transaction():
            # One change per vehicle at a time, so the feature count below holds at commit.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('entitlements:' || $1))", vin)
            if grant.subscription_id is not None:
                await _check_subscription(conn, vin, grant.subscription_id)
            current = await conn.fetchval(
                "SELECT count(*) FROM entitlements WHERE vin = $1 AND revoked_at IS NULL"
                " AND (valid_until IS NULL OR valid_until > $2)",
                vin,
                now,
            )
            if current >= MAX_FEATURES:
                raise TooManyEntitlementsError(
                    f"{vin} already has {current} entitlements (at most {MAX_FEATURES})",
                    vin=vin,
                    limit=MAX_FEATURES,
                )
            try:
                row = await conn.fetchrow(
                    "INSERT INTO entitlements (vin, feature, kind, subscription_id, valid_from,"
                    " valid_until) VALUES ($1, $2, $3, $4, $5, $6) RETURNING " + _COLUMNS,
                    vin,
                    grant.feature,
                    grant.kind.value,
                    grant.subscription_id,
                    valid_from,
                    grant.valid_until,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise EntitlementVehicleNotFoundError(
                    f"vehicle {vin} is not registered", vin=vin
                ) from exc
        return _entitlement(row)

    async def revoke(self, vin: str, entitlement_id: int, now: datetime) -> Entitlement:
        """Revoke at ``now``; revoking again returns the entitlement as it is (idempotent)."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE entitlements SET revoked_at = $3"
                " WHERE id = $1 AND vin = $2 AND revoked_at IS NULL RETURNING " + _COLUMNS,
                entitlement_id,
                vin,
                now,
            )
            if row is None:
                row = await conn.fetchrow(
                    f"SELECT {_COLUMNS} FROM entitlements WHERE id = $1 AND vin = $2",
                    entitlement_id,
                    vin,
                )
        if row is None:
            raise EntitlementNotFoundError(
                f"{vin} has no entitlement {entitlement_id}", vin=vin, entitlement_id=entitlement_id
            )
        return _entitlement(row)

    async def history(self, vin: str) -> list[Entitlement]:
        """Every entitlement of ``vin``, revoked and expired ones included (administrators)."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM entitlements WHERE vin = $1 ORDER BY valid_from, id", vin
        )
        return [_entitlement(r) for r in rows]

    async def current_for_customer(
        self, vin: str, customer_id: UUID, now: datetime
    ) -> list[Entitlement]:
        """What the owner may see: entitlements in force or scheduled, and of those backed by a
        subscription only their own (not a previous owner's, api.customers.garage)."""
        rows = await self._pool.fetch(
            "SELECT e.id, e.vin, e.feature, e.kind, e.subscription_id, e.valid_from,"
            " e.valid_until, e.revoked_at, e.version"
            " FROM entitlements e LEFT JOIN subscriptions s ON s.id = e.subscription_id"
            " WHERE e.vin = $1 AND e.revoked_at IS NULL"
            " AND (e.valid_until IS NULL OR e.valid_until > $2)"
            " AND (e.subscription_id IS NULL OR s.customer_id = $3)"
            " ORDER BY e.valid_from, e.id",
            vin,
            now,
            customer_id,
        )
        return [_entitlement(r) for r in rows]

    async def document_state(self, vin: str) -> DocumentState | None:
        row = await self._pool.fetchrow(
            "SELECT version, signed_version, pushed_version, pushed_at, acknowledged_version,"
            " acknowledged_at, last_error FROM ota_entitlement_heads WHERE vin = $1",
            vin,
        )
        return DocumentState(**dict(row)) if row is not None else None


def _check_grant(grant: EntitlementGrant, valid_from: datetime, now: datetime) -> None:
    until = grant.valid_until
    if until is not None and until <= valid_from:
        raise EntitlementInvalidError(
            "valid_until must be after valid_from", field="valid_until", value=until.isoformat()
        )
    if until is not None and until <= now:
        raise EntitlementInvalidError(
            "valid_until is in the past", field="valid_until", value=until.isoformat()
        )
    if grant.kind is EntitlementKind.TRIAL and until is None:
        raise EntitlementInvalidError("a trial needs valid_until", field="valid_until", value=None)
    if grant.subscription_id is not None and grant.kind is not EntitlementKind.SUBSCRIPTION:
        raise EntitlementInvalidError(
            f"a {grant.kind.value} is not backed by a subscription",
            field="subscription_id",
            value=grant.subscription_id,
        )


async def _check_subscription(conn: asyncpg.Connection, vin: str, subscription_id: int) -> None:
    found = await conn.fetchval("SELECT vin FROM subscriptions WHERE id = $1", subscription_id)
    if found != vin:
        raise EntitlementInvalidError(
            f"subscription {subscription_id} is not one of {vin}",
            field="subscription_id",
            value=subscription_id,
        )
