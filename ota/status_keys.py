"""ECU signing keys per vehicle: registered when the car is built (Uptane 5.4.1, build-time
prerequisites: each ECU's key is known to the director before the car is on the road), used to
verify its version reports. A key registered twice is the same key (idempotent); a revoked key
no longer verifies anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ota.errors import OtaError
from ota.status_report import keyid_of

ED25519_PUBLIC_KEY_BYTES = 32


class EcuKeyInvalidError(OtaError):
    code = "ecu_key_invalid"


@dataclass(frozen=True, slots=True)
class EcuKey:
    vin: str
    keyid: str
    public_key: bytes
    registered_at: datetime


def parse_public_key(hex_text: str) -> bytes:
    try:
        raw = bytes.fromhex(hex_text)
    except ValueError as exc:
        raise EcuKeyInvalidError("the public key must be hex") from exc
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise EcuKeyInvalidError(
            f"an ed25519 public key is {ED25519_PUBLIC_KEY_BYTES} bytes, got {len(raw)}"
        )
    return raw


async def register_key(
    conn: asyncpg.Connection | asyncpg.Pool, vin: str, public_key: bytes, now: datetime
) -> EcuKey:
    keyid = keyid_of(public_key)
    row = await conn.fetchrow(
        "INSERT INTO ota_ecu_keys (vin, keyid, public_key, registered_at)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (vin, keyid) DO UPDATE SET revoked_at = NULL"
        " RETURNING registered_at",
        vin,
        keyid,
        public_key,
        now,
    )
    return EcuKey(vin, keyid, public_key, row["registered_at"])


async def keys_for(conn: asyncpg.Connection | asyncpg.Pool, vin: str) -> dict[str, bytes]:
    rows = await conn.fetch(
        "SELECT keyid, public_key FROM ota_ecu_keys WHERE vin = $1 AND revoked_at IS NULL", vin
    )
    return {r["keyid"]: bytes(r["public_key"]) for r in rows}
