"""The per-vehicle document versions (ota migration 003), as the push service uses them: claim
the vehicles with a push due, read what to sign, store what was signed, record the outcome.

Claiming follows the notification delivery loop: ``FOR UPDATE SKIP LOCKED`` in a short
transaction that moves ``next_attempt_at`` ahead by a lease, so replicas take different vehicles
and a pusher that dies mid-publish leaves the vehicle to be taken again when the lease ends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ota.entitlements.signing import GrantedFeature
from protocol.entitlements import EntitlementDocument, SignedEnvelope

#: NOTIFY channel of ota migration 003 (payload: a VIN with a push due).
CHANNEL = "entitlement_push"

_CLAIM = """
WITH due AS (
    SELECT vin FROM ota_entitlement_heads
    WHERE push_requests > pushed_requests AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
    ORDER BY next_attempt_at NULLS FIRST, vin
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE ota_entitlement_heads h
SET next_attempt_at = $1 + make_interval(secs => $3), attempts = h.attempts + 1
FROM due
WHERE h.vin = due.vin
RETURNING h.vin, h.version, h.signed_version, h.push_requests, h.attempts
"""


@dataclass(frozen=True, slots=True)
class DueHead:
    vin: str
    version: int
    signed_version: int
    push_requests: int
    attempts: int


@dataclass(frozen=True, slots=True)
class StoredDocument:
    vin: str
    version: int
    expires_at: datetime
    envelope: dict[str, Any]


async def claim_due(
    conn: asyncpg.Connection, now: datetime, limit: int, lease_s: float
) -> list[DueHead]:
    rows = await conn.fetch(_CLAIM, now, limit, lease_s)
    return [DueHead(**dict(r)) for r in rows]


async def newest_documents(
    conn: asyncpg.Connection, vins: Sequence[str]
) -> dict[str, StoredDocument]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (vin) vin, version, expires_at, envelope"
        " FROM ota_entitlement_documents WHERE vin = ANY($1::text[])"
        " ORDER BY vin, version DESC",
        list(vins),
    )
    return {
        r["vin"]: StoredDocument(r["vin"], r["version"], r["expires_at"], json.loads(r["envelope"]))
        for r in rows
    }


async def allocate_version(conn: asyncpg.Connection, vin: str, now: datetime) -> int:
    """The next version for a re-issue with unchanged entitlements (the newest is stale)."""
    version: int = await conn.fetchval(
        "UPDATE ota_entitlement_heads SET version = version + 1, changed_at = $2"
        " WHERE vin = $1 RETURNING version",
        vin,
        now,
    )
    return version


async def granted_features(
    conn: asyncpg.Connection, vins: Sequence[str], now: datetime
) -> dict[str, list[GrantedFeature]]:
    """The entitlements each vehicle's document must carry: not revoked, not over. Scheduled
    ones are included, so the car switches them on at ``valid_from`` by itself."""
    rows = await conn.fetch(
        "SELECT vin, feature, kind, valid_from, valid_until FROM entitlements"
        " WHERE vin = ANY($1::text[]) AND revoked_at IS NULL"
        " AND (valid_until IS NULL OR valid_until > $2)",
        list(vins),
        now,
    )
    found: dict[str, list[GrantedFeature]] = {vin: [] for vin in vins}
    for r in rows:
        until = r["valid_until"]
        found[r["vin"]].append(
            GrantedFeature(
                name=r["feature"],
                kind=r["kind"],
                valid_from_ms=_ms(r["valid_from"]),
                valid_until_ms=_ms(until) if until is not None else None,
            )
        )
    return found


async def store_document(
    conn: asyncpg.Connection,
    document: EntitlementDocument,
    body: bytes,
    envelope: SignedEnvelope,
) -> StoredDocument:
    wire = envelope.wire()
    expires_at = _datetime(document.expires_at)
    await conn.execute(
        "INSERT INTO ota_entitlement_documents"
        " (vin, version, issued_at, expires_at, body, envelope, keyids)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::text[])",
        document.vin,
        document.version,
        _datetime(document.issued_at),
        expires_at,
        body,
        json.dumps(wire),
        [s.keyid for s in envelope.signatures],
    )
    await conn.execute(
        "UPDATE ota_entitlement_heads SET signed_version = $2"
        " WHERE vin = $1 AND signed_version < $2",
        document.vin,
        document.version,
    )
    return StoredDocument(document.vin, document.version, expires_at, wire)


async def record_pushed(
    pool: asyncpg.Pool, vin: str, *, requests: int, version: int, now: datetime
) -> None:
    """The push of ``version`` served every request up to ``requests``; one that arrived
    meanwhile keeps the vehicle due."""
    await pool.execute(
        "UPDATE ota_entitlement_heads SET pushed_requests = greatest(pushed_requests, $2),"
        " pushed_version = greatest(pushed_version, $3), pushed_at = $4,"
        " next_attempt_at = NULL, attempts = 0, last_error = NULL WHERE vin = $1",
        vin,
        requests,
        version,
        now,
    )


async def record_failed(pool: asyncpg.Pool, vin: str, *, retry_at: datetime, error: str) -> None:
    await pool.execute(
        "UPDATE ota_entitlement_heads SET next_attempt_at = $2, last_error = $3 WHERE vin = $1",
        vin,
        retry_at,
        error[:1000],
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(value: datetime) -> int:
    """Exact epoch milliseconds (no float rounding: the car compares them exactly)."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


def _datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
