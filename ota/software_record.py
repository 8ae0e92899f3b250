"""The record of installed software per vehicle and ECU (UN R156 7.1.1.x: the OEM keeps, per
vehicle, the software of each relevant ECU and its changes; the RXSWIN idea of one identifier
per vehicle's approved software set).

Reports write it: every verified version report brings each ECU's row up to date, and a change
(another image, or another version) also goes to the history. Before a car's first report the
factory software from the vehicle registry (``vehicle_ecus``) stands in. ``software_id`` is a
digest of the current set (each ECU's hardware id and image), so two cars running the same
approved software have the same identifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from ota.status_report import EcuReport


@dataclass(frozen=True, slots=True)
class EcuSoftware:
    ecu_serial: str
    hardware_id: str
    version: str
    target_path: str | None
    sha256: str | None
    release_counter: int | None
    campaign_id: UUID | None
    installed_at: datetime | None  # None: factory software, never reported
    source: str  # "report" or "factory"


@dataclass(frozen=True, slots=True)
class VehicleSoftware:
    vin: str
    ecus: tuple[EcuSoftware, ...]

    @property
    def software_id(self) -> str:
        parts = sorted(f"{e.hardware_id}={e.target_path or e.version}" for e in self.ecus)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


async def record_report(
    conn: asyncpg.Connection,
    vin: str,
    ecus: Sequence[EcuReport],
    *,
    campaign_id: UUID | None,
    installed_at: datetime,
    now: datetime,
) -> int:
    """Bring the vehicle's rows up to date with a verified report; returns how many ECUs
    changed software."""
    current = {
        r["ecu_serial"]: (r["target_path"], r["version"])
        for r in await conn.fetch(
            "SELECT ecu_serial, target_path, version FROM ota_ecu_software WHERE vin = $1", vin
        )
    }
    rows = [
        (
            vin,
            ecu.serial,
            ecu.hardware_id,
            ecu.installed.version,
            ecu.installed.path,
            ecu.installed.sha256,
            ecu.installed.release_counter,
            campaign_id if ecu.installed.path else None,
            installed_at,
            ecu.installed.length,
        )
        for ecu in ecus
        if current.get(ecu.serial) != (ecu.installed.path, ecu.installed.version)
    ]
    if not rows:
        return 0
    await conn.executemany(
        "INSERT INTO ota_ecu_software (vin, ecu_serial, hardware_id, version, target_path,"
        " sha256, release_counter, campaign_id, installed_at, length)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (vin, ecu_serial) DO UPDATE SET hardware_id = $3, version = $4,"
        " target_path = $5, sha256 = $6, release_counter = $7, campaign_id = $8,"
        " installed_at = $9, length = $10",
        rows,
    )
    await conn.executemany(
        "INSERT INTO ota_ecu_software_history (vin, ecu_serial, hardware_id, version,"
        " target_path, sha256, release_counter, campaign_id, installed_at, recorded_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [(*row[:9], now) for row in rows],
    )
    return len(rows)


_CURRENT = """
SELECT e.ecu_id AS ecu_serial, e.hardware_id, e.software_version AS version,
       NULL::text AS target_path, NULL::text AS sha256, NULL::int AS release_counter,
       NULL::uuid AS campaign_id, NULL::timestamptz AS installed_at, 'factory' AS source
FROM vehicle_ecus e
WHERE e.vin = $1
  AND NOT EXISTS (SELECT 1 FROM ota_ecu_software s WHERE s.vin = e.vin AND s.ecu_serial = e.ecu_id)
UNION ALL
SELECT ecu_serial, hardware_id, version, target_path, sha256, release_counter, campaign_id,
       installed_at, 'report' AS source
FROM ota_ecu_software WHERE vin = $1
ORDER BY ecu_serial
"""


async def vehicle_software(conn: asyncpg.Connection | asyncpg.Pool, vin: str) -> VehicleSoftware:
    rows = await conn.fetch(_CURRENT, vin)
    return VehicleSoftware(vin, tuple(EcuSoftware(**dict(r)) for r in rows))


@dataclass(frozen=True, slots=True)
class SoftwareChange:
    ecu_serial: str
    hardware_id: str
    version: str
    target_path: str | None
    campaign_id: UUID | None
    installed_at: datetime
    recorded_at: datetime


async def software_history(
    conn: asyncpg.Connection | asyncpg.Pool, vin: str, *, limit: int
) -> list[SoftwareChange]:
    rows = await conn.fetch(
        "SELECT ecu_serial, hardware_id, version, target_path, campaign_id, installed_at,"
        " recorded_at FROM ota_ecu_software_history WHERE vin = $1"
        " ORDER BY recorded_at DESC, id DESC LIMIT $2",
        vin,
        limit,
    )
    return [SoftwareChange(**dict(r)) for r in rows]
